"""The kernel's side of the FUSE/CUSE wire, written for the tests from the struct formats
documented in shared/docs/cuse-fuse-notes.md and include/uapi/linux/fuse.h — not with
backerd.kernel, so the tests check our codec against an independent reading of the ABI.
"""

from __future__ import annotations

import struct

# opcodes (fuse.h)
LOOKUP, FORGET, GETATTR, SETATTR = 1, 2, 3, 4
OPEN, READ, WRITE, STATFS, RELEASE = 14, 15, 16, 17, 18
FSYNC, GETXATTR, FLUSH, INIT, OPENDIR, READDIR, RELEASEDIR = 20, 22, 25, 26, 27, 28, 29
ACCESS, CREATE, INTERRUPT, DESTROY, IOCTL, POLL, BATCH_FORGET = 34, 35, 36, 38, 39, 40, 42
READDIRPLUS, LSEEK, STATX, CUSE_INIT = 44, 46, 52, 4096

IN_HDR = "<IIQQIIIHH"  # len opcode unique nodeid uid gid pid total_extlen pad (40)
OUT_HDR = "<IiQ"  # len error unique (16)
RW_IN = "<QQIIQII"  # fh offset size flags lock_owner flags pad (40)
IOCTL_IN = "<QIIQII"  # fh flags cmd arg in_size out_size (32)
IOCTL_OUT = "<iIII"  # result flags in_iovs out_iovs (16)
FUSE_INIT_OUT = "<IIIIHHIIHHI"  # + 28 zero bytes (64)
CUSE_INIT_OUT = "<IIIIIIII"  # + 40 zero bytes (72)
ATTR = "<QQQQQQIIIIIIIIII"  # 88 bytes
ENTRY_OUT = "<QQQQII"  # + ATTR
ATTR_OUT = "<QII"  # + ATTR
OPEN_OUT = "<QII"
DIRENT = "<QQII"

FOPEN_DIRECT_IO, FOPEN_NONSEEKABLE, FOPEN_STREAM = 1, 4, 16
FUSE_BIG_WRITES, FUSE_MAX_PAGES = 1 << 5, 1 << 22
FUSE_IOCTL_UNRESTRICTED, FUSE_IOCTL_RETRY = 2, 4

FDFLUSH = 0x24B  # _IO(2, 0x4b): an ioctl that is not st's


def request(opcode: int, unique: int, body: bytes = b"", *, nodeid: int = 0, pid: int = 4242,
            extlen: int = 0, length: int | None = None) -> bytes:
    total = 40 + len(body) if length is None else length
    return struct.pack(IN_HDR, total, opcode, unique, nodeid, 0, 0, pid, extlen, 0) + body


def init(unique: int = 1, *, major: int = 7, minor: int = 45, readahead: int = 131072,
         flags: int = 0x73FFFFFB) -> bytes:
    return request(INIT, unique, struct.pack("<IIII", major, minor, readahead, flags)
                   + struct.pack("<I", 0) + bytes(44))


def cuse_init(unique: int = 1, *, major: int = 7, minor: int = 38, flags: int = 1) -> bytes:
    return request(CUSE_INIT, unique, struct.pack("<IIII", major, minor, 0, flags))


def open_(unique: int, flags: int, *, nodeid: int = 0) -> bytes:
    return request(OPEN, unique, struct.pack("<II", flags, 0), nodeid=nodeid)


def read(unique: int, fh: int, offset: int, size: int, *, nodeid: int = 0) -> bytes:
    return request(READ, unique, struct.pack(RW_IN, fh, offset, size, 0, 0, 0, 0),
                   nodeid=nodeid)


def write(unique: int, fh: int, offset: int, data: bytes, *, nodeid: int = 0) -> bytes:
    return request(WRITE, unique, struct.pack(RW_IN, fh, offset, len(data), 0, 0, 0, 0) + data,
                   nodeid=nodeid)


def release(unique: int, fh: int, *, nodeid: int = 0, flags: int = 0) -> bytes:
    return request(RELEASE, unique, struct.pack("<QIIQ", fh, flags, 0, 0), nodeid=nodeid)


def flush(unique: int, fh: int, *, nodeid: int = 0) -> bytes:
    return request(FLUSH, unique, struct.pack("<QIIQ", fh, 0, 0, 0), nodeid=nodeid)


def ioctl(unique: int, fh: int, cmd: int, *, arg: int = 0, data: bytes = b"", out_size: int = 0,
          flags: int = 0, nodeid: int = 0, in_size: int | None = None) -> bytes:
    size = len(data) if in_size is None else in_size
    return request(IOCTL, unique, struct.pack(IOCTL_IN, fh, flags, cmd, arg, size, out_size)
                   + data, nodeid=nodeid)


def interrupt(unique: int, target: int) -> bytes:
    return request(INTERRUPT, unique, struct.pack("<Q", target))


def poll(unique: int, fh: int, events: int, *, nodeid: int = 0) -> bytes:
    return request(POLL, unique, struct.pack("<QQII", fh, 0, 0, events), nodeid=nodeid)


def lookup(unique: int, name: bytes, *, parent: int = 1) -> bytes:
    return request(LOOKUP, unique, name + b"\0", nodeid=parent)


def getattr_(unique: int, nodeid: int) -> bytes:
    return request(GETATTR, unique, struct.pack("<IIQ", 0, 0, 0), nodeid=nodeid)


def setattr_size(unique: int, nodeid: int, size: int) -> bytes:
    fattr_size = 1 << 3
    body = struct.pack("<IIQQQQQQIIIIIIII", fattr_size, 0, 0, size, 0, 0, 0, 0,
                       0, 0, 0, 0, 0, 0, 0, 0)
    return request(SETATTR, unique, body, nodeid=nodeid)


def readdir(unique: int, fh: int, offset: int, size: int, *, plus: bool = False) -> bytes:
    return request(READDIRPLUS if plus else READDIR, unique,
                   struct.pack(RW_IN, fh, offset, size, 0, 0, 0, 0), nodeid=1)


def reply(raw: bytes) -> tuple[int, int, bytes]:
    """(unique, error, payload) of one reply; checks the length field."""
    length, error, unique = struct.unpack_from(OUT_HDR, raw)
    assert length == len(raw), f"reply says {length} bytes, is {len(raw)}"
    return unique, error, raw[16:]


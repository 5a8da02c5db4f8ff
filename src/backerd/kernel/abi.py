"""FUSE/CUSE kernel ABI: opcodes, flags, struct layouts and ``_IOC`` decoding.

Theory of operation: every request the kernel hands to /dev/fuse or /dev/cuse is a
``fuse_in_header`` followed by an opcode-specific argument struct (and, for WRITE and
IOCTL, payload bytes); every reply is a ``fuse_out_header`` followed by a reply struct.
All layouts are little-endian x86-64 as in include/uapi/linux/fuse.h. This module only
names them; parsing and building live in ``kernel.connection``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

# Protocol version we speak (the kernel adapts down to it, we adapt down to older kernels).
KERNEL_VERSION = 7
KERNEL_MINOR_VERSION = 31
# Oldest minor whose reply layouts we build (fuse_attr with blksize, 64-byte init_out).
MIN_MINOR_VERSION = 23

PAGE_SIZE = 4096
# The kernel's pages per request unless FUSE_MAX_PAGES is negotiated; CUSE always keeps
# it, whatever max_read/max_write say.
FUSE_DEFAULT_MAX_PAGES = 32
CUSE_MAX_PAGES = FUSE_DEFAULT_MAX_PAGES
# The most pages a kernel grants (FUSE_MAX_MAX_PAGES; newer kernels: fs.fuse.max_pages_limit).
FUSE_MAX_MAX_PAGES = 256
FUSE_ROOT_ID = 1


class Opcode(enum.IntEnum):
    LOOKUP = 1
    FORGET = 2
    GETATTR = 3
    SETATTR = 4
    READLINK = 5
    SYMLINK = 6
    MKNOD = 8
    MKDIR = 9
    UNLINK = 10
    RMDIR = 11
    RENAME = 12
    LINK = 13
    OPEN = 14
    READ = 15
    WRITE = 16
    STATFS = 17
    RELEASE = 18
    FSYNC = 20
    SETXATTR = 21
    GETXATTR = 22
    LISTXATTR = 23
    REMOVEXATTR = 24
    FLUSH = 25
    INIT = 26
    OPENDIR = 27
    READDIR = 28
    RELEASEDIR = 29
    FSYNCDIR = 30
    GETLK = 31
    SETLK = 32
    SETLKW = 33
    ACCESS = 34
    CREATE = 35
    INTERRUPT = 36
    BMAP = 37
    DESTROY = 38
    IOCTL = 39
    POLL = 40
    NOTIFY_REPLY = 41
    BATCH_FORGET = 42
    FALLOCATE = 43
    READDIRPLUS = 44
    RENAME2 = 45
    LSEEK = 46
    COPY_FILE_RANGE = 47
    SETUPMAPPING = 48
    REMOVEMAPPING = 49
    SYNCFS = 50
    TMPFILE = 51
    STATX = 52
    CUSE_INIT = 4096


# fuse_init_in/out flags
FUSE_ASYNC_READ = 1 << 0
FUSE_ATOMIC_O_TRUNC = 1 << 3
FUSE_BIG_WRITES = 1 << 5
FUSE_DO_READDIRPLUS = 1 << 13
FUSE_MAX_PAGES = 1 << 22

# cuse_init_out flags
CUSE_UNRESTRICTED_IOCTL = 1 << 0

# fuse_open_out.open_flags
FOPEN_DIRECT_IO = 1 << 0
FOPEN_KEEP_CACHE = 1 << 1
FOPEN_NONSEEKABLE = 1 << 2
FOPEN_STREAM = 1 << 4

# fuse_ioctl_in.flags / fuse_ioctl_out.flags
FUSE_IOCTL_COMPAT = 1 << 0
FUSE_IOCTL_UNRESTRICTED = 1 << 1
FUSE_IOCTL_RETRY = 1 << 2
FUSE_IOCTL_32BIT = 1 << 3
FUSE_IOCTL_DIR = 1 << 4
FUSE_IOCTL_MAX_IOV = 256

# fuse_setattr_in.valid
FATTR_MODE = 1 << 0
FATTR_UID = 1 << 1
FATTR_GID = 1 << 2
FATTR_SIZE = 1 << 3
FATTR_FH = 1 << 6

# st_mode bits and dirent types
S_IFDIR = 0o040000
S_IFREG = 0o100000
DT_DIR = 4
DT_REG = 8

IN_HEADER = struct.Struct("<IIQQIIIHH")  # len opcode unique nodeid uid gid pid total_extlen pad
OUT_HEADER = struct.Struct("<IiQ")  # len error unique
INIT_IN = struct.Struct("<IIII")  # major minor max_readahead flags
INIT_IN_FLAGS2 = struct.Struct("<I")  # flags2, present from 7.36
# major minor max_readahead flags max_background congestion_threshold max_write time_gran
# max_pages map_alignment flags2 + 7 unused u32 = 64 bytes
INIT_OUT = struct.Struct("<IIIIHHIIHHI28x")
INIT_OUT_COMPAT_22 = 24  # reply size for kernels older than 7.23
CUSE_INIT_IN = struct.Struct("<IIII")  # major minor unused flags
# major minor unused flags max_read max_write dev_major dev_minor + 10 spare u32 = 72 bytes
CUSE_INIT_OUT = struct.Struct("<IIIIIIII40x")
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")  # ino size blocks a/m/ctime a/m/ctimensec mode
# nlink uid gid rdev blksize flags (88 bytes)
ATTR_OUT = struct.Struct("<QII")  # attr_valid attr_valid_nsec dummy, then ATTR
ENTRY_OUT = struct.Struct("<QQQQII")  # nodeid generation entry_valid attr_valid (+nsecs), ATTR
GETATTR_IN = struct.Struct("<IIQ")  # getattr_flags dummy fh
SETATTR_IN = struct.Struct("<IIQQQQQQIIIIIIII")  # valid pad fh size lock_owner a/m/ctime
# a/m/ctimensec mode unused4 uid gid unused5 (88 bytes)
OPEN_IN = struct.Struct("<II")  # flags open_flags
OPEN_OUT = struct.Struct("<QII")  # fh open_flags backing_id
RW_IN = struct.Struct("<QQIIQII")  # fh offset size read/write_flags lock_owner flags pad
WRITE_OUT = struct.Struct("<II")  # size pad
RELEASE_IN = struct.Struct("<QII")  # fh flags release_flags (lock_owner follows, unused)
FLUSH_IN = struct.Struct("<QIIQ")  # fh unused pad lock_owner
FSYNC_IN = struct.Struct("<QII")  # fh fsync_flags pad
FORGET_IN = struct.Struct("<Q")  # nlookup
BATCH_FORGET_IN = struct.Struct("<II")  # count dummy
FORGET_ONE = struct.Struct("<QQ")  # nodeid nlookup
GETXATTR_IN = struct.Struct("<II")  # size pad, then name
ACCESS_IN = struct.Struct("<II")  # mask pad
INTERRUPT_IN = struct.Struct("<Q")  # unique of the interrupted request
IOCTL_IN = struct.Struct("<QIIQII")  # fh flags cmd arg in_size out_size
IOCTL_OUT = struct.Struct("<iIII")  # result flags in_iovs out_iovs
IOCTL_IOVEC = struct.Struct("<QQ")  # base len
POLL_IN = struct.Struct("<QQII")  # fh kh flags events
POLL_IN_COMPAT = struct.Struct("<QQI")  # before 7.21 there was no events field
POLL_OUT = struct.Struct("<II")  # revents pad
STATFS_OUT = struct.Struct("<QQQQQIIII24x")  # blocks bfree bavail files ffree bsize namelen
# frsize pad spare[6] (80 bytes)
DIRENT = struct.Struct("<QQII")  # ino off namelen type, then name padded to 8

# ---- _IOC: the ioctl command encoding (asm-generic, as on x86) ----
_IOC_NRBITS = 8
_IOC_TYPEBITS = 8
_IOC_SIZEBITS = 14
_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS
_IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS
_IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS
IOC_NONE = 0
IOC_WRITE = 1  # userspace writes: data flows into the driver
IOC_READ = 2  # userspace reads: data flows out of the driver


@dataclass(frozen=True)
class IoctlCommand:
    """An ioctl number split into its ``_IOC`` fields."""

    direction: int  # IOC_NONE, IOC_WRITE, IOC_READ or both
    type: int
    nr: int
    size: int

    @property
    def copies_in(self) -> bool:
        """The driver reads ``size`` bytes from the user's argument."""
        return bool(self.direction & IOC_WRITE) and self.size > 0

    @property
    def copies_out(self) -> bool:
        """The driver writes ``size`` bytes back to the user's argument."""
        return bool(self.direction & IOC_READ) and self.size > 0


def decode_ioctl(cmd: int) -> IoctlCommand:
    cmd &= 0xFFFFFFFF
    return IoctlCommand(
        direction=(cmd >> _IOC_DIRSHIFT) & 0x3,
        type=(cmd >> _IOC_TYPESHIFT) & 0xFF,
        nr=(cmd >> _IOC_NRSHIFT) & 0xFF,
        size=(cmd >> _IOC_SIZESHIFT) & ((1 << _IOC_SIZEBITS) - 1),
    )


def encode_ioctl(direction: int, type_: int, nr: int, size: int) -> int:
    if not (0 <= direction <= 3 and 0 <= type_ <= 0xFF and 0 <= nr <= 0xFF):
        raise ValueError("ioctl fields out of range")
    if not 0 <= size < (1 << _IOC_SIZEBITS):
        raise ValueError(f"ioctl size {size} does not fit _IOC")
    return (
        (direction << _IOC_DIRSHIFT)
        | (type_ << _IOC_TYPESHIFT)
        | (nr << _IOC_NRSHIFT)
        | (size << _IOC_SIZESHIFT)
    )

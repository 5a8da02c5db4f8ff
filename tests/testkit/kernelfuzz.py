"""Bad kernel requests with the errno each must get, and a daemon to throw them at.

The generator plays a broken kernel: truncated, lying, oversized, unknown and
out-of-order FUSE/CUSE requests and ioctls (wrong ``_IOC`` sizes, unknown commands,
unrestricted-ioctl RETRY misuse, writes on a read-only open). Each case carries the
answer the daemon owes it, written from the notes, not from backerd.kernel:

* shared/docs/cuse-fuse-notes.md: the header (a request without a usable unique
  cannot be answered), ENOSYS for opcodes a server does not implement, ENOTTY for
  unknown ioctl commands (libfuse's ENOSYS is turned into ENOTTY by the kernel), RETRY
  only for unrestricted ioctls (a restricted one gets EIO from the kernel);
* shared/docs/st-semantics.md's errno table: EINVAL for a bad ``_IOC_SIZE``, EACCES
  for a write on an O_RDONLY fd, EBUSY for a second open of the drive;
* the FUSE protocol itself (include/uapi/linux/fuse.h): requests before INIT or a
  second INIT are protocol errors (EPROTO), a request for a file handle nobody opened
  is EBADF, a struct shorter than its layout or sizes that disagree are EINVAL.

``FuzzDaemon`` is the daemon's request loop (``daemon.dispatch.Dispatcher`` on a
``daemon.devfd.DeviceChannel``) serving a simulated unit's real tape nodes through one
end of a SOCK_SEQPACKET socketpair, which behaves like /dev/fuse: one request per read,
one reply per write. After every bad request the fuzzer sends a valid one, which must
be answered: a request that gets no answer (or the wrong one) is caught right there, and
so is a daemon that stopped serving.
"""

from __future__ import annotations

import errno
import random
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from testkit import kernelwire as w
from testkit.stwire import MTGET_SIZE, MTIOCGET, MTIOCTOP, OPS, mtop

MTIOCPOS = 0x80086D03
MTIOCGET32, MTIOCPOS32 = 0x801C6D02, 0x80046D03
FUSE_IOCTL_DIR = 1 << 4
O_RDONLY, O_WRONLY, O_RDWR = 0, 1, 2
# One chunk (CUSE's 128 KiB): an oversized request still fits a socketpair datagram.
MAX_WRITE = 128 * 1024
REPLY_TIMEOUT = 3.0  # seconds: a reply later than this is a hang

# The fields of each request's struct that its meaning depends on (fuse.h); a body
# shorter than this cannot be understood.
MIN_BODY = {
    w.OPEN: 8, w.READ: 40, w.WRITE: 40, w.RELEASE: 16, w.FLUSH: 8, w.FSYNC: 16,
    w.IOCTL: 32, w.INTERRUPT: 8, w.GETATTR: 16, w.SETATTR: 88, w.ACCESS: 8,
    w.GETXATTR: 8, w.READDIR: 40, w.OPENDIR: 8, w.POLL: 20,
}
# Opcodes of fuse.h a tape server has no business implementing.
UNIMPLEMENTED = [5, 6, 8, 9, 10, 11, 12, 13, 21, 23, 24, 31, 32, 33, 35, 37, 43, 45, 46,
                 47, 48, 49, 50, 51, 52]


def ioc(direction: int, type_: int, nr: int, size: int) -> int:
    """_IOC as asm-generic defines it (dir:2 size:14 type:8 nr:8)."""
    return (direction << 30) | (size << 16) | (type_ << 8) | nr


IOC_WRITE, IOC_READ = 1, 2


@dataclass(frozen=True)
class Expect:
    """The answer a request is owed: an errno (0: success), or no reply at all."""

    errno: int | None  # None: no reply
    retry: tuple[list[tuple[int, int]], list[tuple[int, int]]] | None = None
    data_size: int | None = None  # exact payload size of a successful reply, if known


NO_REPLY = Expect(None)


@dataclass
class Case:
    name: str
    raw: bytes
    unique: int
    expect: Expect
    # applied to the model once the expected answer came back
    after: Callable[[FuzzModel, bytes], None] | None = None


@dataclass
class FuzzModel:
    """What the fuzzer knows of the daemon's state."""

    kind: str  # "cuse" or "fuse"
    unrestricted: bool  # CUSE negotiated unrestricted ioctls
    files: list[int]  # nodeids of the tape nodes
    max_write: int
    open_fh: dict[int, tuple[int, int]] = field(default_factory=dict)  # fh -> (nodeid, accmode)
    next_unique: int = 1000

    def unique(self) -> int:
        self.next_unique += 1
        return self.next_unique


def _body_request(opcode: int, unique: int, body: bytes, nodeid: int) -> bytes:
    return w.request(opcode, unique, body, nodeid=nodeid)


def _junk(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


# ---- the case generators: (rng, model) -> Case ----
def header_too_short(rng: random.Random, m: FuzzModel) -> Case:
    n = rng.randrange(1, 40)  # a read(2) of 0 bytes is the end of the connection
    raw = bytearray(_junk(rng, n))
    unique = struct.unpack_from("<Q", raw, 8)[0] if n >= 16 else 0
    if n >= 16 and rng.random() < 0.5:
        unique = m.unique()
        raw[8:16] = struct.pack("<Q", unique)
    return Case(f"header of {n} bytes", bytes(raw), unique,
                Expect(errno.EINVAL) if unique else NO_REPLY)


def unique_zero(rng: random.Random, m: FuzzModel) -> Case:
    raw = w.request(rng.choice([w.READ, w.OPEN, w.IOCTL, 99999]), 0, _junk(rng, 40))
    return Case("unique 0", raw, 0, NO_REPLY)


def length_lies(rng: random.Random, m: FuzzModel) -> Case:
    u = m.unique()
    body = _junk(rng, rng.randrange(0, 64))
    real = 40 + len(body)
    lie = rng.choice([0, 1, 39, real - 1, real + 1, real + 4096, 2**32 - 1])
    return Case(f"length {lie} for {real}", w.request(w.READ, u, body, length=lie), u,
                Expect(errno.EINVAL))


def extensions_lie(rng: random.Random, m: FuzzModel) -> Case:
    u = m.unique()
    body = _junk(rng, rng.randrange(0, 32))
    extlen = rng.randrange(len(body) // 8 + 1, 0x10000)
    return Case(f"extlen {extlen} over {len(body)} bytes",
                w.request(w.GETATTR, u, body, extlen=extlen), u, Expect(errno.EINVAL))


def unknown_opcode(rng: random.Random, m: FuzzModel) -> Case:
    u = m.unique()
    op = rng.choice([rng.choice(UNIMPLEMENTED), rng.randrange(53, 4096),
                     rng.randrange(4097, 2**32)])
    return Case(f"opcode {op}", w.request(op, u, _junk(rng, rng.randrange(0, 80))), u,
                Expect(errno.ENOSYS))


def second_init(rng: random.Random, m: FuzzModel) -> Case:
    u = m.unique()
    raw = w.cuse_init(u) if rng.random() < 0.5 else w.init(u)
    return Case("INIT again", raw, u, Expect(errno.EPROTO))


def truncated_struct(rng: random.Random, m: FuzzModel) -> Case:
    ops = [w.OPEN, w.READ, w.WRITE, w.RELEASE, w.FLUSH, w.IOCTL, w.FSYNC]
    if m.kind == "fuse":
        ops += [w.GETATTR, w.SETATTR, w.ACCESS, w.GETXATTR, w.READDIR, w.OPENDIR]
    op = rng.choice(ops)
    u = m.unique()
    n = rng.randrange(0, MIN_BODY[op])
    nodeid = rng.choice(m.files) if m.kind == "fuse" else 0
    if op in (w.GETATTR, w.SETATTR, w.ACCESS, w.GETXATTR, w.READDIR, w.OPENDIR):
        nodeid = 1
    return Case(f"opcode {op} with {n} of {MIN_BODY[op]} bytes",
                _body_request(op, u, _junk(rng, n), nodeid), u, Expect(errno.EINVAL))


def _unknown_fh(m: FuzzModel, rng: random.Random) -> int:
    while True:
        fh = rng.choice([0, rng.randrange(1, 1000), rng.randrange(2**63, 2**64)])
        if fh not in m.open_fh:
            return fh


def file_op_on_unknown_handle(rng: random.Random, m: FuzzModel) -> Case:
    u = m.unique()
    fh = _unknown_fh(m, rng)
    nodeid = rng.choice(m.files)
    op = rng.choice(["read", "write", "flush", "release", "ioctl"])
    raw = {
        "read": lambda: w.read(u, fh, 0, 512, nodeid=nodeid),
        "write": lambda: w.write(u, fh, 0, b"x" * 16, nodeid=nodeid),
        "flush": lambda: w.flush(u, fh, nodeid=nodeid),
        "release": lambda: w.release(u, fh, nodeid=nodeid),
        "ioctl": lambda: w.ioctl(u, fh, MTIOCGET, out_size=MTGET_SIZE, nodeid=nodeid),
    }[op]()
    return Case(f"{op} on unknown fh {fh}", raw, u, Expect(errno.EBADF))


def _an_open_file(m: FuzzModel, rng: random.Random) -> tuple[int, int, int]:
    fh = rng.choice(sorted(m.open_fh))
    nodeid, acc = m.open_fh[fh]
    return fh, nodeid, acc


def file_op_on_another_node(rng: random.Random, m: FuzzModel) -> Case | None:
    if m.kind != "fuse" or not m.open_fh:
        return None
    fh, nodeid, _ = _an_open_file(m, rng)
    other = rng.choice([n for n in (*m.files, 1, 9999) if n != nodeid])
    u = m.unique()
    return Case(f"read of fh {fh} through node {other}",
                w.read(u, fh, 0, 512, nodeid=other), u, Expect(errno.EBADF))


def write_on_read_only(rng: random.Random, m: FuzzModel) -> Case | None:
    ro = [fh for fh, (_, acc) in m.open_fh.items() if acc == O_RDONLY]
    if not ro:
        return None
    fh = rng.choice(ro)
    u = m.unique()
    data = _junk(rng, rng.choice([1, 512, 10240]))
    return Case("write on a read-only open", w.write(u, fh, 0, data, nodeid=m.open_fh[fh][0]),
                u, Expect(errno.EACCES))


def write_size_lies(rng: random.Random, m: FuzzModel) -> Case | None:
    if not m.open_fh:
        return None
    fh, nodeid, _ = _an_open_file(m, rng)
    u = m.unique()
    data = _junk(rng, rng.randrange(0, 64))
    size = rng.choice([len(data) + 1, len(data) + 4096, 2**32 - 1, max(0, len(data) - 1)])
    if size == len(data):
        size += 1
    body = struct.pack(w.RW_IN, fh, 0, size, 0, 0, 0, 0) + data
    return Case(f"WRITE size {size} carrying {len(data)}",
                w.request(w.WRITE, u, body, nodeid=nodeid), u, Expect(errno.EINVAL))


def oversized_transfer(rng: random.Random, m: FuzzModel) -> Case | None:
    """READ/WRITE larger than the max_write the daemon announced: the kernel never sends
    one, so it is malformed; nothing may be allocated or written for it."""
    if not m.open_fh:
        return None
    fh, nodeid, acc = _an_open_file(m, rng)
    u = m.unique()
    if rng.random() < 0.7:
        size = rng.choice([m.max_write + 1, 2**31, 2**32 - 1])
        return Case(f"READ of {size}", w.read(u, fh, 0, size, nodeid=nodeid), u,
                    Expect(errno.EINVAL))
    data = bytes(m.max_write + rng.randrange(1, 4096))
    return Case(f"WRITE of {len(data)}", w.write(u, fh, 0, data, nodeid=nodeid), u,
                Expect(errno.EINVAL))


def ioctl_in_size_lies(rng: random.Random, m: FuzzModel) -> Case | None:
    if not m.open_fh:
        return None
    fh, nodeid, _ = _an_open_file(m, rng)
    u = m.unique()
    data = _junk(rng, rng.randrange(0, 16))
    lie = rng.choice([len(data) + 1, len(data) + 100, 2**32 - 1])
    raw = w.ioctl(u, fh, MTIOCTOP, data=data, in_size=lie, nodeid=nodeid)
    return Case(f"IOCTL in_size {lie} carrying {len(data)}", raw, u, Expect(errno.EINVAL))


def ioctl_unknown_command(rng: random.Random, m: FuzzModel) -> Case | None:
    if not m.open_fh:
        return None
    fh, nodeid, _ = _an_open_file(m, rng)
    u = m.unique()
    type_ = rng.choice([rng.randrange(0, 256), ord("m")])
    nr = rng.randrange(0, 256)
    if type_ == ord("m") and nr in (1, 2, 3):
        nr = rng.choice([0, 4, 5, 200])
    size = rng.choice([0, 4, 8, 48, rng.randrange(0, 1 << 14)])
    direction = rng.randrange(4)
    cmd = ioc(direction, type_, nr, size) if rng.random() < 0.8 else w.FDFLUSH
    data = bytes(size) if direction & IOC_WRITE and cmd != w.FDFLUSH else b""
    out = size if direction & IOC_READ and cmd != w.FDFLUSH else 0
    raw = w.ioctl(u, fh, cmd, data=data, out_size=out, nodeid=nodeid)
    return Case(f"ioctl {cmd:#x}", raw, u, Expect(errno.ENOTTY))


def ioctl_wrong_size(rng: random.Random, m: FuzzModel) -> Case | None:
    """MTIOCTOP/GET/POS whose _IOC size is not the struct's (st: EINVAL)."""
    if not m.open_fh:
        return None
    fh, nodeid, _ = _an_open_file(m, rng)
    u = m.unique()
    nr, good = rng.choice([(1, {8}), (2, {48, 28}), (3, {8, 4})])
    size = rng.choice([0, 1, 4, 7, 9, 16, 28, 47, 49, 64, (1 << 14) - 1])
    if size in good:
        size = 3
    direction = IOC_WRITE if nr == 1 else IOC_READ
    cmd = ioc(direction, ord("m"), nr, size)
    data = bytes(size) if direction == IOC_WRITE else b""
    out = size if direction == IOC_READ else 0
    raw = w.ioctl(u, fh, cmd, data=data, out_size=out, nodeid=nodeid)
    return Case(f"ioctl m/{nr} with size {size}", raw, u, Expect(errno.EINVAL))


def ioctl_restricted_short(rng: random.Random, m: FuzzModel) -> Case | None:
    """A restricted ioctl with less room or data than _IOC_SIZE says: the kernel always
    copies _IOC_SIZE, so this is malformed; it may not be retried either."""
    if not m.open_fh:
        return None
    fh, nodeid, _ = _an_open_file(m, rng)
    u = m.unique()
    if rng.random() < 0.5:
        raw = w.ioctl(u, fh, MTIOCTOP, data=mtop("MTNOP")[:rng.randrange(0, 8)],
                      nodeid=nodeid)
        return Case("restricted MTIOCTOP with short data", raw, u, Expect(errno.EINVAL))
    out = rng.randrange(0, MTGET_SIZE)
    raw = w.ioctl(u, fh, MTIOCGET, out_size=out, nodeid=nodeid)
    return Case(f"restricted MTIOCGET with {out} bytes of room", raw, u, Expect(errno.EINVAL))


def ioctl_unrestricted(rng: random.Random, m: FuzzModel) -> Case | None:
    """Unrestricted ioctls: RETRY for exactly what _IOC says is missing, and only on a
    connection that negotiated them (on any other the kernel never sets the flag)."""
    if not m.open_fh:
        return None
    fh, nodeid, _ = _an_open_file(m, rng)
    u = m.unique()
    arg = rng.choice([0x7FFF0000, rng.randrange(1, 2**47)])
    flags = w.FUSE_IOCTL_UNRESTRICTED | rng.choice([0, 1 << 2, 1 << 3])  # junk RETRY/32BIT
    which = rng.randrange(3)
    if which == 0:
        raw = w.ioctl(u, fh, MTIOCGET, arg=arg, out_size=rng.randrange(0, MTGET_SIZE),
                      flags=flags, nodeid=nodeid)
        want = Expect(0, retry=([], [(arg, MTGET_SIZE)]))
    elif which == 1:
        raw = w.ioctl(u, fh, MTIOCTOP, arg=arg, data=mtop("MTNOP")[:rng.randrange(0, 8)],
                      flags=flags, nodeid=nodeid)
        want = Expect(0, retry=([(arg, 8)], []))
    else:
        raw = w.ioctl(u, fh, MTIOCGET, arg=arg, out_size=MTGET_SIZE, flags=flags,
                      nodeid=nodeid)
        want = Expect(0, data_size=MTGET_SIZE)
    if not (m.kind == "cuse" and m.unrestricted):
        want = Expect(errno.EPROTO)
    return Case(f"unrestricted ioctl #{which} flags {flags:#x}", raw, u, want)


def ioctl_unknown_tape_op(rng: random.Random, m: FuzzModel) -> Case | None:
    """MTIOCTOP with an op st does not implement (MTRESET, MTRAS1-3, MTTELL) or no op at
    all: st says ENOSYS, which the kernel turns into ENOTTY for an ioctl (notes)."""
    if not m.open_fh:
        return None
    fh, nodeid, _ = _an_open_file(m, rng)
    u = m.unique()
    op = rng.choice([OPS["MTRESET"], OPS["MTRAS1"], OPS["MTRAS2"], OPS["MTRAS3"],
                     OPS["MTTELL"], rng.randrange(36, 32768), -rng.randrange(1, 32769)])
    raw = w.ioctl(u, fh, MTIOCTOP, data=struct.pack("<hxxi", op, rng.randrange(-5, 5)),
                  nodeid=nodeid)
    return Case(f"MTIOCTOP op {op}", raw, u, Expect(errno.ENOTTY))


def ioctl_dir_flag(rng: random.Random, m: FuzzModel) -> Case | None:
    if not m.open_fh:
        return None
    fh, nodeid, _ = _an_open_file(m, rng)
    u = m.unique()
    raw = w.ioctl(u, fh, MTIOCGET, out_size=MTGET_SIZE, flags=FUSE_IOCTL_DIR, nodeid=nodeid)
    return Case("ioctl with FUSE_IOCTL_DIR", raw, u, Expect(errno.ENOTTY))


def write_continuation_without_record(rng: random.Random, m: FuzzModel) -> Case | None:
    """A WRITE at offset > 0 that continues no syscall: with FOPEN_STREAM/CUSE every
    write(2) starts at offset 0, so there is nothing to join it to; it is refused (EIO)
    before reaching the tape, so nothing torn is written."""
    rw = [fh for fh, (_, acc) in m.open_fh.items() if acc != O_RDONLY]
    if not rw:
        return None
    fh = rng.choice(rw)
    u = m.unique()
    raw = w.write(u, fh, rng.randrange(1, 2**63), b"y" * 32, nodeid=m.open_fh[fh][0])
    return Case("WRITE continuation with no record", raw, u, Expect(errno.EIO))


def second_open(rng: random.Random, m: FuzzModel) -> Case | None:
    if not m.open_fh:
        return None
    u = m.unique()
    nodeid = rng.choice(m.files)
    return Case("second open of the drive", w.open_(u, rng.choice([O_RDONLY, O_RDWR]),
                                                    nodeid=nodeid), u, Expect(errno.EBUSY))


def open_not_a_node(rng: random.Random, m: FuzzModel) -> Case | None:
    if m.kind != "fuse":
        return None
    u = m.unique()
    nodeid = rng.choice([1, 0, 9999, 2**64 - 1])
    want = errno.EISDIR if nodeid == 1 else errno.ENOENT
    return Case(f"open of nodeid {nodeid}", w.open_(u, O_RDWR, nodeid=nodeid), u,
                Expect(want))


def interrupt_nothing(rng: random.Random, m: FuzzModel) -> Case:
    u = m.unique()
    return Case("INTERRUPT of nothing", w.interrupt(u, rng.randrange(0, 2**64)), u, NO_REPLY)


def forget(rng: random.Random, m: FuzzModel) -> Case:
    u = m.unique()
    if rng.random() < 0.5:
        raw = w.request(w.FORGET, u, struct.pack("<Q", rng.randrange(2**64)),
                        nodeid=rng.choice(m.files))
    else:
        count = rng.randrange(0, 4)
        raw = w.request(w.BATCH_FORGET, u, struct.pack("<II", count, 0)
                        + bytes(16 * count))
    if m.kind == "fuse":
        return Case("FORGET", raw, u, NO_REPLY)
    # CUSE has no inodes: the kernel never sends it, and it wants no reply either way
    return Case("FORGET on CUSE", raw, u, NO_REPLY)


def poll_junk(rng: random.Random, m: FuzzModel) -> Case | None:
    if not m.open_fh:
        return None
    fh, nodeid, _ = _an_open_file(m, rng)
    u = m.unique()
    return Case("POLL", w.poll(u, fh, rng.randrange(2**32), nodeid=nodeid), u,
                Expect(0, data_size=8))


def random_bytes(rng: random.Random, m: FuzzModel) -> Case:
    """Noise after a plausible header: whatever it parses as, it must be answered
    (or be a request that wants no answer); the check is that the daemon goes on."""
    u = m.unique()
    op = rng.choice([w.READ, w.WRITE, w.IOCTL, w.OPEN, w.RELEASE, w.FLUSH, w.POLL,
                     w.INTERRUPT, w.GETATTR, w.LOOKUP])
    body = _junk(rng, rng.randrange(0, 128))
    return Case(f"opcode {op} with random body", w.request(op, u, body,
                nodeid=rng.choice([0, 1, *m.files])), u, Expect(-1))


GENERATORS: list[Callable[[random.Random, FuzzModel], Case | None]] = [
    header_too_short, unique_zero, length_lies, extensions_lie, unknown_opcode, second_init,
    truncated_struct, file_op_on_unknown_handle, file_op_on_another_node,
    write_on_read_only, write_size_lies, oversized_transfer, ioctl_in_size_lies,
    ioctl_unknown_command, ioctl_wrong_size, ioctl_restricted_short, ioctl_unrestricted,
    ioctl_unknown_tape_op, ioctl_dir_flag, write_continuation_without_record, second_open,
    open_not_a_node, interrupt_nothing, forget, poll_junk, random_bytes,
]


def next_case(rng: random.Random, m: FuzzModel) -> tuple[str, Case]:
    """A case from a generator that has something to do in this state, and its name."""
    while True:
        generator = rng.choice(GENERATORS)
        case = generator(rng, m)
        if case is not None:
            return generator.__name__, case


# ---- checking replies ----
def check_reply(case: Case, raw: bytes) -> str | None:
    """Why ``raw`` is the wrong answer to ``case`` (None when it is right)."""
    length, error, unique = struct.unpack_from(w.OUT_HDR, raw)
    if length != len(raw):
        return f"reply says {length} bytes, is {len(raw)}"
    if unique != case.unique:
        return f"reply to {unique}, expected one to {case.unique}"
    want = case.expect
    if want.errno == -1:  # anything well-formed
        return None
    if error != -(want.errno or 0):
        got = errno.errorcode.get(-error, error) if error else "success"
        wanted = errno.errorcode.get(want.errno or 0, "success") if want.errno else "success"
        return f"got {got}, expected {wanted}"
    payload = raw[16:]
    if want.retry is not None:
        result, flags, n_in, n_out = struct.unpack_from(w.IOCTL_OUT, payload)
        if not flags & w.FUSE_IOCTL_RETRY:
            return "expected a RETRY reply"
        iovs = [struct.unpack_from("<QQ", payload, 16 + 16 * i) for i in range(n_in + n_out)]
        if (iovs[:n_in], iovs[n_in:]) != want.retry:
            return f"RETRY for {iovs[:n_in]}/{iovs[n_in:]}, expected {want.retry}"
    elif want.data_size is not None:
        size = len(payload) - (16 if case.raw[4:8] == struct.pack("<I", w.IOCTL) else 0)
        if size != want.data_size:
            return f"{size} bytes of data, expected {want.data_size}"
    return None


# ---- the daemon under test ----
@dataclass
class FuzzStats:
    cases: int = 0
    by_name: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


class FuzzDaemon:
    """A simulated unit's nodes served by the real Dispatcher through a socketpair."""

    def __init__(self, kind: str, cassette: Path, *, unrestricted: bool = False) -> None:
        self.kind = kind
        self.cassette = cassette
        self.unrestricted = unrestricted
        self.kernel: trio.socket.SocketType | None = None
        self.model: FuzzModel | None = None
        self._late: set[int] = set()  # requests whose answer may come at any time

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FuzzDaemon]:
        from backerd.daemon.config import UnitConfig
        from backerd.daemon.devfd import DeviceChannel
        from backerd.daemon.dispatch import Dispatcher
        from backerd.daemon.service import open_sim_unit
        from backerd.kernel.connection import Connection
        from backerd.kernel.fusefs import Namespace

        unit = open_sim_unit(UnitConfig(number=0, cassette=self.cassette, length="E-30"))
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        b.setblocking(False)
        try:
            names = [unit.config.rewinding_node, unit.config.non_rewinding_node]
            if self.kind == "cuse":
                conn = Connection("cuse", devname="fuzz0", unrestricted_ioctl=self.unrestricted,
                                  max_write=MAX_WRITE)
                handlers = {0: unit.nodes[names[1]]}
                namespace = None
                files = [0]
            else:
                conn = Connection("fuse", max_pages=32, max_write=MAX_WRITE)
                namespace = Namespace(names)
                handlers = {namespace.node_ids[n]: unit.nodes[n] for n in names}
                files = sorted(handlers)
            channel = DeviceChannel(b.fileno(), conn.read_buffer_size, "fuzz socket")
            dispatcher = Dispatcher(conn, handlers, channel.send, namespace=namespace,
                                    open_flags=w.FOPEN_DIRECT_IO)
            self.kernel = trio.socket.from_stdlib_socket(a)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(dispatcher.run, channel.receive)
                self.model = FuzzModel(self.kind, self.unrestricted, files, conn.max_write)
                await self._init()
                yield self
                a.shutdown(socket.SHUT_RDWR)  # the connection goes away: run() returns
        finally:
            a.close()
            b.close()
            await unit.shutdown()

    async def exchange(self, raw: bytes, *, want_reply: bool = True) -> bytes | None:
        assert self.kernel is not None
        with trio.fail_after(REPLY_TIMEOUT):
            await self.kernel.send(raw)
        if not want_reply:
            return None
        with trio.fail_after(REPLY_TIMEOUT):
            while True:
                raw = await self.kernel.recv(1 << 21)
                unique = struct.unpack_from("<Q", raw, 8)[0]
                if unique not in self._late:
                    return raw
                self._late.discard(unique)

    async def _init(self) -> None:
        assert self.model is not None
        u = self.model.unique()
        raw = w.cuse_init(u) if self.kind == "cuse" else w.init(u)
        reply = await self.exchange(raw)
        assert reply is not None and struct.unpack_from(w.OUT_HDR, reply)[1] == 0

    async def open(self, accmode: int, nodeid: int) -> int:
        m = self.model
        assert m is not None
        u = m.unique()
        reply = await self.exchange(w.open_(u, accmode, nodeid=nodeid))
        assert reply is not None
        _, error, _ = struct.unpack_from(w.OUT_HDR, reply)
        assert error == 0, f"open failed: {errno.errorcode.get(-error)}"
        fh = struct.unpack_from("<Q", reply, 16)[0]
        m.open_fh[fh] = (nodeid, accmode)
        return fh

    async def release(self, fh: int) -> None:
        m = self.model
        assert m is not None
        nodeid, _ = m.open_fh.pop(fh)
        u = m.unique()
        reply = await self.exchange(w.release(u, fh, nodeid=nodeid))
        assert reply is not None and struct.unpack_from(w.OUT_HDR, reply)[1] == 0

    def _probe_case(self) -> Case:
        """A valid request that must work: MTIOCGET on an open file, else an OPEN."""
        m = self.model
        assert m is not None
        u = m.unique()
        if m.open_fh:
            fh, (nodeid, _) = next(iter(m.open_fh.items()))
            raw = w.ioctl(u, fh, MTIOCGET, out_size=MTGET_SIZE, nodeid=nodeid)
            return Case("probe MTIOCGET", raw, u, Expect(0, data_size=MTGET_SIZE))
        raw = w.open_(u, O_RDONLY, nodeid=m.files[0])
        return Case("probe OPEN", raw, u, Expect(0))

    async def run_case(self, case: Case) -> str | None:
        """Send ``case`` and a probe; collect replies until both are in (or, for a case
        owed no reply, until the probe's): the right answer, once, and a daemon that
        goes on serving."""
        assert self.kernel is not None and self.model is not None
        probe = self._probe_case()
        answers: dict[int, bytes] = {}
        problems: list[str] = []
        want_case = case.expect.errno is not None and case.expect.errno != -1
        try:
            with trio.fail_after(REPLY_TIMEOUT):
                await self.kernel.send(case.raw)
                await self.kernel.send(probe.raw)
                while probe.unique not in answers or (want_case and case.unique not in answers):
                    raw = await self.kernel.recv(1 << 21)
                    unique = struct.unpack_from("<Q", raw, 8)[0] if len(raw) >= 16 else -1
                    if unique in self._late:
                        self._late.discard(unique)
                        continue
                    if unique in answers:
                        problems.append(f"second reply to {unique}")
                    elif unique not in (case.unique, probe.unique):
                        problems.append(f"reply to {unique}, which nobody asked")
                    answers[unique] = raw
        except trio.TooSlowError:
            missing = "the probe" if probe.unique not in answers else "the request"
            return f"{case.name}: no reply to {missing} within {REPLY_TIMEOUT} s"
        if case.unique in answers and case.unique != 0:
            if case.expect.errno is None:
                problems.append(f"{case.name}: answered, though it wants no reply")
            else:
                problem = check_reply(case, answers[case.unique])
                if problem:
                    problems.append(f"{case.name}: {problem}")
        elif case.expect.errno == -1 and case.unique:
            self._late.add(case.unique)  # may be answered later (an OPEN's task)
        problem = check_reply(probe, answers[probe.unique])
        if problem:
            problems.append(f"after {case.name}: the probe: {problem}")
        elif probe.name == "probe OPEN":
            fh = struct.unpack_from("<Q", answers[probe.unique], 16)[0]
            self.model.open_fh[fh] = (self.model.files[0], O_RDONLY)
        return "; ".join(problems) or None


async def fuzz(daemon: FuzzDaemon, rng: random.Random, count: int, stats: FuzzStats,
               trace: Callable[[Case], None] | None = None) -> None:
    """``count`` bad requests, each followed by a probe; the open files are renewed now
    and then (read-only or read-write) so both kinds of open get their share."""
    m = daemon.model
    assert m is not None
    for i in range(count):
        if i % 50 == 0:
            for fh in list(m.open_fh):
                await daemon.release(fh)
            await daemon.open(rng.choice([O_RDONLY, O_RDWR]), rng.choice(m.files))
        kind, case = next_case(rng, m)
        stats.cases += 1
        stats.by_name[kind] = stats.by_name.get(kind, 0) + 1
        if trace is not None:
            trace(case)
        problem = await daemon.run_case(case)
        if problem:
            stats.failures.append(problem)
            if len(stats.failures) >= 20:
                return

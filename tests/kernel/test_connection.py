"""The sans-IO connection against raw request bytes built from the documented formats."""

from __future__ import annotations

import errno
import struct

import pytest

from backerd.errors import ProtocolError
from backerd.kernel import events as ev
from backerd.kernel.connection import Connection, State, ioctl_retry_iovecs
from testkit import kernelwire as w
from testkit.stwire import MTIOCGET, MTIOCPOS, MTIOCTOP


def ready_fuse(**kwargs) -> Connection:
    conn = Connection("fuse", **kwargs)
    conn.reply_init(conn.receive(w.init(1)))
    return conn


def ready_cuse(**kwargs) -> Connection:
    conn = Connection("cuse", devname="backer0", **kwargs)
    conn.reply_cuse_init(conn.receive(w.cuse_init(1)))
    return conn


@pytest.mark.parametrize("max_pages", [32, 256])
def test_fuse_init_reply(max_pages: int) -> None:
    conn = Connection("fuse", max_pages=max_pages)
    event = conn.receive(w.init(7, minor=45, readahead=131072))
    assert isinstance(event, ev.Init) and (event.major, event.minor) == (7, 45)
    unique, error, payload = w.reply(conn.reply_init(event))
    assert (unique, error, len(payload)) == (7, 0, 64)
    major, minor, readahead, flags, _, _, max_write, _, pages, _, _ = struct.unpack_from(
        w.FUSE_INIT_OUT, payload)
    assert (major, minor, readahead, max_write, pages) == (7, 31, 131072, 1 << 20, max_pages)
    assert flags & w.FUSE_BIG_WRITES and flags & w.FUSE_MAX_PAGES
    assert payload[36:] == bytes(28)
    assert conn.state is State.READY
    assert conn.max_chunk == max_pages * 4096


def test_fuse_init_offers_only_what_the_kernel_has() -> None:
    conn = Connection("fuse")
    _, _, payload = w.reply(conn.reply_init(conn.receive(w.init(1, flags=w.FUSE_BIG_WRITES))))
    assert struct.unpack_from(w.FUSE_INIT_OUT, payload)[3] == w.FUSE_BIG_WRITES


def test_fuse_init_adapts_to_an_older_kernel_and_refuses_ancient_ones() -> None:
    conn = Connection("fuse")
    _, _, payload = w.reply(conn.reply_init(conn.receive(w.init(1, minor=28))))
    assert struct.unpack_from("<II", payload) == (7, 28)
    old = Connection("fuse")
    assert w.reply(old.reply_init(old.receive(w.init(1, minor=19))))[1] == -errno.EPROTO
    assert old.state is State.AWAITING_INIT
    other_major = Connection("fuse")
    assert w.reply(other_major.reply_init(other_major.receive(w.init(1, major=8))))[1] == (
        -errno.EPROTO)


@pytest.mark.parametrize("unrestricted", [False, True])
def test_cuse_init_reply_names_the_device(unrestricted: bool) -> None:
    conn = Connection("cuse", devname="nbacker0", unrestricted_ioctl=unrestricted)
    event = conn.receive(w.cuse_init(3))
    assert isinstance(event, ev.CuseInit) and event.minor == 38
    unique, error, payload = w.reply(conn.reply_cuse_init(event))
    assert (unique, error) == (3, 0)
    fields = struct.unpack_from(w.CUSE_INIT_OUT, payload)
    assert fields == (7, 31, 0, int(unrestricted), 1 << 20, 1 << 20, 0, 0)
    assert payload[32:72] == bytes(40)
    assert payload[72:] == b"DEVNAME=nbacker0\0"
    assert conn.max_chunk == 128 * 1024  # CUSE keeps 32 pages whatever max_write says


def test_request_before_init_is_a_protocol_error() -> None:
    conn = Connection("cuse", devname="backer0")
    event = conn.receive(w.open_(5, 0))
    assert isinstance(event, ev.BadRequest) and event.errno == errno.EPROTO
    assert w.reply(conn.reply_error(event, event.errno)) == (5, -errno.EPROTO, b"")


def test_second_init_and_wrong_kind_of_init() -> None:
    conn = ready_fuse()
    event = conn.receive(w.init(2))
    assert isinstance(event, ev.BadRequest) and event.errno == errno.EPROTO
    fuse = Connection("fuse")
    assert isinstance(fuse.receive(w.cuse_init(1)), ev.BadRequest)


@pytest.mark.parametrize("length", [0, 8, 15])
def test_fragment_without_unique_gets_no_reply(length: int) -> None:
    event = ready_fuse().receive(w.open_(9, 0)[:length])
    assert isinstance(event, ev.BadRequest) and not event.needs_reply


def test_short_request_with_unique_gets_einval() -> None:
    conn = ready_fuse()
    event = conn.receive(w.open_(9, 0)[:30])
    assert isinstance(event, ev.BadRequest) and event.needs_reply
    assert w.reply(conn.reply_error(event, event.errno)) == (9, -errno.EINVAL, b"")


@pytest.mark.parametrize(
    "raw",
    [
        w.request(w.OPEN, 4, b"\0\0"),  # open_in cut short
        w.request(w.READ, 4, bytes(39)),  # read_in cut short
        w.write(4, 1, 0, b"abc")[:-1],  # payload shorter than its size field...
        w.request(w.OPEN, 4, struct.pack("<II", 0, 0), length=100),  # ...header lies
        w.ioctl(4, 1, MTIOCTOP, data=b"12345678", in_size=16),
        w.lookup(4, b"no-terminator")[:-1],
        w.request(w.BATCH_FORGET, 4, struct.pack("<II", 3, 0) + bytes(16)),
    ],
)
def test_malformed_requests_become_einval(raw: bytes) -> None:
    conn = ready_fuse()
    if raw[:4] != struct.pack("<I", len(raw)) and raw[4:8] == struct.pack("<I", w.WRITE):
        raw = struct.pack("<I", len(raw)) + raw[4:]  # keep the header honest, body short
    event = conn.receive(raw)
    assert isinstance(event, ev.BadRequest), event
    assert event.errno == errno.EINVAL
    if event.needs_reply:
        assert w.reply(conn.reply_error(event, event.errno))[1] == -errno.EINVAL


@pytest.mark.parametrize("opcode", [w.LSEEK, w.STATX, w.CREATE, 999, 4097])
def test_unknown_opcodes_get_enosys(opcode: int) -> None:
    conn = ready_fuse()
    event = conn.receive(w.request(opcode, 11, bytes(64)))
    assert isinstance(event, ev.Unsupported) and event.opcode == opcode
    assert w.reply(conn.reply_error(event, event.errno)) == (11, -errno.ENOSYS, b"")


def test_fuse_init_opcode_on_cuse_is_unsupported() -> None:
    conn = ready_cuse()
    assert isinstance(conn.receive(w.init(2)), ev.BadRequest)  # a second init of any kind


def test_write_event_carries_data_and_offset() -> None:
    conn = ready_cuse()
    event = conn.receive(w.write(20, 3, 131072, b"x" * 1000))
    assert isinstance(event, ev.Write)
    assert (event.unique, event.fh, event.offset, event.data) == (20, 3, 131072, b"x" * 1000)
    _, error, payload = w.reply(conn.reply_write(event, 1000))
    assert (error, payload) == (0, struct.pack("<II", 1000, 0))


def test_extensions_after_the_arguments_are_skipped() -> None:
    conn = ready_fuse()
    body = struct.pack("<II", 0o100001, 0) + b"EXTENSN"  + b"\0"
    event = conn.receive(w.request(w.OPEN, 21, body, nodeid=2, extlen=1))
    assert isinstance(event, ev.Open) and event.flags == 0o100001


def test_read_event_and_reply_size_limit() -> None:
    conn = ready_cuse()
    event = conn.receive(w.read(22, 1, 0, 10240))
    assert isinstance(event, ev.Read) and (event.offset, event.size) == (0, 10240)
    with pytest.raises(ProtocolError):
        conn.reply_data(event, bytes(10241))
    assert w.reply(conn.reply_data(event, b"abc")) == (22, 0, b"abc")


def test_each_request_is_answered_once() -> None:
    conn = ready_cuse()
    event = conn.receive(w.flush(23, 1))
    conn.reply_empty(event)
    with pytest.raises(ProtocolError):
        conn.reply_empty(event)
    with pytest.raises(ProtocolError):
        conn.reply_error(999, errno.EIO)


def test_requests_without_replies() -> None:
    conn = ready_fuse()
    interrupt = conn.receive(w.interrupt(30, 22))
    assert isinstance(interrupt, ev.Interrupt) and interrupt.target == 22
    assert not interrupt.needs_reply
    forget = conn.receive(w.request(w.FORGET, 31, struct.pack("<Q", 2), nodeid=2))
    assert isinstance(forget, ev.Forget) and not forget.needs_reply
    batch = conn.receive(w.request(w.BATCH_FORGET, 32, struct.pack("<II", 2, 0)
                                   + struct.pack("<QQQQ", 2, 1, 3, 5)))
    assert isinstance(batch, ev.BatchForget) and batch.forgets == ((2, 1), (3, 5))
    assert not batch.needs_reply


def test_restricted_ioctl_event_and_reply() -> None:
    conn = ready_cuse()
    event = conn.receive(w.ioctl(40, 1, MTIOCGET, arg=0x7FFD0000, out_size=48))
    assert isinstance(event, ev.Ioctl)
    assert (event.cmd, event.arg, event.out_size, event.data) == (MTIOCGET, 0x7FFD0000, 48, b"")
    assert not event.unrestricted
    assert ioctl_retry_iovecs(event) is None
    _, error, payload = w.reply(conn.reply_ioctl(event, bytes(range(48))))
    assert error == 0
    assert struct.unpack_from(w.IOCTL_OUT, payload) == (0, 0, 0, 0)
    assert payload[16:] == bytes(range(48))


def test_ioctl_reply_may_not_exceed_the_room_offered() -> None:
    conn = ready_cuse()
    event = conn.receive(w.ioctl(41, 1, MTIOCPOS, out_size=8))
    with pytest.raises(ProtocolError):
        conn.reply_ioctl(event, bytes(9))


def test_unrestricted_ioctl_retry_iovecs() -> None:
    conn = ready_cuse(unrestricted_ioctl=True)
    arg = 0x7FFE1234
    get = conn.receive(w.ioctl(50, 1, MTIOCGET, arg=arg, flags=w.FUSE_IOCTL_UNRESTRICTED))
    assert ioctl_retry_iovecs(get) == ([], [(arg, 48)])
    _, error, payload = w.reply(conn.reply_ioctl_retry(get, *ioctl_retry_iovecs(get)))
    assert error == 0
    assert struct.unpack_from(w.IOCTL_OUT, payload) == (0, w.FUSE_IOCTL_RETRY, 0, 1)
    assert struct.unpack_from("<QQ", payload, 16) == (arg, 48)
    assert len(payload) == 32

    top = conn.receive(w.ioctl(51, 1, MTIOCTOP, arg=arg, flags=w.FUSE_IOCTL_UNRESTRICTED))
    assert ioctl_retry_iovecs(top) == ([(arg, 8)], [])
    _, _, payload = w.reply(conn.reply_ioctl_retry(top, *ioctl_retry_iovecs(top)))
    assert struct.unpack_from(w.IOCTL_OUT, payload) == (0, w.FUSE_IOCTL_RETRY, 1, 0)

    both = conn.receive(w.ioctl(52, 1, 0xC0105500, arg=arg, flags=w.FUSE_IOCTL_UNRESTRICTED))
    assert ioctl_retry_iovecs(both) == ([(arg, 16)], [(arg, 16)])

    served = conn.receive(w.ioctl(53, 1, MTIOCTOP, arg=arg, data=bytes(8),
                                  flags=w.FUSE_IOCTL_UNRESTRICTED))
    assert ioctl_retry_iovecs(served) is None
    unencoded = conn.receive(w.ioctl(54, 1, w.FDFLUSH, flags=w.FUSE_IOCTL_UNRESTRICTED))
    assert ioctl_retry_iovecs(unencoded) is None


def test_restricted_ioctl_may_not_be_retried() -> None:
    conn = ready_cuse()
    event = conn.receive(w.ioctl(60, 1, MTIOCGET, out_size=48))
    with pytest.raises(ProtocolError):
        conn.reply_ioctl_retry(event, [], [(0, 48)])


def test_poll_event_and_reply() -> None:
    conn = ready_cuse()
    event = conn.receive(w.poll(70, 1, 0x5))
    assert isinstance(event, ev.Poll) and event.events == 0x5
    assert w.reply(conn.reply_poll(event, 0x5)) == (70, 0, struct.pack("<II", 5, 0))


def test_open_reply_layout() -> None:
    conn = ready_cuse()
    event = conn.receive(w.open_(80, 0o4000))
    assert isinstance(event, ev.Open) and event.flags == 0o4000
    _, _, payload = w.reply(conn.reply_open(event, 7, w.FOPEN_DIRECT_IO))
    assert struct.unpack(w.OPEN_OUT, payload) == (7, w.FOPEN_DIRECT_IO, 0)


def test_destroy() -> None:
    conn = ready_fuse()
    event = conn.receive(w.request(w.DESTROY, 90))
    assert isinstance(event, ev.Destroy)
    assert w.reply(conn.reply_destroy(event)) == (90, 0, b"")
    assert conn.state is State.DESTROYED
    assert isinstance(conn.receive(w.open_(91, 0, nodeid=2)), ev.BadRequest)


def test_construction_errors() -> None:
    with pytest.raises(ValueError):
        Connection("cuse")
    with pytest.raises(ValueError):
        Connection("fuse", max_pages=0)
    with pytest.raises(ValueError):
        Connection("nfs")  # type: ignore[arg-type]


def test_kernel_without_max_pages_keeps_its_default_chunk() -> None:
    conn = Connection("fuse", max_pages=256)
    conn.reply_init(conn.receive(w.init(1, flags=w.FUSE_BIG_WRITES)))
    assert conn.max_chunk == 32 * 4096

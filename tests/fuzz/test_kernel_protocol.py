"""Bad kernel requests: the sans-IO layer (property-based) and the running request loop.

The cases and the errno each is owed come from testkit.kernelfuzz, written from the
FUSE/CUSE notes and st's errno table (not from backerd.kernel). The sans-IO tests check
``Connection.receive`` and ``tape.ioctlwire.decode`` on their own; the daemon test runs
a few hundred cases through the real Dispatcher serving a simulated unit's nodes over a
socketpair, each followed by a valid request that must still be served. The long run
(10^5 cases) is benchmarks/fuzz_kernel.py.
"""

from __future__ import annotations

import errno
import logging
import random
import struct
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.errors import TapeError
from backerd.kernel import events as ev
from backerd.kernel.connection import Connection
from backerd.tape import ioctlwire
from testkit import kernelfuzz as kf
from testkit import kernelwire as w

# Cases decided by the protocol alone (the rest need the daemon's file state).
PARSE_LEVEL = [
    kf.header_too_short, kf.unique_zero, kf.length_lies, kf.extensions_lie,
    kf.unknown_opcode, kf.second_init, kf.truncated_struct, kf.write_size_lies,
    kf.oversized_transfer, kf.ioctl_in_size_lies, kf.ioctl_restricted_short,
]


def ready(kind: str, *, unrestricted: bool = False) -> Connection:
    conn = (Connection("cuse", devname="fuzz0", unrestricted_ioctl=unrestricted,
                       max_write=kf.MAX_WRITE) if kind == "cuse"
            else Connection("fuse", max_pages=32, max_write=kf.MAX_WRITE))
    init = conn.receive(w.cuse_init(1) if kind == "cuse" else w.init(1))
    assert isinstance(init, ev.CuseInit | ev.Init)
    conn.reply_cuse_init(init) if isinstance(init, ev.CuseInit) else conn.reply_init(init)
    return conn


def model(kind: str, unrestricted: bool = False) -> kf.FuzzModel:
    files = [0] if kind == "cuse" else [2, 3]
    m = kf.FuzzModel(kind, unrestricted, files, kf.MAX_WRITE)
    m.open_fh[7] = (files[0], kf.O_RDWR)
    return m


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["cuse", "fuse"]), st.randoms(use_true_random=False),
       st.sampled_from(PARSE_LEVEL))
def test_malformed_requests_get_their_errno(kind: str, rng: random.Random, gen) -> None:
    conn, m = ready(kind), model(kind)
    case = gen(rng, m)
    event = conn.receive(case.raw)
    if case.expect.errno is None:
        assert not event.needs_reply
        return
    assert event.unique == case.unique
    if case.expect.errno == errno.ENOSYS:
        assert isinstance(event, ev.Unsupported), case.name
    else:
        assert isinstance(event, ev.BadRequest), case.name
        assert event.errno == case.expect.errno, (case.name, event.reason)
    reply = conn.reply_error(event, event.errno)  # answerable exactly once
    assert kf.check_reply(case, reply) is None


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([("cuse", False), ("fuse", False), ("cuse", True)]),
       st.randoms(use_true_random=False))
def test_unrestricted_ioctls_only_where_negotiated(setup: tuple[str, bool],
                                                   rng: random.Random) -> None:
    kind, unrestricted = setup
    conn, m = ready(kind, unrestricted=unrestricted), model(kind, unrestricted)
    case = kf.ioctl_unrestricted(rng, m)
    assert case is not None
    event = conn.receive(case.raw)
    if case.expect.errno == errno.EPROTO:
        assert isinstance(event, ev.BadRequest) and event.errno == errno.EPROTO
    else:
        assert isinstance(event, ev.Ioctl) and event.unrestricted


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["cuse", "fuse"]), st.booleans(), st.binary(max_size=200))
def test_receive_never_raises_on_any_bytes(kind: str, initialised: bool, raw: bytes) -> None:
    conn = ready(kind) if initialised else (
        Connection("cuse", devname="x") if kind == "cuse" else Connection("fuse"))
    event = conn.receive(raw)
    if isinstance(event, ev.BadRequest):
        assert event.errno in (errno.EINVAL, errno.EPROTO)
    if event.needs_reply:
        assert conn.is_outstanding(event.unique)


@given(st.sampled_from(["cuse", "fuse"]),
       st.sampled_from([w.OPEN, w.READ, w.WRITE, w.IOCTL, w.RELEASE, w.LOOKUP, w.DESTROY]))
def test_anything_before_init_is_eproto(kind: str, opcode: int) -> None:
    conn = Connection("cuse", devname="x") if kind == "cuse" else Connection("fuse")
    event = conn.receive(w.request(opcode, 5, bytes(64)))
    assert isinstance(event, ev.BadRequest) and event.errno == errno.EPROTO


MT = ord("m")


@given(st.integers(0, 3), st.integers(0, 255), st.integers(0, 255), st.integers(0, 2**14 - 1),
       st.binary(max_size=64))
def test_tape_ioctl_decoding_errnos(direction: int, type_: int, nr: int, size: int,
                                    arg: bytes) -> None:
    cmd = kf.ioc(direction, type_, nr, size)
    good = {1: {8}, 2: {48, 28}, 3: {8, 4}}
    try:
        request = ioctlwire.decode(cmd, arg)
    except TapeError as exc:
        if type_ != MT or nr not in good:
            assert exc.errno == errno.ENOTTY
        else:
            assert exc.errno == errno.EINVAL
            assert size not in good[nr] or (nr == 1 and len(arg) < 8)
        return
    assert type_ == MT and size in good[nr]
    assert request.kind.value == nr


# ---- the running request loop ----
@pytest.mark.parametrize(("kind", "unrestricted", "seed"),
                         [("cuse", True, 1), ("cuse", False, 2), ("fuse", False, 3)])
def test_daemon_answers_every_bad_request_and_keeps_serving(
        kind: str, unrestricted: bool, seed: int, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    stats = kf.FuzzStats()

    async def main() -> None:
        daemon = kf.FuzzDaemon(kind, tmp_path / "tape.cassette", unrestricted=unrestricted)
        async with daemon.running() as running:
            await kf.fuzz(running, random.Random(seed), 150, stats)

    with caplog.at_level(logging.ERROR, logger="backerd"):
        trio.run(main)
    assert not stats.failures, "\n".join(stats.failures)
    assert stats.cases == 150
    internal = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not internal, internal  # no request reached an internal-error path


def test_a_zero_byte_read_ends_the_loop(tmp_path: Path) -> None:
    # the kernel never hands over 0 bytes; a channel that does is at its end, and the
    # loop must stop rather than spin on it
    import socket

    from backerd.daemon.devfd import DeviceChannel

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    b.setblocking(False)
    a.close()

    async def main() -> None:
        with trio.fail_after(5):
            assert await DeviceChannel(b.fileno(), 4096).receive() is None

    trio.run(main)
    b.close()


def test_check_reply_catches_a_wrong_errno() -> None:
    case = kf.Case("x", b"", 9, kf.Expect(errno.EINVAL))
    assert kf.check_reply(case, struct.pack(w.OUT_HDR, 16, -errno.EIO, 9)) is not None
    assert kf.check_reply(case, struct.pack(w.OUT_HDR, 16, -errno.EINVAL, 9)) is None
    assert kf.check_reply(case, struct.pack(w.OUT_HDR, 16, -errno.EINVAL, 8)) is not None

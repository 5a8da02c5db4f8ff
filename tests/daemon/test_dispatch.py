"""The dispatcher against a fake kernel peer: raw request bytes in, raw replies out.

Requests are built with tests/testkit/kernelwire.py (struct formats from the notes), the
node handler is an in-memory record keeper, so chunk reassembly, read termination,
ioctl handling, concurrency and interruption are checked end to end without a kernel.
"""

from __future__ import annotations

import errno
import math
import struct
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from backerd.daemon.dispatch import Dispatcher
from backerd.errors import TapeError
from backerd.kernel.connection import Connection
from backerd.kernel.fusefs import Namespace
from testkit import kernelwire as w
from testkit.guards import escaped_assertions
from testkit.stwire import MTIOCGET, MTIOCTOP, OPS, mtget, mtop, parse_mtget, parse_mtop

KiB = 1024
MiB = 1024 * KiB
CHUNK = 128 * KiB  # CUSE's chunk size, and FUSE's with max_pages=32
O_WRONLY, O_RDWR = 0o1, 0o2


class RecordingHandler:
    """An in-memory tape of records with just enough st behaviour for the tests."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.pos = 0
        self.calls: list[tuple] = []
        self.write_error: int | None = None  # errno for the next write
        self.gate: trio.Event | None = None  # when set, reads wait for it
        self.release_gate: trio.Event | None = None

    async def open(self, flags: int) -> None:
        self.calls.append(("open", flags))

    async def read(self, size: int, exact: bool) -> bytes:
        self.calls.append(("read", size, exact))
        if self.gate is not None:
            await self.gate.wait()
        if self.pos >= len(self.records):
            return b""
        record = self.records[self.pos]
        if exact and len(record) > size:
            raise TapeError("block larger than the read buffer", errno=errno.ENOMEM)
        self.pos += 1
        return record

    async def write(self, data: bytes) -> int:
        self.calls.append(("write", len(data)))
        if self.write_error is not None:
            err, self.write_error = self.write_error, None
            raise TapeError("write refused", errno=err)
        self.records.append(data)
        self.pos = len(self.records)
        await trio.sleep(0)
        return len(data)

    async def ioctl(self, cmd: int, arg: bytes, out_size: int) -> bytes:
        self.calls.append(("ioctl", cmd, arg, out_size))
        if cmd == MTIOCTOP:
            op, _count = parse_mtop(arg)
            if op == OPS["MTREW"]:
                self.pos = 0
            return b""
        if cmd == MTIOCGET:
            return mtget(blkno=self.pos)
        if cmd == 0x1234:
            raise OSError(errno.ENOSYS, "not here")
        raise TapeError("unknown ioctl", errno=errno.ENOTTY)

    async def release(self) -> None:
        self.calls.append(("release",))
        if self.release_gate is not None:
            await self.release_gate.wait()
        self.pos = 0


class FakeKernel:
    """Feeds requests to a Dispatcher and collects its replies by unique."""

    def __init__(self, conn: Connection, nodes: dict, **kwargs) -> None:
        self.conn = conn
        self._to_daemon, self._requests = trio.open_memory_channel[bytes](math.inf)
        self.replies: dict[int, tuple[int, bytes]] = {}
        self._arrived: dict[int, trio.Event] = {}
        self.sent: list[bytes] = []
        self.dispatcher = Dispatcher(conn, nodes, self._on_reply, **kwargs)
        self._unique = 100

    def _on_reply(self, raw: bytes) -> None:
        self.sent.append(raw)
        unique, error, payload = w.reply(raw)
        assert unique not in self.replies, f"second reply to {unique}"
        self.replies[unique] = (error, payload)
        self._arrived.setdefault(unique, trio.Event()).set()

    async def receive(self) -> bytes | None:
        try:
            return await self._requests.receive()
        except trio.EndOfChannel:
            return None

    def unique(self) -> int:
        self._unique += 1
        return self._unique

    def push(self, raw: bytes) -> None:
        self._to_daemon.send_nowait(raw)

    async def reply(self, unique: int) -> tuple[int, bytes]:
        await self._arrived.setdefault(unique, trio.Event()).wait()
        return self.replies[unique]

    async def call(self, build: Callable[[int], bytes]) -> tuple[int, bytes]:
        unique = self.unique()
        self.push(build(unique))
        return await self.reply(unique)

    async def open(self, flags: int = O_RDWR, nodeid: int = 0) -> int:
        error, payload = await self.call(lambda u: w.open_(u, flags, nodeid=nodeid))
        assert error == 0
        return struct.unpack(w.OPEN_OUT, payload)[0]

    def close(self) -> None:
        self._to_daemon.close()


Body = Callable[[FakeKernel], Awaitable[None]]


def run(body: Body, *, kind: str = "cuse", nodes: dict | None = None, max_pages: int = 32,
        unrestricted: bool = False, namespace: Namespace | None = None) -> None:
    async def main() -> None:
        if kind == "cuse":
            conn = Connection("cuse", devname="backer0", unrestricted_ioctl=unrestricted)
        else:
            conn = Connection("fuse", max_pages=max_pages)
        kernel = FakeKernel(conn, nodes if nodes is not None else {0: RecordingHandler()},
                            namespace=namespace)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(kernel.dispatcher.run, kernel.receive)
            init = w.cuse_init if kind == "cuse" else w.init
            error, _ = await kernel.call(lambda u: init(u))
            assert error == 0
            assert kernel.dispatcher.initialized.is_set()
            with trio.fail_after(30):  # a hang is a failure, not a stuck suite
                await body(kernel)
            kernel.close()

    # The dispatcher answers EIO to whatever a handler or a reply raises: an assertion
    # failing in the fake handler or the fake kernel must fail the test all the same.
    with escaped_assertions():
        trio.run(main)


def test_an_assertion_failing_in_the_fake_kernel_fails_the_test() -> None:
    """A dispatcher bug that only the fake kernel notices (a second reply to a request)
    must not be swallowed by the dispatcher's catch-all, as it used to be."""

    async def body(k: FakeKernel) -> None:
        fh = await k.open(O_WRONLY)
        send = k.dispatcher._send
        k.dispatcher._send = lambda raw: (send(raw), send(raw))  # every reply sent twice
        error, _ = await k.call(lambda u: w.write(u, fh, 0, b"record"))
        assert error == 0  # the kernel got its first reply: the body alone passes

    with pytest.raises(AssertionError, match="second reply"):
        run(body)


def test_an_assertion_failing_in_a_fake_handler_fails_the_test() -> None:
    class Checking(RecordingHandler):
        async def write(self, data: bytes) -> int:
            assert len(data) < 100, "the fake only takes small records"
            return await super().write(data)

    async def body(k: FakeKernel) -> None:
        fh = await k.open(O_WRONLY)
        error, _ = await k.call(lambda u: w.write(u, fh, 0, bytes(200)))
        assert error == -errno.EIO  # all the dispatcher can do with a failing handler

    with pytest.raises(AssertionError, match="only takes small records"):
        run(body, nodes={0: Checking()})


def chunks(record: bytes, size: int = CHUNK) -> list[tuple[int, bytes]]:
    return [(off, record[off:off + size]) for off in range(0, len(record), size)]


# ---- writes ----

def test_one_mib_write_in_128k_chunks_is_one_record() -> None:
    handler = RecordingHandler()
    record = bytes(range(256)) * (MiB // 256)

    async def body(k: FakeKernel) -> None:
        fh = await k.open(O_WRONLY)
        for off, piece in chunks(record):
            error, payload = await k.call(lambda u, o=off, p=piece: w.write(u, fh, o, p))
            assert (error, payload) == (0, struct.pack("<II", CHUNK, 0))
        assert handler.records == []  # a full chunk may continue: not complete yet
        error, _ = await k.call(lambda u: w.release(u, fh))
        assert error == 0
        assert handler.records == [record]

    run(body, nodes={0: handler})


def test_writes_of_several_sizes_stay_separate_records() -> None:
    handler = RecordingHandler()
    sizes = [10240, CHUNK, 3 * CHUNK, 3 * CHUNK + 5, 1, 2 * MiB]
    records = [bytes([i]) * size for i, size in enumerate(sizes)]

    async def body(k: FakeKernel) -> None:
        fh = await k.open(O_WRONLY)
        for record in records:
            for off, piece in chunks(record):
                error, payload = await k.call(lambda u, o=off, p=piece: w.write(u, fh, o, p))
                assert error == 0 and struct.unpack("<II", payload)[0] == len(piece)
        await k.call(lambda u: w.flush(u, fh))
        assert handler.records == records
        await k.call(lambda u: w.release(u, fh))
        assert handler.records == records

    run(body, nodes={0: handler})


def test_fuse_three_megabyte_write_with_max_pages_256() -> None:
    handler = RecordingHandler()
    record = bytes(range(251)) * (3_000_000 // 251) + b"tail"

    async def body(k: FakeKernel) -> None:
        fh = await k.open(O_WRONLY, nodeid=2)
        replies = []
        for off, piece in chunks(record, MiB):
            replies.append(await k.call(lambda u, o=off, p=piece: w.write(u, fh, o, p,
                                                                          nodeid=2)))
        # the last chunk is short: the record is complete and written right away
        assert handler.records == [record]
        assert [struct.unpack("<II", p)[0] for _, p in replies] == [MiB, MiB, len(record) - 2 * MiB]

    run(body, kind="fuse", max_pages=256, nodes={2: handler},
        namespace=Namespace(["backer0"]))


def test_unaligned_user_buffer_shortens_the_first_chunk_only() -> None:
    # The kernel pins whole pages: a buffer starting 16 bytes into a page gets a first
    # chunk 16 bytes short of the maximum, and the syscall continues after it.
    handler = RecordingHandler()
    record = bytes(range(200)) * 1500  # 300000 bytes

    async def body(k: FakeKernel) -> None:
        fh = await k.open(O_WRONLY)
        first = CHUNK - 16
        pieces = [(0, record[:first]), (first, record[first:first + CHUNK]),
                  (first + CHUNK, record[first + CHUNK:])]
        for off, piece in pieces:
            error, _ = await k.call(lambda u, o=off, p=piece: w.write(u, fh, o, p))
            assert error == 0
        assert handler.records == [record]

    run(body, nodes={0: handler})


def test_short_write_error_is_answered_exactly() -> None:
    handler = RecordingHandler()

    async def body(k: FakeKernel) -> None:
        fh = await k.open(O_WRONLY)
        handler.write_error = errno.ENOSPC
        error, _ = await k.call(lambda u: w.write(u, fh, 0, bytes(10240)))
        assert error == -errno.ENOSPC
        error, _ = await k.call(lambda u: w.write(u, fh, 0, bytes(10240)))
        assert error == 0
        assert handler.records == [bytes(10240)]

    run(body, nodes={0: handler})


def test_error_of_a_lazily_completed_record_is_reported_on_the_next_request() -> None:
    handler = RecordingHandler()

    async def body(k: FakeKernel) -> None:
        fh = await k.open(O_WRONLY)
        assert (await k.call(lambda u: w.write(u, fh, 0, bytes(CHUNK))))[0] == 0
        handler.write_error = errno.ENOSPC
        error, _ = await k.call(lambda u: w.write(u, fh, 0, b"next"))
        assert error == -errno.ENOSPC  # the deferred error; "next" was not written
        assert (await k.call(lambda u: w.write(u, fh, 0, bytes(CHUNK))))[0] == 0
        handler.write_error = errno.EIO
        assert (await k.call(lambda u: w.flush(u, fh)))[0] == -errno.EIO  # close(2) sees it
        assert handler.records == []

    run(body, nodes={0: handler})


def test_continuation_without_an_open_record_fails() -> None:
    async def body(k: FakeKernel) -> None:
        fh = await k.open(O_WRONLY)
        error, _ = await k.call(lambda u: w.write(u, fh, CHUNK, bytes(100)))
        assert error == -errno.EIO

    run(body)


# ---- reads ----

def test_exact_multiple_record_read_ends_with_a_zero_byte_continuation() -> None:
    handler = RecordingHandler()
    big = bytes(range(256)) * (2 * CHUNK // 256)
    handler.records = [big, b"second"]

    async def body(k: FakeKernel) -> None:
        fh = await k.open(0)
        got = []
        for off in (0, CHUNK, 2 * CHUNK):
            error, payload = await k.call(lambda u, o=off: w.read(u, fh, o, CHUNK))
            assert error == 0
            got.append(payload)
        assert got == [big[:CHUNK], big[CHUNK:], b""]
        assert handler.calls[-1] == ("read", CHUNK, False)  # the buffer may be bigger
        error, payload = await k.call(lambda u: w.read(u, fh, 0, CHUNK))
        assert (error, payload) == (0, b"second")  # the next syscall gets the next record

    run(body, nodes={0: handler})


def test_small_read_is_exact_and_oversized_block_is_enomem() -> None:
    handler = RecordingHandler()
    handler.records = [bytes(65536), bytes(10240)]

    async def body(k: FakeKernel) -> None:
        fh = await k.open(0)
        error, _ = await k.call(lambda u: w.read(u, fh, 0, 10240))
        assert error == -errno.ENOMEM
        assert handler.calls[-1] == ("read", 10240, True)
        handler.pos = 1
        error, payload = await k.call(lambda u: w.read(u, fh, 0, 10240))
        assert (error, len(payload)) == (0, 10240)

    run(body, nodes={0: handler})


def test_read_shorter_than_the_chunk_and_continuation_past_it() -> None:
    handler = RecordingHandler()
    handler.records = [b"a" * 1000]

    async def body(k: FakeKernel) -> None:
        fh = await k.open(0)
        assert (await k.call(lambda u: w.read(u, fh, 0, CHUNK)))[1] == b"a" * 1000
        assert (await k.call(lambda u: w.read(u, fh, CHUNK, CHUNK))) == (0, b"")
        assert (await k.call(lambda u: w.read(u, fh, 0, CHUNK))) == (0, b"")  # end of tape

    run(body, nodes={0: handler})


def test_write_then_read_completes_the_record_first() -> None:
    handler = RecordingHandler()

    async def body(k: FakeKernel) -> None:
        fh = await k.open(O_RDWR)
        await k.call(lambda u: w.write(u, fh, 0, bytes(CHUNK)))
        await k.call(lambda u: w.read(u, fh, 0, 512))
        assert handler.calls[1:] == [("write", CHUNK), ("read", 512, True)]

    run(body, nodes={0: handler})


# ---- ioctls ----

def test_restricted_mtio_round_trip_and_fdflush_enotty() -> None:
    handler = RecordingHandler()
    handler.records = [b"r1", b"r2"]
    handler.pos = 2

    async def body(k: FakeKernel) -> None:
        fh = await k.open(0)
        error, payload = await k.call(lambda u: w.ioctl(u, fh, MTIOCGET, out_size=48))
        assert error == 0 and struct.unpack_from(w.IOCTL_OUT, payload) == (0, 0, 0, 0)
        assert parse_mtget(payload[16:])["block"] == 2
        rewind = mtop("MTREW")
        error, payload = await k.call(lambda u: w.ioctl(u, fh, MTIOCTOP, data=rewind))
        assert (error, len(payload)) == (0, 16)
        assert handler.pos == 0 and ("ioctl", MTIOCTOP, rewind, 0) in handler.calls
        assert (await k.call(lambda u: w.ioctl(u, fh, w.FDFLUSH)))[0] == -errno.ENOTTY
        assert (await k.call(lambda u: w.ioctl(u, fh, 0x1234)))[0] == -errno.ENOTTY

    run(body, nodes={0: handler})


def test_unrestricted_ioctl_retry_then_serve() -> None:
    handler = RecordingHandler()
    arg = 0x7FFC0000_1000
    flags = w.FUSE_IOCTL_UNRESTRICTED

    async def body(k: FakeKernel) -> None:
        fh = await k.open(0)
        error, payload = await k.call(lambda u: w.ioctl(u, fh, MTIOCGET, arg=arg, flags=flags))
        assert error == 0
        assert struct.unpack_from(w.IOCTL_OUT, payload) == (0, w.FUSE_IOCTL_RETRY, 0, 1)
        assert struct.unpack_from("<QQ", payload, 16) == (arg, 48)
        assert not any(c[0] == "ioctl" for c in handler.calls)
        error, payload = await k.call(
            lambda u: w.ioctl(u, fh, MTIOCGET, arg=arg, flags=flags, out_size=48))
        assert error == 0 and len(payload) == 16 + 48

        error, payload = await k.call(lambda u: w.ioctl(u, fh, MTIOCTOP, arg=arg, flags=flags))
        assert struct.unpack_from(w.IOCTL_OUT, payload) == (0, w.FUSE_IOCTL_RETRY, 1, 0)
        assert struct.unpack_from("<QQ", payload, 16) == (arg, 8)
        rewind = mtop("MTREW")
        error, payload = await k.call(
            lambda u: w.ioctl(u, fh, MTIOCTOP, arg=arg, flags=flags, data=rewind))
        assert error == 0 and handler.calls[-1] == ("ioctl", MTIOCTOP, rewind, 0)

        error, _ = await k.call(lambda u: w.ioctl(u, fh, w.FDFLUSH, arg=0, flags=flags))
        assert error == -errno.ENOTTY

    run(body, nodes={0: handler}, unrestricted=True)


# ---- robustness ----

def test_garbage_unknown_opcodes_and_bad_handles_do_not_stop_the_loop() -> None:
    async def body(k: FakeKernel) -> None:
        k.push(b"\x01\x02")  # not even a header: no reply possible
        assert (await k.call(lambda u: w.request(9999, u, bytes(8))))[0] == -errno.ENOSYS
        assert (await k.call(lambda u: w.request(w.OPEN, u, b"\0")))[0] == -errno.EINVAL
        assert (await k.call(lambda u: w.read(u, 77, 0, 10)))[0] == -errno.EBADF
        assert (await k.call(lambda u: w.open_(u, 0, nodeid=5)))[0] == -errno.ENOENT
        assert (await k.call(lambda u: w.getattr_(u, 1)))[0] == -errno.ENOSYS  # not on CUSE
        fh = await k.open(0)
        error, payload = await k.call(lambda u: w.poll(u, fh, 0x5))
        assert (error, payload) == (0, struct.pack("<II", 0x5, 0))

    run(body)


def test_fuse_namespace_requests_are_answered_by_the_dispatcher() -> None:
    async def body(k: FakeKernel) -> None:
        error, payload = await k.call(lambda u: w.lookup(u, b"nbacker0"))
        assert error == 0 and struct.unpack_from(w.ENTRY_OUT, payload)[0] == 3
        assert (await k.call(lambda u: w.open_(u, 0, nodeid=1)))[0] == -errno.EISDIR
        fh = await k.open(O_WRONLY, nodeid=3)
        assert (await k.call(lambda u: w.setattr_size(u, 3, 0)))[0] == 0

        error, _ = await k.call(lambda u: w.write(u, fh, 0, b"x", nodeid=3))
        assert error == 0
        assert (await k.call(lambda u: w.write(u, fh, 0, b"x", nodeid=2)))[0] == -errno.EBADF

    handlers = {2: RecordingHandler(), 3: RecordingHandler()}
    run(body, kind="fuse", nodes=handlers, namespace=Namespace(["backer0", "nbacker0"]))
    assert handlers[3].records == [b"x"] and handlers[2].records == []


def test_openers_are_served_concurrently_and_in_order_per_file() -> None:
    slow, fast = RecordingHandler(), RecordingHandler()
    slow.gate = trio.Event()
    slow.records = [b"slow record"]

    async def body(k: FakeKernel) -> None:
        fh_slow = await k.open(0, nodeid=2)
        fh_fast = await k.open(O_WRONLY, nodeid=3)
        read_unique = k.unique()
        k.push(w.read(read_unique, fh_slow, 0, 100, nodeid=2))
        ioctl_unique = k.unique()
        k.push(w.ioctl(ioctl_unique, fh_slow, MTIOCGET, out_size=48, nodeid=2))
        # The other node answers while the read is stuck in its handler...
        for i in range(3):
            error, _ = await k.call(lambda u, i=i: w.write(u, fh_fast, 0, bytes([i]) * 10,
                                                           nodeid=3))
            assert error == 0
        assert fast.records == [bytes([i]) * 10 for i in range(3)]
        # ...and the ioctl of the same file waits behind its read.
        assert read_unique not in k.replies and ioctl_unique not in k.replies
        slow.gate.set()
        assert await k.reply(read_unique) == (0, b"slow record")
        assert (await k.reply(ioctl_unique))[0] == 0
        assert [c[0] for c in slow.calls] == ["open", "read", "ioctl"]

    run(body, kind="fuse", nodes={2: slow, 3: fast},
        namespace=Namespace(["slow", "fast"]))


def test_interrupt_cancels_a_waiting_read() -> None:
    handler = RecordingHandler()
    handler.gate = trio.Event()
    handler.records = [b"never delivered"]

    async def body(k: FakeKernel) -> None:
        fh = await k.open(0)
        target = k.unique()
        k.push(w.read(target, fh, 0, 100))
        queued = k.unique()
        k.push(w.read(queued, fh, 0, 100))
        await trio.testing.wait_all_tasks_blocked()
        k.push(w.interrupt(k.unique(), target))
        k.push(w.interrupt(k.unique(), queued))
        k.push(w.interrupt(k.unique(), 999_999))  # already gone: ignored
        assert (await k.reply(target))[0] == -errno.EINTR
        assert (await k.reply(queued))[0] == -errno.EINTR
        assert handler.pos == 0
        assert [c[0] for c in handler.calls] == ["open", "read"]  # the queued one never ran

    run(body, nodes={0: handler})


def test_open_waits_for_an_earlier_release_of_the_node() -> None:
    handler = RecordingHandler()
    handler.release_gate = trio.Event()

    async def body(k: FakeKernel) -> None:
        fh = await k.open(O_WRONLY)
        release_unique, open_unique = k.unique(), k.unique()
        k.push(w.release(release_unique, fh))
        k.push(w.open_(open_unique, 0))
        await trio.testing.wait_all_tasks_blocked()
        assert open_unique not in k.replies
        handler.release_gate.set()
        assert (await k.reply(open_unique))[0] == 0
        assert [c[0] for c in handler.calls] == ["open", "release", "open"]

    run(body, nodes={0: handler})


def test_connection_end_finishes_buffered_records_and_releases() -> None:
    handler = RecordingHandler()

    async def body(k: FakeKernel) -> None:
        fh = await k.open(O_WRONLY)
        await k.call(lambda u: w.write(u, fh, 0, bytes(CHUNK)))
        assert handler.records == []

    run(body, nodes={0: handler})
    assert handler.records == [bytes(CHUNK)]
    assert handler.calls[-1] == ("release",)


@pytest.mark.parametrize("kind", ["cuse", "fuse"])
def test_every_reply_is_well_formed(kind: str) -> None:
    # Replies are parsed (length checked) by FakeKernel; this drives a mixed session.
    handler = RecordingHandler()

    async def body(k: FakeKernel) -> None:
        node = 0 if kind == "cuse" else 2
        fh = await k.open(O_RDWR, nodeid=node)
        await k.call(lambda u: w.write(u, fh, 0, b"abc", nodeid=node))
        await k.call(lambda u: w.ioctl(u, fh, MTIOCTOP, data=mtop("MTREW"),
                                       nodeid=node))
        error, payload = await k.call(lambda u: w.read(u, fh, 0, 100, nodeid=node))
        assert (error, payload) == (0, b"abc")
        await k.call(lambda u: w.release(u, fh, nodeid=node))
        assert len(k.sent) == len(k.replies)

    namespace = Namespace(["backer0"]) if kind == "fuse" else None
    run(body, kind=kind, nodes={0 if kind == "cuse" else 2: handler}, namespace=namespace)


class BrokenHandler(RecordingHandler):
    async def read(self, size: int, exact: bool) -> bytes:
        raise RuntimeError("a bug in the handler")

    async def ioctl(self, cmd: int, arg: bytes, out_size: int) -> bytes:
        return bytes(out_size + 1)  # more than the kernel offered


def test_handler_bugs_become_eio_and_serving_goes_on() -> None:
    handler = BrokenHandler()

    async def body(k: FakeKernel) -> None:
        fh = await k.open(O_RDWR)
        assert (await k.call(lambda u: w.read(u, fh, 0, 100)))[0] == -errno.EIO
        assert (await k.call(lambda u: w.ioctl(u, fh, MTIOCGET, out_size=48)))[0] == -errno.EIO
        assert (await k.call(lambda u: w.write(u, fh, 0, b"still fine")))[0] == 0
        assert handler.records == [b"still fine"]

    run(body, nodes={0: handler})


# ---- served at once ----

class ImmediateRecordingHandler(RecordingHandler):
    """Serves reads and writes at once while ``ready``; says it would wait otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = True

    def write_now(self, data: bytes) -> int | None:
        if not self.ready:
            return None
        self.calls.append(("write_now", len(data)))
        if self.write_error is not None:
            err, self.write_error = self.write_error, None
            raise TapeError("write refused", errno=err)
        self.records.append(data)
        self.pos = len(self.records)
        return len(data)

    def read_now(self, size: int, exact: bool) -> bytes | None:
        if not self.ready:
            return None
        self.calls.append(("read_now", size, exact))
        if self.pos >= len(self.records):
            return b""
        record = self.records[self.pos]
        if len(record) > size:
            raise TapeError("block larger than the read buffer", errno=errno.ENOMEM)
        self.pos += 1
        return record


def test_whole_small_syscalls_are_served_at_once_and_others_as_before() -> None:
    handler = ImmediateRecordingHandler()
    big = bytes(range(256)) * (CHUNK // 256)

    async def body(k: FakeKernel) -> None:
        fh = await k.open(O_RDWR)
        assert await k.call(lambda u: w.write(u, fh, 0, b"a" * 10240)) == (
            0, struct.pack("<II", 10240, 0))
        handler.ready = False  # the handler would wait: the async write, same answer
        assert (await k.call(lambda u: w.write(u, fh, 0, b"b" * 300)))[0] == 0
        handler.ready = True
        for off, piece in chunks(big + b"c"):  # a full chunk may continue: framed
            assert (await k.call(lambda u, o=off, p=piece: w.write(u, fh, o, p)))[0] == 0
        handler.write_error = errno.ENOSPC  # an error served at once keeps its errno
        assert (await k.call(lambda u: w.write(u, fh, 0, b"d")))[0] == -errno.ENOSPC
        await k.call(lambda u: w.ioctl(u, fh, MTIOCTOP, data=mtop("MTREW")))
        assert await k.call(lambda u: w.read(u, fh, 0, 10240)) == (0, b"a" * 10240)
        handler.ready = False
        assert await k.call(lambda u: w.read(u, fh, 0, 400)) == (0, b"b" * 300)
        handler.ready = True
        assert (await k.call(lambda u: w.read(u, fh, 0, 100)))[0] == -errno.ENOMEM
        await k.call(lambda u: w.release(u, fh))

    run(body, nodes={0: handler})
    assert handler.records == [b"a" * 10240, b"b" * 300, big + b"c"]
    assert [c[0] for c in handler.calls] == [
        "open", "write_now", "write", "write", "write_now", "ioctl", "read_now", "read",
        "read_now", "release"]


def test_nothing_is_served_at_once_past_a_request_of_the_file_still_queued() -> None:
    handler = ImmediateRecordingHandler()
    handler.records = [b"first", b"second"]

    async def body(k: FakeKernel) -> None:
        fh = await k.open(0)
        handler.ready, handler.gate = False, trio.Event()
        first = k.unique()
        k.push(w.read(first, fh, 0, 100))  # waits in the handler
        await trio.testing.wait_all_tasks_blocked()
        handler.ready = True
        second = k.unique()
        k.push(w.read(second, fh, 0, 100))  # could be served at once, but comes second
        await trio.testing.wait_all_tasks_blocked()
        assert first not in k.replies and second not in k.replies
        handler.gate.set()
        assert await k.reply(first) == (0, b"first")
        assert await k.reply(second) == (0, b"second")
        # with the queue empty again, the next read is served at once
        assert (await k.call(lambda u: w.read(u, fh, 0, 100)))[1] == b""
        assert [c[0] for c in handler.calls] == ["open", "read", "read", "read_now"]

    run(body, nodes={0: handler})

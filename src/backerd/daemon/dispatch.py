"""Serve one FUSE/CUSE connection: route requests to per-node handlers, one call per syscall.

Theory of operation. The kernel splits a read(2)/write(2) larger than its chunk size
into several requests; the ``NodeHandler`` must see one call per user read/write, which
is what tape block semantics need. The rules that turn chunks back into syscalls are
pure and live in ``kernel.chunks`` (one ``SyscallFramer`` per open file); the
dispatcher drives them: it writes the record a request completes before serving it
(its errno answers that request, as st reports a deferred write error), hands a write
syscall's record to ``handler.write`` once its last chunk arrives, and fetches one
block per read syscall with ``handler.read(size, exact)``.

Concurrency: every open file has its own worker task fed in request order, so requests
of one opener stay ordered while different openers (and nodes) are served concurrently.
Handlers are async and must not block the loop. A read or write that is a whole syscall
by itself, with nothing of its file queued, is offered to an ``ImmediateHandler`` as it
is received, without the hop to the file's task (a task hop costs about as much as a
buffered 10 KiB record); when the handler says it would wait, it is queued as any other.
An OPEN waits for RELEASEs of the same node that were received before it (FUSE sends
RELEASE after close(2) returns). INTERRUPT cancels the matching request if it is still
queued or waiting inside the handler (answer EINTR); a handler call that completes anyway
is answered with its result.
"""

from __future__ import annotations

import contextvars
import errno as _errno
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

import trio

from backerd.errors import BackerError
from backerd.kernel import abi, chunks
from backerd.kernel import events as ev
from backerd.kernel.connection import Connection, State, ioctl_retry_iovecs
from backerd.kernel.fusefs import NAMESPACE_REQUESTS, Namespace

# Who issued the request being handled (uid, gid, pid from the kernel's header), for
# handlers whose answer depends on the caller's privilege (st: MTSETDRVBUFFER).
caller_uid: contextvars.ContextVar[int] = contextvars.ContextVar("caller_uid", default=-1)

log = logging.getLogger("backerd.dispatch")

T = TypeVar("T")

POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM = 0x1, 0x4, 0x40, 0x100
O_ACCMODE, O_RDONLY = 0o3, 0o0
# Seconds granted at shutdown to finish buffered records and release open files.
RELEASE_GRACE = 30.0


class NodeHandler(Protocol):
    """What one served node (e.g. /dev/backer0) does; one call per syscall.

    Errors are raised as ``BackerError`` (e.g. ``TapeError(errno)``) or ``OSError``;
    their errno is what the user's syscall returns. A call may be cancelled at any of
    its checkpoints when the user's syscall is interrupted: shield what must not tear.
    """

    async def open(self, flags: int) -> None: ...

    async def read(self, size: int, exact: bool) -> bytes: ...

    async def write(self, data: bytes) -> int: ...

    async def ioctl(self, cmd: int, arg: bytes, out_size: int) -> bytes: ...

    async def release(self) -> None: ...


@runtime_checkable
class ImmediateHandler(Protocol):
    """A node that can serve some reads and writes at once, on the loop.

    Each call returns None, having done nothing, when serving it may wait (for the tape,
    the codec, or another call on the device); the dispatcher then calls the async
    ``read``/``write`` in order. Errors are raised as from ``read``/``write``.
    """

    def read_now(self, size: int, exact: bool) -> bytes | None: ...

    def write_now(self, data: bytes) -> int | None: ...


@runtime_checkable
class FlushingHandler(Protocol):
    """A node that records at close(2): FLUSH (before RELEASE) is st_flush, its error close's."""

    async def flush(self) -> None: ...


def errno_of(exc: BaseException) -> int:
    if isinstance(exc, BackerError):
        return exc.errno
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    log.error("handler failed unexpectedly", exc_info=exc)
    return _errno.EIO


@dataclass
class _Failed:
    errno: int


@dataclass
class _Node:
    handler: NodeHandler
    releasing: int = 0  # RELEASEs received and not finished yet
    released: trio.Event = field(default_factory=trio.Event)


@dataclass
class _OpenFile:
    fh: int
    nodeid: int
    node: _Node
    requests: trio.MemorySendChannel
    queue: trio.MemoryReceiveChannel
    framer: chunks.SyscallFramer
    immediate: ImmediateHandler | None  # the handler, when it can serve at once
    pending: int = 0  # requests queued for the file's task and not answered yet
    read_only: bool = False  # opened O_RDONLY: no WRITE may reach the framer or the tape


class Dispatcher:
    """Routes the requests of one connection; ``run`` serves until it closes."""

    def __init__(
        self,
        conn: Connection,
        nodes: Mapping[int, NodeHandler],
        send: Callable[[bytes], None],
        *,
        namespace: Namespace | None = None,
        open_flags: int = 0,
    ) -> None:
        self.conn = conn
        self._nodes = {nodeid: _Node(handler) for nodeid, handler in nodes.items()}
        self._send = send
        self._namespace = namespace
        self._open_flags = open_flags
        self._files: dict[int, _OpenFile] = {}  # by fh, until their RELEASE arrives
        self._unreleased: dict[int, _OpenFile] = {}  # by fh, until the handler released
        self._next_fh = 1
        self._inflight: dict[int, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None
        self.initialized = trio.Event()
        self.closed = trio.Event()

    # ---- the loop ----
    async def run(self, receive: Callable[[], Awaitable[bytes | None]]) -> None:
        """Handle requests from ``receive`` until it returns None (connection gone)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                while (buf := await receive()) is not None:
                    self.handle(buf)
                nursery.cancel_scope.cancel()  # nobody is left to answer
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + RELEASE_GRACE
                await self._release_all()
            self.closed.set()

    def handle(self, buf: bytes) -> None:
        """Parse one request and answer it or hand it to a task. Never raises."""
        request = self.conn.receive(buf)
        try:
            self._route(request)
        except Exception:
            log.exception("internal error routing %s", type(request).__name__)
            if self.conn.is_outstanding(request.unique):  # never leave a caller hanging
                self._send(self.conn.reply_error(request, _errno.EIO))

    def _route(self, request: ev.Request) -> None:
        conn = self.conn
        if isinstance(request, _FILE_REQUESTS):  # first: nearly every request is one
            self._enqueue(request)
        elif isinstance(request, ev.Init | ev.CuseInit):
            reply = (conn.reply_init(request) if isinstance(request, ev.Init)
                     else conn.reply_cuse_init(request))
            self._send(reply)
            if conn.state is State.READY:
                log.debug("%s: kernel %d.%d, speaking 7.%d", conn.kind, request.major,
                          request.minor, conn.minor)
                self.initialized.set()
            else:
                log.error("%s: kernel protocol %d.%d refused", conn.kind, request.major,
                          request.minor)
        elif isinstance(request, ev.BadRequest):
            log.warning("bad request (opcode %d): %s", request.opcode, request.reason)
            if request.needs_reply:
                self._send(conn.reply_error(request, request.errno))
        elif isinstance(request, ev.Unsupported):
            log.debug("unsupported opcode %d -> ENOSYS", request.opcode)
            self._send(conn.reply_error(request, request.errno))
        elif isinstance(request, ev.Interrupt):
            scope = self._inflight.get(request.target)
            if scope is not None:
                scope.cancel()
        elif isinstance(request, ev.Destroy):
            self._send(conn.reply_destroy(request))
        elif self._namespace is not None and isinstance(request, NAMESPACE_REQUESTS):
            reply = self._namespace.answer(conn, request)
            if reply is not None:
                self._send(reply)
        elif isinstance(request, ev.Open):
            self._start_open(request)
        elif isinstance(request, ev.Poll):
            # Always ready: handlers wait inside read/write themselves, never the loop.
            ready = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM
            self._send(conn.reply_poll(request, request.events & ready))
        elif request.needs_reply:  # e.g. a namespace request on CUSE, which has none
            self._send(conn.reply_error(request, _errno.ENOSYS))

    # ---- replying ----
    def _reply(self, request: ev.Request, build: Callable[[], bytes]) -> None:
        self._inflight.pop(request.unique, None)
        try:
            payload = build()
        except Exception:
            log.exception("cannot build the reply to %s", type(request).__name__)
            if not self.conn.is_outstanding(request.unique):
                return
            payload = self.conn.reply_error(request, _errno.EIO)
        self._send(payload)

    def _fail(self, request: ev.Request, errno: int) -> None:
        self._reply(request, lambda: self.conn.reply_error(request, errno))

    async def _guarded(self, request: ev.Request, call: Callable[[], Awaitable[T]]) -> T | _Failed:
        """Run a handler call; INTERRUPT of ``request`` cancels it (-> EINTR)."""
        scope = self._inflight.get(request.unique) or trio.CancelScope()
        done = False
        try:
            with scope:
                result = await call()
                done = True
        except Exception as exc:
            return _Failed(errno_of(exc))
        return result if done else _Failed(_errno.EINTR)

    # ---- OPEN ----
    def _start_open(self, request: ev.Open) -> None:
        node = self._nodes.get(request.nodeid)
        if node is None:
            is_dir = request.nodeid == abi.FUSE_ROOT_ID and self._namespace is not None
            self._send(self.conn.reply_error(request,
                                             _errno.EISDIR if is_dir else _errno.ENOENT))
            return
        assert self._nursery is not None
        self._inflight[request.unique] = trio.CancelScope()
        self._nursery.start_soon(self._open, request, node)

    async def _open(self, request: ev.Open, node: _Node) -> None:
        scope = self._inflight[request.unique]
        with scope:
            while node.releasing:
                await node.released.wait()
        if scope.cancelled_caught:
            self._fail(request, _errno.EINTR)
            return
        try:
            # Not interruptible: a handler that opened must be released by its file.
            await node.handler.open(request.flags)
        except Exception as exc:
            self._fail(request, errno_of(exc))
            return
        fh = self._next_fh
        self._next_fh += 1
        send, receive = trio.open_memory_channel[ev.Request](math.inf)
        immediate = node.handler if isinstance(node.handler, ImmediateHandler) else None
        file = _OpenFile(fh, request.nodeid, node, send, receive,
                         chunks.SyscallFramer(self.conn.max_chunk), immediate,
                         read_only=request.flags & O_ACCMODE == O_RDONLY)
        self._files[fh] = self._unreleased[fh] = file
        assert self._nursery is not None
        self._nursery.start_soon(self._serve_file, file)
        self._reply(request, lambda: self.conn.reply_open(request, fh, self._open_flags))

    # ---- per-file queue ----
    def _enqueue(self, request: ev.Read | ev.Write | ev.Ioctl | ev.Flush | ev.Fsync
                 | ev.Release) -> None:
        file = self._files.get(request.fh)
        if file is None or file.nodeid != request.nodeid:
            log.warning("%s for unknown file handle %d", type(request).__name__, request.fh)
            self._send(self.conn.reply_error(request, _errno.EBADF))
            return
        if isinstance(request, ev.Release):
            file.node.releasing += 1
            self._files.pop(request.fh)
        elif self._serve_now(file, request):
            return
        else:
            self._inflight[request.unique] = trio.CancelScope()
        file.pending += 1
        file.requests.send_nowait(request)

    def _serve_now(self, file: _OpenFile, request: ev.Request) -> bool:
        """Serve a read or write that is a whole syscall at once, when nothing of the
        file is queued before it and the handler need not wait; False: not served."""
        handler = file.immediate
        if handler is None or file.pending:
            return False
        if isinstance(request, ev.Write):
            op, size = chunks.Op.WRITE, len(request.data)
        elif isinstance(request, ev.Read):
            op, size = chunks.Op.READ, request.size
        else:
            return False
        if not file.framer.whole(op, request.offset, size):
            return False
        file.framer.begin(op, request.offset)  # completes nothing: no record is buffered
        try:
            result = (handler.write_now(request.data) if isinstance(request, ev.Write)
                      else handler.read_now(size, True))
        except Exception as exc:
            self._fail(request, errno_of(exc))
            return True
        if result is None:
            return False
        if isinstance(request, ev.Write):  # as WriteRecord.covered for a lone chunk
            count = max(0, min(size, int(result)))
            self._reply(request, lambda: self.conn.reply_write(request, count))
        else:  # as SyscallFramer.fetched for an exact FetchBlock
            piece = bytes(result)[:size]
            self._reply(request, lambda: self.conn.reply_data(request, piece))
        return True

    async def _serve_file(self, file: _OpenFile) -> None:
        async for request in file.queue:
            try:
                await self._serve_queued(file, request)
            finally:
                file.pending -= 1
            if isinstance(request, ev.Release):
                return

    async def _serve_queued(self, file: _OpenFile, request: ev.Request) -> None:
        """One request of the file, in its order."""
        if isinstance(request, ev.Release):
            await self._release(file, request)
            return
        scope = self._inflight.get(request.unique)
        if scope is not None and scope.cancel_called:
            if isinstance(request, ev.Write) and file.framer.continues(
                    chunks.Op.WRITE, request.offset):
                file.framer.abandon()  # the interrupted syscall's record is dropped
            self._fail(request, _errno.EINTR)
            return
        try:
            op, offset = _framing(request)
            errno = await self._complete_write(file, file.framer.begin(op, offset))
            if errno:
                self._fail(request, errno)
            elif isinstance(request, ev.Write):
                await self._write(file, request)
            elif isinstance(request, ev.Read):
                await self._read(file, request)
            elif isinstance(request, ev.Ioctl):
                await self._ioctl(file, request)
            else:  # FLUSH: buffered blocks and, after a write, the filemark (FSYNC: nothing)
                await self._flush(file, request)
        except Exception:
            log.exception("internal error serving %s", type(request).__name__)
            if self.conn.is_outstanding(request.unique):
                self._fail(request, _errno.EIO)

    async def _complete_write(self, file: _OpenFile, record: bytes | None) -> int:
        """Hand a completed record to the handler; its errno (0 when written whole)."""
        if record is None:
            return 0
        try:
            written = await file.node.handler.write(record)
        except Exception as exc:
            errno = errno_of(exc)
            log.info("deferred write error on a %d-byte record: %s", len(record),
                     _errno.errorcode.get(errno, errno))
            return errno
        if written != len(record):
            log.warning("handler wrote %d of a %d-byte record", written, len(record))
            return _errno.EIO
        return 0

    async def _write(self, file: _OpenFile, request: ev.Write) -> None:
        if file.read_only:
            # st: EACCES for a write on an O_RDONLY fd. Refused here, before the framer
            # would buffer a full chunk and report the error on some later request.
            self._fail(request, _errno.EACCES)
            return
        step = file.framer.write(request.offset, request.data)
        if isinstance(step, chunks.Refuse):
            log.warning("WRITE continuation at %d with no record open", request.offset)
            self._fail(request, step.errno)
        elif isinstance(step, chunks.Acknowledge):
            self._reply(request, lambda: self.conn.reply_write(request, step.count))
        else:
            result = await self._guarded(request, lambda: file.node.handler.write(step.record))
            if isinstance(result, _Failed):
                self._fail(request, result.errno)
                return
            covered = step.covered(int(result))
            self._reply(request, lambda: self.conn.reply_write(request, covered))

    async def _read(self, file: _OpenFile, request: ev.Read) -> None:
        step = file.framer.read(request.offset, request.size)
        if isinstance(step, chunks.ServePiece):
            self._reply(request, lambda: self.conn.reply_data(request, step.data))
            return
        result = await self._guarded(
            request, lambda: file.node.handler.read(step.size, step.exact))
        if isinstance(result, _Failed):
            self._fail(request, result.errno)
            return
        piece = file.framer.fetched(step, bytes(result))
        self._reply(request, lambda: self.conn.reply_data(request, piece))

    async def _ioctl(self, file: _OpenFile, request: ev.Ioctl) -> None:
        if request.flags & abi.FUSE_IOCTL_DIR:
            self._fail(request, _errno.ENOTTY)
            return
        retry = ioctl_retry_iovecs(request)
        if retry is not None:
            self._reply(request, lambda: self.conn.reply_ioctl_retry(request, *retry))
            return
        out_size = request.out_size
        if request.unrestricted:
            # The kernel offers what we asked for in the RETRY; give the handler no more
            # room than the command's own size says.
            out_size = min(out_size, request.command.size)
        caller_uid.set(request.uid)
        result = await self._guarded(
            request, lambda: file.node.handler.ioctl(request.cmd, request.data, out_size))
        if isinstance(result, _Failed):
            # ENOSYS would reach the user as ENOTTY anyway; say it plainly.
            self._fail(request, _errno.ENOTTY if result.errno == _errno.ENOSYS else result.errno)
            return
        data = bytes(result)
        self._reply(request, lambda: self.conn.reply_ioctl(request, data))

    async def _flush(self, file: _OpenFile, request: ev.Flush | ev.Fsync) -> None:
        handler = file.node.handler
        if isinstance(request, ev.Flush) and isinstance(handler, FlushingHandler):
            result = await self._guarded(request, handler.flush)
            if isinstance(result, _Failed):
                self._fail(request, result.errno)
                return
        self._reply(request, lambda: self.conn.reply_empty(request))

    async def _release(self, file: _OpenFile, request: ev.Release) -> None:
        try:
            errno = await self._complete_write(file, file.framer.begin(chunks.Op.RELEASE))
            if errno:
                log.warning("record lost at close: %s", _errno.errorcode.get(errno, errno))
            try:
                await file.node.handler.release()
            except Exception as exc:
                log.warning("release failed: %s", _errno.errorcode.get(errno_of(exc)))
            self._reply(request, lambda: self.conn.reply_empty(request))
        finally:
            self._unreleased.pop(file.fh, None)
            node = file.node
            node.releasing -= 1
            if not node.releasing:
                node.released.set()
                node.released = trio.Event()

    async def _release_all(self) -> None:
        """The connection is gone: finish buffered records and release every open file."""
        files = list(self._unreleased.values())
        self._files.clear()
        self._unreleased.clear()
        for file in files:
            errno = await self._complete_write(file, file.framer.begin(chunks.Op.RELEASE))
            if errno:
                log.warning("record lost at shutdown: %s", _errno.errorcode.get(errno, errno))
            try:
                await file.node.handler.release()
            except Exception as exc:
                log.warning("release at shutdown failed: %s",
                            _errno.errorcode.get(errno_of(exc)))


_FILE_REQUESTS = (ev.Read, ev.Write, ev.Ioctl, ev.Flush, ev.Fsync, ev.Release)

_OPS: dict[type, chunks.Op] = {
    ev.Read: chunks.Op.READ, ev.Write: chunks.Op.WRITE, ev.Ioctl: chunks.Op.IOCTL,
    ev.Flush: chunks.Op.FLUSH, ev.Fsync: chunks.Op.FSYNC,
}


def _framing(request: ev.Request) -> tuple[chunks.Op, int]:
    """A file request as the syscall framer sees it: its kind and offset."""
    offset = request.offset if isinstance(request, ev.Read | ev.Write) else 0
    return _OPS[type(request)], offset

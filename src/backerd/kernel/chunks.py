"""Syscall framing: the kernel's chunks of one read(2)/write(2) turned back into one call.

Theory of operation. The kernel splits a read(2)/write(2) larger than its chunk size
(``max_chunk``: 128 KiB on CUSE, ``max_pages`` pages on FUSE) into several requests.
With CUSE and FOPEN_STREAM every syscall starts at offset 0, so a request at offset > 0
continues the syscall of the previous request on the same open file. A ``SyscallFramer``
(one per open file) holds what such a syscall has seen so far and says, for every
request, what the server must do; it does no I/O, has no clock and never raises on
input, so every rule is tested without a kernel or an event loop.

* Before serving any request, the server calls ``begin``. A request that does not
  continue the current syscall (a WRITE or READ at offset 0, IOCTL, FLUSH, FSYNC,
  RELEASE) ends it: ``begin`` returns the buffered record that syscall wrote, which the
  server writes first; its error is this request's answer, as st reports a deferred
  write error. A continuing request (a WRITE at the buffered length, a READ at
  offset > 0) keeps the syscall going.
* Writes. A chunk that could not have been cut by the kernel (shorter than a full chunk
  less one page: an unaligned user buffer shortens the first chunk by up to a page)
  ends its syscall: ``write`` returns ``WriteRecord`` and the record goes to the device
  now. A full chunk may be continued, so it is buffered and acknowledged
  (``Acknowledge``); its record is completed at the next ``begin``. A continuation whose
  syscall has already ended (after an error) cannot be joined to anything and is
  refused (``Refuse``, EIO) rather than starting a torn record.
* Reads. At offset 0 the server fetches one block (``FetchBlock``: ``exact`` says the
  request size is the user's whole buffer, because it is below a full chunk) and hands
  it to ``fetched``, which keeps the rest for the continuations. The block is served
  chunk by chunk; a continuation past its end, or one that does not follow on, gets
  0 bytes (``ServePiece(b"")``), which ends the syscall, so two blocks never merge.
"""

from __future__ import annotations

import enum
import errno as _errno
from dataclasses import dataclass

from backerd.kernel import abi


class Op(enum.Enum):
    """The requests of an open file, as far as syscall framing is concerned."""

    READ = "read"
    WRITE = "write"
    IOCTL = "ioctl"
    FLUSH = "flush"
    FSYNC = "fsync"
    RELEASE = "release"


@dataclass(frozen=True)
class Acknowledge:
    """The chunk is buffered (its syscall may continue): answer success for ``count``."""

    count: int


@dataclass(frozen=True)
class WriteRecord:
    """The syscall ended with this chunk: write ``record`` (the whole syscall's data);
    answer the chunk with ``covered(written)``."""

    record: bytes
    chunk: int  # length of the chunk that ended the syscall

    def covered(self, written: int) -> int:
        """Bytes of the final chunk the device took: the earlier chunks were already
        acknowledged, so a short write shows up on this one only."""
        earlier = len(self.record) - self.chunk
        return max(0, min(self.chunk, written - earlier))


@dataclass(frozen=True)
class Refuse:
    """Answer the request with ``errno``; nothing is written."""

    errno: int


@dataclass(frozen=True)
class FetchBlock:
    """Read one block from the device and pass it to ``SyscallFramer.fetched``."""

    size: int
    exact: bool  # the request size is the user's whole buffer


@dataclass(frozen=True)
class ServePiece:
    """Answer the read with ``data`` (0 bytes ends the syscall)."""

    data: bytes


WriteStep = Acknowledge | WriteRecord | Refuse
ReadStep = FetchBlock | ServePiece


def full_chunk(max_chunk: int) -> int:
    """A chunk at least this long may be continued (see the module comment)."""
    return max(1, max_chunk - abi.PAGE_SIZE + 1)


class SyscallFramer:
    """The syscall state of one open file: a write being gathered, a block being read."""

    def __init__(self, max_chunk: int) -> None:
        self.full_chunk = full_chunk(max_chunk)
        self._record: bytearray | None = None  # data of a write syscall not yet complete
        self._block: bytes | None = None  # the block the current read syscall serves
        self._served = 0  # bytes of _block answered so far

    @property
    def writing(self) -> bool:
        """A write syscall's record is buffered, waiting for its end."""
        return self._record is not None

    def continues(self, op: Op, offset: int) -> bool:
        """Whether a request continues the syscall now in progress."""
        if op is Op.WRITE:
            return offset > 0 and self._record is not None and offset == len(self._record)
        return op is Op.READ and offset > 0

    def whole(self, op: Op, offset: int, size: int) -> bool:
        """Whether a READ or WRITE of ``size`` bytes at ``offset`` is a whole syscall by
        itself, with no record of an earlier one buffered: after ``begin`` it needs one
        block written or fetched exactly (``WriteRecord`` of the chunk alone, or
        ``FetchBlock`` with ``exact``) and leaves nothing behind for continuations."""
        return (op is Op.WRITE or op is Op.READ) and offset == 0 and (
            self._record is None and 0 < size < self.full_chunk)

    def begin(self, op: Op, offset: int = 0) -> bytes | None:
        """Start serving a request: the buffered record it completes (write it first;
        its error answers this request), or None."""
        if self.continues(op, offset):
            return None
        record, self._record = self._record, None
        self._block, self._served = None, 0
        return None if record is None else bytes(record)

    def abandon(self) -> None:
        """The write syscall in progress was interrupted: its record is dropped."""
        self._record = None

    def write(self, offset: int, data: bytes) -> WriteStep:
        """A WRITE chunk, after ``begin``: what to do with it."""
        if self._record is None or offset != len(self._record) or offset <= 0:
            if offset != 0:
                # The syscall already ended (after an error): nothing to join it to.
                self._record = None
                return Refuse(_errno.EIO)
            self._record = bytearray()
        self._record += data
        if len(data) >= self.full_chunk:
            return Acknowledge(len(data))
        record, self._record = bytes(self._record), None
        return WriteRecord(record, len(data))

    def read(self, offset: int, size: int) -> ReadStep:
        """A READ request, after ``begin``: serve from the current block or fetch one."""
        if offset <= 0:
            return FetchBlock(max(size, 0), 0 <= size < self.full_chunk)
        block = self._block
        if block is None or offset != self._served:
            return ServePiece(b"")
        piece = block[self._served:self._served + max(size, 0)]
        self._served += len(piece)
        if not piece:
            self._block, self._served = None, 0
        return ServePiece(piece)

    def fetched(self, step: FetchBlock, block: bytes) -> bytes:
        """The device answered ``step`` with ``block``: the piece for the first request;
        the rest is kept for the syscall's continuations."""
        piece = block[:step.size]
        if len(block) > step.size and not step.exact:
            self._block, self._served = block, step.size
        return piece

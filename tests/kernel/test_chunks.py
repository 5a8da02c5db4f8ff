"""The syscall framing rules, against a model of how the kernel cuts a syscall into chunks.

The oracle is the user's side: every write(2) must reach the device as exactly one
record holding the syscall's bytes, and every read(2) must return one block (cut to the
user's buffer), never two merged, whatever the chunk size and buffer alignment. The
kernel model follows the notes: a direct-I/O transfer is cut into chunks of
``max_chunk`` bytes, the first one shortened by the buffer's offset into its page, and a
read syscall ends at the first chunk answered short.
"""

from __future__ import annotations

import errno
import functools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.kernel.chunks import (
    Acknowledge,
    FetchBlock,
    Op,
    Refuse,
    ServePiece,
    SyscallFramer,
    WriteRecord,
)

PAGE = 4096
max_chunks = st.sampled_from([PAGE, 2 * PAGE, 3 * PAGE, 8 * PAGE, 32 * PAGE])


def kernel_chunks(length: int, align: int, max_chunk: int) -> list[tuple[int, int]]:
    """(offset, size) of the requests the kernel sends for one syscall."""
    cuts, offset = [], 0
    first = max_chunk - align % PAGE
    while offset < length:
        size = min(length - offset, first if offset == 0 else max_chunk)
        cuts.append((offset, size))
        offset += size
    return cuts


@functools.cache
def may_continue(request: int, max_chunk: int) -> bool:
    """Whether a first request of this size could come from a longer syscall, for some
    buffer alignment (then the server cannot know the user's buffer size)."""
    return any(kernel_chunks(request + 1, align, max_chunk)[0][1] == request
               for align in range(PAGE))


def payload(seed: int, length: int) -> bytes:
    return random.Random(seed).randbytes(length)


class Device:
    """The records the framer hands over, and a tape of blocks to read."""

    def __init__(self, blocks: list[bytes] = ()) -> None:
        self.records: list[bytes] = []
        self.blocks = list(blocks)

    def complete(self, record: bytes | None) -> None:
        if record is not None:
            self.records.append(record)


def user_write(framer: SyscallFramer, device: Device, data: bytes, align: int,
               max_chunk: int) -> int:
    """One write(2) as the kernel serves it; returns what the syscall returns."""
    total = 0
    for offset, size in kernel_chunks(len(data), align, max_chunk):
        device.complete(framer.begin(Op.WRITE, offset))
        step = framer.write(offset, data[offset:offset + size])
        if isinstance(step, WriteRecord):
            device.records.append(step.record)
            total += step.covered(len(step.record))
        else:
            assert isinstance(step, Acknowledge)
            total += step.count
    return total


def user_read(framer: SyscallFramer, device: Device, size: int, align: int,
              max_chunk: int) -> bytes | int:
    """One read(2) as the kernel serves it: the bytes returned, or an errno."""
    got = b""
    for offset, chunk in kernel_chunks(size, align, max_chunk):
        device.complete(framer.begin(Op.READ, offset))
        step = framer.read(offset, chunk)
        if isinstance(step, FetchBlock):
            block = device.blocks.pop(0) if device.blocks else b""
            if step.exact and len(block) > step.size:
                return errno.ENOMEM  # st: the block does not fit the user's buffer
            piece = framer.fetched(step, block)
        else:
            piece = step.data
        assert len(piece) <= chunk
        got += piece
        if len(piece) < chunk:
            break
    return got


syscalls = st.lists(
    st.tuples(st.integers(1, 300_000), st.integers(0, PAGE - 1),
              st.sampled_from([None, Op.IOCTL, Op.FLUSH, Op.FSYNC])),
    min_size=1, max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(max_chunks, syscalls)
def test_every_write_syscall_is_one_record(max_chunk: int, calls: list) -> None:
    framer, device = SyscallFramer(max_chunk), Device()
    written = []
    for i, (length, align, between) in enumerate(calls):
        data = payload(i, length)
        assert user_write(framer, device, data, align, max_chunk) == length
        written.append(data)
        if between is not None:
            device.complete(framer.begin(between))
    device.complete(framer.begin(Op.RELEASE))
    assert device.records == written
    assert not framer.writing


@settings(max_examples=150, deadline=None)
@given(max_chunks, st.lists(st.integers(0, 300_000), min_size=1, max_size=5),
       st.lists(st.tuples(st.integers(1, 400_000), st.integers(0, PAGE - 1)), min_size=1,
                max_size=6))
def test_every_read_syscall_returns_one_block(max_chunk: int, sizes: list[int],
                                              reads: list) -> None:
    blocks = [payload(100 + i, n) for i, n in enumerate(sizes)]
    framer, device = SyscallFramer(max_chunk), Device(blocks)
    for size, align in reads:
        block = blocks.pop(0) if blocks else b""
        got = user_read(framer, device, size, align, max_chunk)
        first_request = kernel_chunks(size, align, max_chunk)[0][1]
        if len(block) > size and not may_continue(first_request, max_chunk):
            assert got == errno.ENOMEM
        else:
            assert got == block[:size]  # a larger block is cut to the buffer, never merged


def test_a_block_that_fills_whole_chunks_is_ended_by_an_empty_reply() -> None:
    framer = SyscallFramer(32 * PAGE)
    block = payload(1, 3 * 32 * PAGE)
    step = framer.read(0, 32 * PAGE)
    assert step == FetchBlock(32 * PAGE, exact=False)
    assert framer.fetched(step, block) == block[:32 * PAGE]
    assert framer.read(32 * PAGE, 32 * PAGE) == ServePiece(block[32 * PAGE:64 * PAGE])
    assert framer.read(64 * PAGE, 32 * PAGE) == ServePiece(block[64 * PAGE:])
    assert framer.read(96 * PAGE, 32 * PAGE) == ServePiece(b"")  # ends the syscall


@given(st.integers(1, 20), st.integers(0, PAGE - 1), st.integers(0, 40 * PAGE))
def test_a_short_device_write_is_reported_on_the_last_chunk(pages: int, tail: int,
                                                            written: int) -> None:
    """What a syscall returns: what the device took, but never less than the chunks
    already acknowledged (the kernel has told the user about those)."""
    max_chunk = 2 * PAGE
    framer = SyscallFramer(max_chunk)
    data = payload(7, pages * max_chunk + tail)
    total = 0
    for offset, size in kernel_chunks(len(data), 0, max_chunk):
        step = framer.write(offset, data[offset:offset + size])
        if isinstance(step, Acknowledge):
            total += step.count
        else:
            assert isinstance(step, WriteRecord) and step.record == data
            total += step.covered(min(written, len(data)))
    if tail == 0:
        assert framer.begin(Op.IOCTL) == data  # the last chunk was full: completed lazily
        assert total == len(data)
    else:
        acknowledged = len(data) - tail
        assert total == max(acknowledged, min(written, len(data)))


def test_an_interrupted_syscall_loses_its_record_only() -> None:
    max_chunk = 2 * PAGE
    framer, device = SyscallFramer(max_chunk), Device()
    first = payload(1, 3 * max_chunk)  # ends on a full chunk: completed lazily
    assert user_write(framer, device, first, 0, max_chunk) == len(first)
    torn = payload(2, 3 * max_chunk + 5)
    device.complete(framer.begin(Op.WRITE, 0))
    assert framer.write(0, torn[:max_chunk]) == Acknowledge(max_chunk)
    assert framer.continues(Op.WRITE, max_chunk)
    framer.abandon()  # the continuation was interrupted before it was served
    # the kernel may still send the rest of the torn syscall: refused, nothing joined
    device.complete(framer.begin(Op.WRITE, 2 * max_chunk))
    assert framer.write(2 * max_chunk, torn[2 * max_chunk:3 * max_chunk]) == Refuse(errno.EIO)
    last = payload(3, 100)
    assert user_write(framer, device, last, 0, max_chunk) == 100
    assert device.records == [first, last]


def test_a_request_between_chunks_ends_the_syscall() -> None:
    framer = SyscallFramer(2 * PAGE)
    assert framer.write(0, bytes(2 * PAGE)) == Acknowledge(2 * PAGE)
    assert framer.begin(Op.READ, 2 * PAGE) is None  # a read continuation ends nothing
    assert framer.begin(Op.FLUSH) == bytes(2 * PAGE)
    assert framer.begin(Op.WRITE, 2 * PAGE) is None
    assert framer.write(2 * PAGE, b"x") == Refuse(errno.EIO)


requests = st.one_of(
    st.tuples(st.just("begin"), st.sampled_from(list(Op)), st.integers(-2**40, 2**40)),
    st.tuples(st.just("write"), st.integers(-2**40, 2**40), st.binary(max_size=3 * PAGE)),
    st.tuples(st.just("read"), st.integers(-2**40, 2**40), st.integers(-2**40, 2**40)),
    st.tuples(st.just("fetched"), st.integers(-2**40, 2**40), st.binary(max_size=3 * PAGE)),
    st.tuples(st.just("abandon")),
)


@settings(max_examples=300)
@given(st.integers(-2**20, 2**20), st.lists(requests, max_size=30))
def test_never_raises_on_any_request_sequence(max_chunk: int, sequence: list) -> None:
    framer = SyscallFramer(max_chunk)
    assert framer.full_chunk >= 1
    for action, *args in sequence:
        if action == "begin":
            record = framer.begin(*args)
            assert record is None or isinstance(record, bytes)
        elif action == "write":
            assert isinstance(framer.write(*args), Acknowledge | WriteRecord | Refuse)
        elif action == "read":
            step = framer.read(*args)
            assert isinstance(step, FetchBlock | ServePiece)
            if isinstance(step, ServePiece):
                assert len(step.data) <= max(args[1], 0)
        elif action == "fetched":
            step = FetchBlock(max(args[0], 0), exact=args[0] % 2 == 0)
            assert len(framer.fetched(step, args[1])) <= step.size
        else:
            framer.abandon()


@settings(max_examples=300)
@given(st.integers(1, 2**20), st.lists(requests, max_size=30),
       st.sampled_from([Op.READ, Op.WRITE]), st.sampled_from([0, 0, 0, 1, PAGE, -1]),
       st.integers(-2, 2**17))
def test_a_whole_syscall_is_one_exact_block_and_leaves_nothing(
        max_chunk: int, sequence: list, op: Op, offset: int, size: int) -> None:
    """What ``whole`` promises is what the framer then does (the dispatcher serves such
    a request without it, from one block)."""
    framer = SyscallFramer(max_chunk)
    for action, *args in sequence:
        if action == "fetched":
            framer.fetched(FetchBlock(max(args[0], 0), exact=args[0] % 2 == 0), args[1])
        else:
            getattr(framer, action)(*args)
    if not framer.whole(op, offset, size):
        # refused: not a lone first chunk, a record still buffered, or a full chunk
        assert offset != 0 or framer.writing or not 0 < size < framer.full_chunk
        return
    assert framer.begin(op, offset) is None
    if op is Op.WRITE:
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        step = framer.write(offset, data)
        assert step == WriteRecord(data, size)
        assert step.covered(size) == size
    else:
        step = framer.read(offset, size)
        assert step == FetchBlock(size, exact=True)
        assert framer.fetched(step, b"b" * size) == b"b" * size
    assert not framer.writing  # nothing left for a continuation
    assert framer.read(1, 10) == ServePiece(b"")
    assert not framer.whole(op, 1, size)

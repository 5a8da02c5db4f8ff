"""Where the blocks of each tape file lie in its recording's user byte stream.

Theory of operation. File ``i`` is committed recording ``i`` of the catalog. A recording
written by the medium carries its block sizes, run-length encoded (``Recording.blocks``),
so the offset and size of block ``b`` are sums over the runs. A foreign recording (made
elsewhere, or recovered after a crash) has no boundaries: it is read as a stream, and
each read defines the block it returns (its end is remembered here); blocks nobody has
read yet are ``stream_block`` bytes each, the last one shorter. Counting those blocks
needs the recording's length, which only decoding it tells: ``measure`` does that once,
and the length is kept (also in the catalog, by the medium). Everything learnt about a
file is forgotten when that file or an earlier one is rewritten.
"""

from __future__ import annotations

from collections.abc import Callable

from backerd.vcr.base import BlockRuns, Recording

Runs = tuple[tuple[int, int], ...]


def run_offset(runs: Runs, block: int) -> int:
    """User-byte offset of block ``block`` (the total past the last block)."""
    off = 0
    for size, count in runs:
        if block <= count:
            return off + block * size
        off += size * count
        block -= count
    return off


def run_size(runs: Runs, block: int) -> int | None:
    """Size of block ``block``; None past the last block."""
    for size, count in runs:
        if block < count:
            return size
        block -= count
    return None


def run_count(runs: Runs) -> int:
    return sum(count for _, count in runs)


class FileIndex:
    """Block geometry of the committed recordings (stored runs or learnt streams)."""

    def __init__(self, measure: Callable[[int, Recording], int], stream_block: int) -> None:
        self.measure = measure
        self.stream_block = stream_block
        self.lengths: dict[int, int] = {}  # decoded user bytes of foreign recordings
        self.streams: dict[int, list[int]] = {}  # foreign recordings: ends of blocks read

    def forget_from(self, first: int) -> None:
        """Files from ``first`` on are rewritten: what was learnt about them is stale."""
        self.lengths = {k: v for k, v in self.lengths.items() if k < first}
        self.streams = {k: v for k, v in self.streams.items() if k < first}

    def known_length(self, i: int, rec: Recording) -> int | None:
        return rec.user_bytes if rec.user_bytes is not None else self.lengths.get(i)

    def user_bytes(self, i: int, rec: Recording) -> int:
        known = self.known_length(i, rec)
        if known is None:
            known = self.lengths[i] = self.measure(i, rec)
        return known

    def learn_length(self, i: int, length: int) -> None:
        self.lengths[i] = length

    def stream_bounds(self, i: int, rec: Recording, blocks: int) -> list[int]:
        """Ends of the first ``blocks`` blocks of foreign file ``i`` (virtual past reads)."""
        bounds = self.streams.setdefault(i, [])
        if blocks > len(bounds):
            total = self.user_bytes(i, rec)
            last = bounds[-1] if bounds else 0
            while len(bounds) < blocks and last < total:
                last = min(last + self.stream_block, total)
                bounds.append(last)
        return bounds[:blocks]

    def define_block(self, i: int, rec: Recording, block: int, end: int) -> None:
        """A stream read of block ``block`` of file ``i`` ended at user offset ``end``."""
        bounds = self.stream_bounds(i, rec, block)
        bounds.append(end)
        self.streams[i] = bounds

    def blocks(self, i: int, rec: Recording) -> int:
        if rec.blocks is not None:
            return run_count(rec.blocks)
        bounds = self.streams.get(i, [])
        last = bounds[-1] if bounds else 0
        return len(bounds) + -(-(self.user_bytes(i, rec) - last) // self.stream_block)

    def offset(self, i: int, rec: Recording, block: int) -> int:
        """User-byte offset of block ``block`` of file ``i``."""
        if rec.blocks is not None:
            return run_offset(rec.blocks, block)
        if block == 0:
            return 0
        bounds = self.stream_bounds(i, rec, block)
        return bounds[-1] if bounds else 0

    def runs_before(self, i: int, rec: Recording, blocks: int) -> BlockRuns:
        """The sizes of the first ``blocks`` blocks of file ``i``, run-length encoded."""
        runs = BlockRuns()
        if rec.blocks is not None:
            left = blocks
            for size, count in rec.blocks:
                if left > 0:
                    runs.runs.append([size, min(count, left)])
                left -= count
            return runs
        ends = self.stream_bounds(i, rec, blocks)
        for start, end in zip([0, *ends], ends, strict=False):
            runs.append(end - start)
        return runs

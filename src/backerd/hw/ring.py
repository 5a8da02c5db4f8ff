"""The DMA ring: where software may read or write while the card moves through it.

Theory of operation: the card's DMA channel runs in auto-initialise mode over one block
of the DMA buffer, forever. Software keeps a *tail* (transmit: the next byte it will
fill; receive: the next byte it will copy out) and learns the hardware position from
the residue. Positions here are *stream offsets* (bytes since start, never wrapped);
``% size`` places them in the block. Nothing within ``GUARD`` bytes of the reported
hardware position is touched, because the card's FIFO reads ahead and the residue can
lag. If the hardware overtakes software, the transmit side has an underrun (the card
sends old bytes again) and the receive side an overrun (bytes overwritten, lost).
"""

from __future__ import annotations

from dataclasses import dataclass

from backerd.hw.card import GUARD, RING_BYTES


def transmit_size(frame: int, limit: int = RING_BYTES) -> int:
    """Largest multiple of the frame size <= ``limit`` (the loop stays frame-aligned)."""
    if frame <= 0 or frame > limit:
        raise ValueError(f"frame size {frame} does not fit a {limit}-byte ring")
    return limit // frame * frame


def unwrap(previous: int, offset: int, size: int) -> int:
    """Stream position from a block offset, given the last known stream position.

    Valid while the hardware moved less than one ring size since ``previous``.
    """
    base = previous - previous % size
    pos = base + offset
    if pos < previous:
        pos += size
    return pos


def advance_position(previous: int, offset: int, size: int, wrapped: bool,
                     estimate: int) -> int:
    """Stream position of the hardware from its block ``offset``.

    Without a terminal count since ``previous`` the channel moved forward inside the
    block (or not at all); after one it wrapped at least once, and the number of laps
    is the one that lands nearest ``estimate`` (time elapsed x byte rate).
    """
    base = previous - previous % size
    pos = base + offset
    if pos < previous:
        pos += size
    if not wrapped:
        return pos
    if offset >= previous % size:
        pos += size  # terminal count without going backwards in the block: a whole lap
    while pos + size - estimate < estimate - pos:
        pos += size
    return pos


def spans(start: int, stop: int, size: int) -> list[tuple[int, int]]:
    """Stream range [start, stop) as (block offset, length) pieces in ring order."""
    out = []
    while start < stop:
        at = start % size
        n = min(stop - start, size - at)
        out.append((at, n))
        start += n
    return out


@dataclass
class TransmitRing:
    """Software side of a transmit ring: ``filled`` is the stream end software wrote."""

    size: int
    filled: int = 0
    hw: int = 0  # last reported hardware position (stream offset)
    underruns: int = 0
    stale_bytes: int = 0

    def room(self) -> int:
        """Bytes software may write now, keeping the guard ahead of the hardware."""
        return max(self.hw + self.size - GUARD - self.filled, 0)

    def pending(self) -> int:
        return max(self.filled - self.hw, 0)

    def advance(self, hw: int) -> int:
        """New hardware position; returns how many stale bytes the card sent (underrun)."""
        self.hw = hw
        if hw > self.filled:
            stale = hw - self.filled
            self.underruns += 1
            self.stale_bytes += stale
            # software continues from where the card is now
            self.filled = hw
            return stale
        return 0

    def write_spans(self, n: int) -> list[tuple[int, int]]:
        n = min(n, self.room())
        out = spans(self.filled, self.filled + n, self.size)
        self.filled += n
        return out


@dataclass
class ReceiveRing:
    """Software side of a receive ring: ``drained`` is what software has copied out."""

    size: int
    drained: int = 0
    hw: int = 0
    overruns: int = 0
    lost_bytes: int = 0

    def available(self) -> int:
        """Bytes safe to copy: everything before the hardware minus the guard."""
        return max(self.hw - GUARD - self.drained, 0)

    def advance(self, hw: int) -> int:
        """New hardware position; returns bytes overwritten before software read them."""
        self.hw = hw
        oldest = hw - self.size + GUARD
        if oldest > self.drained:
            lost = oldest - self.drained
            self.overruns += 1
            self.lost_bytes += lost
            self.drained = oldest
            return lost
        return 0

    def read_spans(self, n: int | None = None) -> list[tuple[int, int]]:
        n = self.available() if n is None else min(n, self.available())
        out = spans(self.drained, self.drained + n, self.size)
        self.drained += n
        return out

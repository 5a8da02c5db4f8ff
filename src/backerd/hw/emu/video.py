"""Video timing: where lines and fields fall in time, from a mode's field geometry.

Theory of operation: a field lasts ``1/fps`` s and holds 262.5 (NTSC) or 312.5 (PAL)
line periods. The card moves data on the lines from ``FIRST_LINE`` on: one line carries
``bytes_per_line`` bytes, and its DMA burst happens ``DREQ_START_NS`` into the line
(after the horizontal sync and back porch), lasting until ``DREQ_END_NS``. The sync bit
reads 0 for the first ``SYNC_NS`` of every line and through the first three lines of
every field (vertical sync); field busy reads 0 from the first data line's start to the
last data line's end. ``bytes_before`` is the closed form the emulator uses to move
whole stretches of time at once: how many bytes of a field with ``n`` data bytes have
moved ``t`` ns after the field began.
"""

from __future__ import annotations

from dataclasses import dataclass

from backerd.format.params import Geometry
from backerd.hw.card import FIRST_LINE

LINES_PER_FIELD = {"ntsc": 262.5, "pal": 312.5}
SYNC_NS = 12_000
DREQ_START_NS = 25_000  # after sync and back porch; NTSC's half line still fits
DREQ_END_NS = 31_000  # the last burst of a field ends inside it
VSYNC_LINES = 3


@dataclass(frozen=True)
class FieldTiming:
    geometry: Geometry

    @property
    def field_ns(self) -> int:
        return 1_000_000_000 // self.geometry.fps

    @property
    def line_ns(self) -> float:
        return self.field_ns / LINES_PER_FIELD[self.geometry.standard]

    @property
    def first(self) -> int:
        """0-based line index of the first data line."""
        return FIRST_LINE[self.geometry.standard] - 1

    def lines_for(self, nbytes: int) -> int:
        bpl = self.geometry.bytes_per_line
        return -(-nbytes // bpl)

    def lines_before(self, t: float, lines: int) -> int:
        """Data lines of a field whose DMA burst began before ``t`` ns into the field."""
        if t <= 0:
            return 0
        k = int((t - DREQ_START_NS) // self.line_ns) - self.first + 1
        return min(max(k, 0), lines)

    def bytes_before(self, t: float, nbytes: int) -> int:
        return min(self.lines_before(t, self.lines_for(nbytes)) * self.geometry.bytes_per_line,
                   nbytes)

    def data_end(self, lines: int) -> float:
        """Time into the field when the last data line's burst has finished."""
        return (self.first + lines - 1) * self.line_ns + DREQ_END_NS

    def status_at(self, t: float, lines: int) -> tuple[bool, bool, bool]:
        """(dreq, sync, field_busy) ``t`` ns into a field with ``lines`` data lines."""
        line, into = divmod(t, self.line_ns)
        line = int(line)
        data_line = self.first <= line < self.first + lines
        dreq = data_line and DREQ_START_NS <= into < DREQ_END_NS
        sync = not (line < VSYNC_LINES or into < SYNC_NS)
        busy = data_line
        return dreq, sync, not busy

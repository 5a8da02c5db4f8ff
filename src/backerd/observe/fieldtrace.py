"""Signal health along the tape: per-field series from a playback (for plots).

Theory of operation: a ``FieldTrace`` owns a Player and feeds it one field at a time.
After each field it takes the change of the Player's statistics as that field's figures:
symbols corrected, sectors lost and line slips. The key-match margin is the worst
accepted key match minus the closest non-key match seen while that field was decoded
(both are reset before each field), so a shrinking margin shows the key search near its
limit. The decoder may report damage a field or two late (it decodes in batches): the
series are for seeing a worn stretch, not for addressing a single field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backerd.format.player import Player

SERIES = ("corrected", "margin", "lost", "slips")


@dataclass
class Trace:
    """Per-field series along one recording, from field ``start`` on."""

    start: int = 0
    corrected: list[int] = field(default_factory=list)
    margin: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    slips: list[int] = field(default_factory=list)

    def series(self, name: str) -> list[int]:
        return {"corrected": self.corrected, "margin": self.margin, "lost": self.lost,
                "slips": self.slips}[name]

    def __len__(self) -> int:
        return len(self.corrected)


class FieldTrace:
    """Feed fields of a recording; keeps the Player's data and the trace."""

    def __init__(self, mode: str, fmt: str = "auto", start: int = 0) -> None:
        self.player = Player(mode, fmt)
        self.trace = Trace(start)
        self.data: list[bytes] = []
        self._prev = {"byte_errors": 0, "lost_sectors": 0, "line_slips": 0}

    def _delta(self, key: str) -> int:
        now = int(getattr(self.player.stats, key))
        before = self._prev[key]
        self._prev[key] = now
        return now - before if now >= before else now  # a BOR sector reset the count

    def feed_field(self, raw: bytes | None) -> None:
        stats = self.player.stats
        stats.worst_key = None
        stats.closest_non_key = 0
        if raw:
            out = self.player.feed(raw)
            if out.data:
                self.data.append(out.data)
        self.trace.corrected.append(self._delta("byte_errors"))
        self.trace.lost.append(self._delta("lost_sectors"))
        self.trace.slips.append(self._delta("line_slips"))
        key = stats.worst_key
        self.trace.margin.append(0 if key is None else key - stats.closest_non_key)

    def finish(self) -> bytes:
        out = self.player.finish()
        if out.data:
            self.data.append(out.data)
        return b"".join(self.data)

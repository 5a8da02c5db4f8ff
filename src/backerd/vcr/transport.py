"""Transport time of a simulated VCR, and optional real-time pacing.

Theory of operation: every deck action costs tape time. Playing or recording moves the
tape at one field per field time; winding moves it ``wind_speed`` times faster after a
short spin-up; an index search winds to the mark and then slows down to find it. The
``Transport`` adds these costs to a simulated clock (``elapsed``, seconds). With
``realtime`` set (1.0 = real time, 2.0 = twice as fast...), it also sleeps, through an
injectable clock and sleeper, until each action would have finished on a real deck, so
a daemon on the simulated deck moves data at the speed of a real VCR.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TransportTimes:
    """Cost model of a VHS deck (seconds, or multiples of play speed)."""

    wind_speed: float = 60.0  # fast forward / rewind speed, times play speed
    spin_up: float = 1.5  # to start or reverse winding
    thread: float = 1.0  # to lace the tape and start playing or recording
    index_settle: float = 2.0  # to slow down and find an index mark


@dataclass
class Transport:
    fps: int
    realtime: float | None = None
    times: TransportTimes = field(default_factory=TransportTimes)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    elapsed: float = 0.0  # simulated seconds spent by the transport
    fields_moved: int = 0  # fields that passed the heads while playing or recording
    slack: float = 2.0  # wall seconds a caller may lag behind the running tape
    _busy_until: float | None = None

    def __post_init__(self) -> None:
        if self.realtime is not None and self.realtime <= 0:
            raise ValueError("realtime factor must be positive")

    def start_head(self) -> None:
        """Lace the tape: the cost of starting to play or record."""
        self._spend(self.times.thread)

    def run(self, fields: int) -> None:
        """Play or record ``fields`` at normal speed."""
        self.fields_moved += fields
        self._spend(fields / self.fps)

    def wind(self, fields: int) -> None:
        """Wind over ``fields`` of tape (either direction)."""
        if fields:
            self._spend(self.times.spin_up + abs(fields) / self.fps / self.times.wind_speed)

    def index_search(self, fields: int) -> None:
        """Wind over ``fields`` and settle on an index mark."""
        self.wind(fields)
        self._spend(self.times.index_settle)

    def _spend(self, seconds: float) -> None:
        self.elapsed += seconds
        if self.realtime is None:
            return
        now = self.clock()
        # The tape keeps running while the caller works on what it got, so a call that
        # follows closely continues from the end of the previous one; after a longer
        # pause the transport starts afresh (idle time is not banked for later bursts).
        start = self._busy_until if self._busy_until is not None else now
        if now - start > self.slack:
            start = now
        self._busy_until = start + seconds / self.realtime
        if self._busy_until > now:
            self.sleep(self._busy_until - now)

"""The emulator's clock: virtual (fast mode) or following the wall clock (real time).

Theory of operation: every emulated port access costs ``ACCESS_NS`` of bus time, so a
backend that polls a status bit always sees time pass and its loops end. In fast mode
time is a counter that only accesses, delays and the service task's ``advance`` move;
in real-time mode it is ``time.monotonic_ns()`` and accesses cost what they really cost.
A ``delay_hook`` lets tests make one pause longer than asked (a late start write).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

ACCESS_NS = 1_000  # one ISA I/O cycle, about a microsecond


class EmuClock:
    def __init__(self, *, realtime: bool = False) -> None:
        self.virtual = not realtime
        self._now = 0
        self._origin = time.monotonic_ns()
        self._lock = threading.Lock()
        self.delay_hook: Callable[[int], int] | None = None

    def now_ns(self) -> int:
        if self.virtual:
            return self._now
        return time.monotonic_ns() - self._origin

    def advance(self, ns: int) -> None:
        if self.virtual and ns > 0:
            with self._lock:
                self._now += ns

    def access(self) -> None:
        self.advance(ACCESS_NS)

    def delay(self, ns: int) -> None:
        if self.delay_hook is not None:
            ns = self.delay_hook(ns)
        if self.virtual:
            self.advance(ns)
            return
        end = time.monotonic_ns() + ns
        while time.monotonic_ns() < end:
            pass

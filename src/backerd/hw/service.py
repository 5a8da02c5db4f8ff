"""The service task of a unit: keeps the DMA ring fed or drained, 20-50 times a second.

Theory of operation: on real hardware (and the emulator in real-time mode) the task
wakes every ``1/hz`` s on trio's clock and calls ``modem.service()``. On an emulator's
virtual clock there is nothing to wait for: the task lets as much bus time pass as the
modem says the ring can take (``time_wanted``) and services again, and yields to trio
(and sleeps a millisecond when the modem waits for the host) so worker threads run.
``LateService`` injects a fault: one tick comes far too late, as on a machine that
stalled, so the ring under- or overruns.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from backerd.errors import UsageError
from backerd.hw.bus import ServiceClock
from backerd.hw.modem import Modem

SERVICE_HZ = 50


@dataclass
class LateService:
    """Skip servicing once for ``late_ns`` of bus time, after ``after_ticks`` ticks.

    ``direction`` limits the fault to ticks of one direction (transmit or receive).
    """

    after_ticks: int
    late_ns: int
    direction: str | None = None
    done: bool = False

    @classmethod
    def parse(cls, text: str) -> LateService:
        """``[transmit:|receive:]TICKS:MS``, e.g. ``receive:400:900``."""
        parts = text.strip().split(":")
        direction = parts.pop(0) if parts and parts[0] in ("transmit", "receive") else None
        try:
            ticks, ms = (int(p) for p in parts)
            if ticks < 0 or ms <= 0:
                raise ValueError
        except ValueError:
            raise UsageError(
                f"late service fault {text!r}: expected [transmit:|receive:]TICKS:MS") from None
        return cls(ticks, ms * 1_000_000, direction)

    def due(self, ticks: int, direction: str | None) -> bool:
        if self.done or ticks < self.after_ticks or direction is None:
            return False
        return self.direction is None or self.direction == direction


async def run_service(modem: Modem, clock: ServiceClock, *, hz: int = SERVICE_HZ,
                      late: LateService | None = None) -> None:
    tick_ns = 1_000_000_000 // hz
    ticks = 0
    if not clock.virtual:
        deadline = trio.current_time()
        while True:
            deadline += 1 / hz
            await trio.sleep_until(deadline)
            if late is not None and late.due(ticks, modem.direction):
                late.done = True
                await trio.sleep(late.late_ns / 1e9)
            modem.service()
            ticks += 1
    while True:
        modem.service()
        step = modem.time_wanted(tick_ns)
        if step:
            if late is None or late.direction in (None, modem.direction):
                ticks += 1
            if late is not None and late.due(ticks, modem.direction):
                late.done = True
                clock.advance(late.late_ns)
            clock.advance(step)
            await trio.sleep(0)
        else:
            await trio.sleep(0.0005)

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
    """Skip servicing once for ``late_ns`` of bus time, ``after_ns`` into a transfer.

    ``direction`` limits the fault to one direction (transmit or receive); ``after_ns``
    counts bus time since that direction started.
    """

    after_ns: int
    late_ns: int
    direction: str | None = None
    done: bool = False
    _since: int | None = None

    @classmethod
    def parse(cls, text: str) -> LateService:
        """``[transmit:|receive:]AFTER_MS:LATE_MS``, e.g. ``receive:7000:900``."""
        parts = text.strip().split(":")
        direction = parts.pop(0) if parts and parts[0] in ("transmit", "receive") else None
        try:
            after, late = (int(p) for p in parts)
            if after < 0 or late <= 0:
                raise ValueError
        except ValueError:
            raise UsageError(f"late service fault {text!r}: expected "
                             "[transmit:|receive:]AFTER_MS:LATE_MS") from None
        return cls(after * 1_000_000, late * 1_000_000, direction)

    def due(self, now: int, direction: str | None) -> bool:
        if self.done or direction is None or self.direction not in (None, direction):
            self._since = None
            return False
        if self._since is None:
            self._since = now
        if now - self._since < self.after_ns:
            return False
        self.done = True
        return True


async def run_service(modem: Modem, clock: ServiceClock, *, hz: int = SERVICE_HZ,
                      late: LateService | None = None) -> None:
    tick_ns = 1_000_000_000 // hz
    if not clock.virtual:
        deadline = trio.current_time()
        while True:
            deadline += 1 / hz
            await trio.sleep_until(deadline)
            if late is not None and late.due(modem.now_ns(), modem.direction):
                await trio.sleep(late.late_ns / 1e9)
            modem.service()
    while True:
        modem.service()
        step = modem.time_wanted(tick_ns)
        if step:
            if late is not None and late.due(modem.now_ns(), modem.direction):
                clock.advance(late.late_ns)
            clock.advance(step)
            await trio.sleep(0)
        else:
            await trio.sleep(0.0005)

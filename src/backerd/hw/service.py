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

from backerd.hw.bus import ServiceClock
from backerd.hw.modem import Modem

SERVICE_HZ = 50


@dataclass
class LateService:
    """Skip servicing once for ``late_ns`` of bus time, after ``after_ticks`` ticks."""

    after_ticks: int
    late_ns: int
    done: bool = False


async def run_service(modem: Modem, clock: ServiceClock, *, hz: int = SERVICE_HZ,
                      late: LateService | None = None) -> None:
    tick_ns = 1_000_000_000 // hz
    ticks = 0
    if not clock.virtual:
        deadline = trio.current_time()
        while True:
            deadline += 1 / hz
            await trio.sleep_until(deadline)
            if late is not None and not late.done and ticks >= late.after_ticks:
                late.done = True
                await trio.sleep(late.late_ns / 1e9)
            modem.service()
            ticks += 1
    while True:
        modem.service()
        step = modem.time_wanted(tick_ns)
        if step:
            ticks += 1
            if late is not None and not late.done and ticks >= late.after_ticks \
                    and modem.direction is not None:
                late.done = True
                clock.advance(late.late_ns)
            clock.advance(step)
            await trio.sleep(0)
        else:
            await trio.sleep(0.0005)

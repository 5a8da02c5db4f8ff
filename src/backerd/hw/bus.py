"""What a backend needs from the machine: port I/O, a nanosecond clock, DMA memory.

Theory of operation: the backends never touch the OS directly. They see a ``PortBus``
(byte in/out at a port number, plus the monotonic clock the bus runs on, and a short
busy wait), and a ``DmaBuffer`` (a writable view of physically contiguous memory and its
physical address). ``hw.os`` implements both over /dev/port and /dev/mem; ``hw.emu``
implements them in software with a virtual clock, so the same backend code runs on both.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class PortBus(Protocol):
    def inb(self, port: int) -> int: ...

    def outb(self, port: int, value: int) -> None: ...

    def now_ns(self) -> int:
        """Monotonic nanoseconds on the bus's clock (real, or the emulator's)."""
        ...

    def delay_ns(self, ns: int) -> None:
        """Busy-wait ``ns`` on the bus clock (short pauses of the start sequence)."""
        ...


@runtime_checkable
class DmaBuffer(Protocol):
    @property
    def phys(self) -> int:
        """Physical address (below 16 MiB, 64 KiB aligned)."""
        ...

    @property
    def array(self) -> np.ndarray:
        """The buffer as a writable uint8 array of its full size."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ServiceClock(Protocol):
    """How the service task waits: real sleeps, or advancing an emulator's clock."""

    @property
    def virtual(self) -> bool: ...

    def now_ns(self) -> int: ...

    def advance(self, ns: int) -> None:
        """Let ``ns`` pass (virtual clocks only; real clocks ignore it)."""
        ...


class WallClock:
    """Real time: the service task sleeps with trio; ``advance`` does nothing."""

    virtual = False

    def now_ns(self) -> int:
        import time

        return time.monotonic_ns()

    def advance(self, ns: int) -> None:
        return None


def play_bus(bus: PortBus, plan: list[tuple[int, int]]) -> None:
    for port, value in plan:
        bus.outb(port, value)


@contextlib.contextmanager
def timing_critical(seconds: float = 0.5) -> Iterator[None]:
    """Keep the GIL for a short timed sequence (the start pause is ~0.6 ms wide).

    CPython hands the GIL to another thread every 5 ms by default, which would land in
    the middle of the measured pause; other threads wait until the sequence is done.
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)

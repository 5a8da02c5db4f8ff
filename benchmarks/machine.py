"""How fast the machine is right now: benchmark figures on a shared (virtual) machine
swing by up to 2x with its neighbours' load, so each benchmark prints this reference
before and after its runs. Lower is faster; about 95 ms on the project's machine when
nothing else competes for it."""

from __future__ import annotations

import time


def reference_ms() -> float:
    """Best of 5 timings of a fixed pure-Python loop (3 million additions), in ms."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        total = 0
        for i in range(3_000_000):
            total += i
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def describe() -> str:
    return f"machine reference {reference_ms():.0f} ms (lower = faster; ~95 uncontended)"

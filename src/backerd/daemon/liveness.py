"""Liveness for systemd's watchdog: ping only while the workers get work done.

Theory of operation. Under ``WatchdogSec=`` systemd restarts the daemon when
``WATCHDOG=1`` stops arriving. A ping from a timer on the event loop would only prove
that the loop turns; the work happens elsewhere: each unit's Drive calls run in worker
threads, and its codec lane (``medium.lane``) encodes and records, or plays and decodes,
on a thread of its own between calls. So every ``WATCHDOG_USEC/2`` the watchdog task
samples each unit (``WorkerSample``: is something in flight, and a marker that changes
whenever work gets done: calls finished, the tape's position) and ``assess`` decides:

- a worker that is idle, or waits for a person or lircd by design, is healthy;
- a busy worker is healthy while its marker changed within ``STALL_LIMIT``;
- a busy worker whose marker stood still longer is stuck, and while any is, no ping
  goes out: systemd's own timeout then restarts the daemon.

The transport loops (one task per CUSE node, one for the FUSE session) run on the event
loop, as the watchdog task does: a loop that stops turning stops the pings with it, and a
request they wait on is a unit's call, sampled above. ``STALL_LIMIT`` is longer than
the slowest single motion a deck makes without reporting its position (a full rewind of
the longest cassette). ``assess`` and ``watchdog_interval`` are pure; ``keep_watchdog``
is the trio task around them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger("backerd")

STALL_LIMIT = 300.0  # seconds a busy worker may go without progress


@dataclass(frozen=True)
class WorkerSample:
    name: str
    busy: bool  # a Drive call or a codec job is in flight
    marker: Hashable  # changes whenever the worker gets something done
    waiting: bool = False  # blocked on an operator or lircd by design: not stuck


@dataclass(frozen=True)
class Seen:
    marker: Hashable
    since: float  # when the worker was last idle or last made progress


def assess(previous: Mapping[str, Seen], samples: Sequence[WorkerSample], now: float,
           stall_limit: float = STALL_LIMIT) -> tuple[dict[str, Seen], list[str]]:
    """The new memory of what was seen, and the names of the stuck workers."""
    seen: dict[str, Seen] = {}
    stuck: list[str] = []
    for sample in samples:
        before = previous.get(sample.name)
        if not sample.busy or sample.waiting or before is None or before.marker != sample.marker:
            seen[sample.name] = Seen(sample.marker, now)
            continue
        seen[sample.name] = before
        if now - before.since > stall_limit:
            stuck.append(sample.name)
    return seen, stuck


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between pings systemd asks for (half of WATCHDOG_USEC), or None when it
    asks for none or asks another process (never raises)."""
    usec, for_pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if for_pid and (not for_pid.isdigit() or int(for_pid) != pid):
        return None
    return int(usec) / 2 / 1e6


def stuck_status(stuck: Sequence[str], stall_limit: float = STALL_LIMIT) -> str:
    return (f"STATUS={', '.join(stuck)}: no progress for over {stall_limit:g} s; "
            "watchdog pings stopped")


async def keep_watchdog(sample: Callable[[], list[WorkerSample]],
                        notify: Callable[[str], None], interval: float, *,
                        ready_status: str, stall_limit: float = STALL_LIMIT) -> None:
    """Ping systemd every ``interval`` while ``assess`` finds no stuck worker."""
    import trio

    seen: dict[str, Seen] = {}
    was_stuck: list[str] = []
    while True:
        seen, stuck = assess(seen, sample(), trio.current_time(), stall_limit)
        if stuck and stuck != was_stuck:
            log.error("%s: no progress for over %g s; watchdog pings stopped",
                      ", ".join(stuck), stall_limit)
            notify(stuck_status(stuck, stall_limit))
        elif not stuck:
            if was_stuck:
                log.info("%s: progressing again; watchdog pings resumed", ", ".join(was_stuck))
                notify(f"STATUS={ready_status}")
            notify("WATCHDOG=1")
        was_stuck = stuck
        await trio.sleep(interval)

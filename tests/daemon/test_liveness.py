"""daemon.liveness: the watchdog pings only while every worker gets work done."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from backerd.daemon import liveness
from backerd.daemon.config import UnitConfig
from backerd.daemon.liveness import Seen, WorkerSample, assess, watchdog_interval
from backerd.daemon.node import Unit, WorkProbe

LIMIT = 10.0


def busy(marker: object, *, waiting: bool = False) -> WorkerSample:
    return WorkerSample("w", True, marker, waiting)  # type: ignore[arg-type]


def idle(marker: object) -> WorkerSample:
    return WorkerSample("w", False, marker)  # type: ignore[arg-type]


# (sample now, time since the marker was last seen changing) -> stuck? written out by hand
RULES = [
    (idle(1), 0.0, False), (idle(1), 1000.0, False),  # idle is healthy, however long
    (busy(1), LIMIT, False),  # at the limit: not yet
    (busy(1), LIMIT + 0.5, True),  # same marker, past the limit
    (busy(2), 1000.0, False),  # the marker moved: progress
    (busy(1, waiting=True), 1000.0, False),  # waiting for the operator is by design
]


@pytest.mark.parametrize(("sample", "quiet", "stuck"), RULES)
def test_the_rules(sample: WorkerSample, quiet: float, stuck: bool) -> None:
    seen, found = assess({"w": Seen(1, 100.0)}, [sample], 100.0 + quiet, LIMIT)
    assert found == (["w"] if stuck else [])
    # the clock restarts on progress, idleness or a by-design wait; not while stuck
    assert seen["w"].since == (100.0 if stuck or (sample.busy and sample.marker == 1
                                                  and not sample.waiting) else 100.0 + quiet)


def test_a_worker_seen_for_the_first_time_busy_gets_the_full_limit() -> None:
    seen, stuck = assess({}, [busy(1)], 50.0, LIMIT)
    assert stuck == [] and seen["w"] == Seen(1, 50.0)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 2), st.floats(0.0, 6.0)), max_size=40))
def test_stuck_exactly_when_busy_without_progress_for_longer_than_the_limit(
        steps: list[tuple[bool, int, float]]) -> None:
    """Against a direct oracle: the last time the worker was idle or its marker changed."""
    seen: dict[str, Seen] = {}
    now, last_good, last_marker = 0.0, None, None
    for is_busy, marker, dt in steps:
        now += dt
        if not is_busy or last_good is None or marker != last_marker:
            last_good = now
        last_marker = marker
        seen, stuck = assess(seen, [WorkerSample("w", is_busy, marker)], now, LIMIT)
        assert stuck == (["w"] if now - last_good > LIMIT else [])


@pytest.mark.parametrize(("environ", "pid", "interval"), [
    ({}, 7, None), ({"WATCHDOG_USEC": "0"}, 7, None), ({"WATCHDOG_USEC": "x"}, 7, None),
    ({"WATCHDOG_USEC": "60000000"}, 7, 30.0),
    ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "7"}, 7, 30.0),
    ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "8"}, 7, None),
    ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "-1"}, 7, None)])
def test_watchdog_interval(environ: dict[str, str], pid: int, interval: float | None) -> None:
    assert watchdog_interval(environ, pid) == interval


def test_pings_stop_while_a_worker_is_stuck_and_resume() -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)
    samples = {"marker": 0, "busy": False}
    sent: list[tuple[float, str]] = []

    def sample() -> list[WorkerSample]:
        return [WorkerSample("unit 0", samples["busy"], samples["marker"])]

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: liveness.keep_watchdog(
                sample, lambda m: sent.append((trio.current_time(), m)), 1.0,
                ready_status="serving", stall_limit=5.0))
            await trio.sleep(3.5)
            samples["busy"] = True  # a call starts and never moves
            await trio.sleep(10)
            samples["marker"] = 1  # it moves again
            await trio.sleep(3)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=clock)  # a mock clock: the sleeps jump instead of taking time
    pings = [t for t, m in sent if m == "WATCHDOG=1"]
    # last seen idle at 3 s: stuck once more than 5 s passed (9 s) until it moved (13.5 s)
    assert pings == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 14.0, 15.0, 16.0]
    others = [m for _, m in sent if m != "WATCHDOG=1"]
    assert others == [liveness.stuck_status(["unit 0"], 5.0), "STATUS=serving"]


class BlockingDrive:
    """A drive whose write waits until released (a worker that stops moving)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def write(self, data: bytes) -> int:
        self.release.wait(30)
        return len(data)

    def status(self) -> dict[str, Any]:
        return {}


def test_a_units_blocked_call_is_seen_busy_without_progress() -> None:
    trio.run(blocked_call)


async def blocked_call() -> None:
    drive = BlockingDrive()
    position = [0]
    lane = [False]
    unit = Unit(UnitConfig(number=3, cassette=Path('/nonexistent')), drive,  # type: ignore[arg-type]
                probe=WorkProbe(lambda: position[0], lambda: lane[0]))
    first = unit.worker_sample()
    assert first.name == "unit 3" and not first.busy
    lane[0] = True  # a codec job in flight between calls is work too
    assert unit.worker_sample().busy
    lane[0] = False
    async with trio.open_nursery() as nursery:
        nursery.start_soon(unit.run, drive.write, b"x")
        await trio.sleep(0.2)
        during = unit.worker_sample()
        assert during.busy and during.marker == first.marker
        position[0] = 10  # the tape moved: a new marker
        assert unit.worker_sample().marker != first.marker
        drive.release.set()
    after = unit.worker_sample()
    assert not after.busy and after.marker != during.marker


def test_a_card_unit_waiting_for_the_operator_is_not_stuck() -> None:
    """A unit whose call waits for a person pressing a button is waiting by design."""
    from backerd.hw.unit import HardwareUnit
    from backerd.vcr.control import Motion
    from backerd.vcr.manual import ManualControl
    from backerd.vcr.settings import VcrSettings

    operator = ManualControl(0, VcrSettings(control="manual", ack_timeout=30.0),
                             notify=lambda text: None, poll=0.02)
    unit = HardwareUnit(UnitConfig(number=0, cassette=Path("/nonexistent")),
                        BlockingDrive(), deck=None, modem=None, clock=None,  # type: ignore[arg-type]
                        operator=operator)
    assert not unit.worker_sample().waiting
    pressing = threading.Thread(target=operator.press, args=(Motion.STOP,), daemon=True)
    pressing.start()
    for _ in range(500):
        if operator.status()["waiting"] is not None:
            break
        threading.Event().wait(0.01)
    sample = unit.worker_sample()
    assert sample.waiting
    seen, stuck = assess({sample.name: Seen(sample.marker, 0.0)}, [
        WorkerSample(sample.name, True, sample.marker, sample.waiting)], 1e6)
    assert stuck == []
    operator.ack()
    pressing.join(5)
    assert not unit.worker_sample().waiting

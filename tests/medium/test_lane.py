"""CodecLane: one job at a time; ``busy`` tells, without waiting, whether it still runs."""

from __future__ import annotations

import threading

import pytest

from backerd.medium.lane import CodecLane


def test_busy_while_the_job_runs_and_not_after() -> None:
    lane = CodecLane()
    assert lane.idle and not lane.busy
    gate, started = threading.Event(), threading.Event()

    def job() -> int:
        started.set()
        gate.wait(10)
        return 7

    lane.submit(job)
    assert started.wait(10)
    assert lane.busy and not lane.idle
    with pytest.raises(RuntimeError, match="one job at a time"):
        lane.submit(job)
    gate.set()
    for _ in range(1000):  # the job returns and its result is set on the lane's thread
        if not lane.busy:
            break
        threading.Event().wait(0.01)
    assert not lane.busy and not lane.idle  # done, not yet finished
    assert lane.finish() == 7
    assert lane.idle and lane.finish() is None


def test_a_failed_job_is_raised_by_finish_and_the_lane_goes_on() -> None:
    lane = CodecLane()

    def fail() -> None:
        raise OSError("disk")

    lane.submit(fail)
    with pytest.raises(OSError, match="disk"):
        lane.finish()
    assert not lane.busy
    lane.submit(lambda: "next")
    assert lane.finish() == "next"

"""The reel model of timed winding and the position-confirming loop."""

from __future__ import annotations

import errno
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backerd.errors import ControlError
from backerd.vcr.control import Motion, WindTarget
from backerd.vcr.position import confirm_position, index_presses
from backerd.vcr.reel import ReelModel, ReelParams

PAL_E180 = 180 * 60 * 50


def model(**params: float) -> ReelModel:
    return ReelModel.for_cassette(PAL_E180, 50, "pal", ReelParams(**params))


def simulate(m: ReelModel, origin: int, motion: Motion, held: float, dt: float = 0.01) -> float:
    """Independent oracle: integrate ds/dt = w * R(s) step by step (mm on the driven reel)."""
    p = m.params
    total = PAL_E180 / 50 * m.play_speed
    r_full = math.sqrt(p.hub_radius ** 2 + p.thickness * total / math.pi)
    w = (r_full - p.hub_radius) * 2 * math.pi / (p.thickness * p.full_wind) * m.scale
    here = origin / 50 * m.play_speed
    wound = here if motion == Motion.FAST_FORWARD else total - here
    t = 0.0
    while t < held - p.spin_up - 1e-12:
        step = min(dt, held - p.spin_up - t)
        r = math.sqrt(p.hub_radius ** 2 + p.thickness * wound / math.pi)
        # midpoint rule keeps the oracle accurate at this step size
        r_mid = math.sqrt(p.hub_radius ** 2 + p.thickness * (wound + w * r * step / 2) / math.pi)
        wound = min(wound + w * r_mid * step, total)
        t += step
    mm = wound if motion == Motion.FAST_FORWARD else total - wound
    return mm / m.play_speed * 50


def test_whole_tape_takes_full_wind_both_ways() -> None:
    m = model(spin_up=2.0)
    assert m.hold(0, PAL_E180) == (Motion.FAST_FORWARD, pytest.approx(182.0))
    assert m.hold(PAL_E180, 0) == (Motion.REWIND, pytest.approx(182.0))
    assert m.hold(100, 100) == (Motion.FAST_FORWARD, 0.0)


def test_winding_is_slow_on_an_empty_reel_and_fast_on_a_full_one() -> None:
    m = model()
    minute = 60 * 50
    first = m.travel(0, minute)
    last = m.travel(PAL_E180 - minute, PAL_E180)
    assert first > 2.5 * last
    # and the other way round when rewinding
    assert m.travel(minute, 0) < m.travel(PAL_E180, PAL_E180 - minute) / 2.5


@given(st.integers(0, PAL_E180), st.sampled_from([Motion.FAST_FORWARD, Motion.REWIND]),
       st.floats(0, 200), st.floats(0.5, 2.0))
def test_landing_agrees_with_integrating_the_reel_equation(origin, motion, held, scale) -> None:
    m = model().scaled(scale)
    assert abs(m.landing(origin, motion, held) - simulate(m, origin, motion, held)) <= 2


@given(st.integers(0, PAL_E180), st.integers(0, PAL_E180))
def test_hold_and_landing_are_inverse(origin, target) -> None:
    m = model()
    motion, held = m.hold(origin, target)
    assert abs(m.landing(origin, motion, held) - target) <= 1


@given(st.integers(1000, PAL_E180 - 1000), st.integers(1000, PAL_E180 - 1000),
       st.floats(0.5, 2.0))
def test_speed_scale_recovers_a_decks_real_speed(origin, target, scale) -> None:
    nominal, real = model(), model().scaled(scale)
    motion, held = nominal.hold(origin, target)
    landed = real.landing(origin, motion, held)
    if abs(landed - origin) < 3000 or landed in (0, PAL_E180):
        return  # too short to measure, or ran into an end
    assert nominal.speed_scale(origin, landed, held) == pytest.approx(scale, rel=0.02)


def test_bad_parameters_are_refused() -> None:
    for bad in ({"hub_radius": 0}, {"thickness": -1}, {"full_wind": 0}, {"spin_up": -0.1}):
        with pytest.raises(ValueError):
            ReelParams(**bad)
    with pytest.raises(ValueError):
        model().landing(0, Motion.PLAY, 3.0)


def test_index_presses_counts_marks_between_origin_and_target() -> None:
    starts = [0, 1000, 5000, 9000]
    assert index_presses(starts, 0, 2) == 2  # the mark under the head is not counted
    assert index_presses(starts, 1500, 3) == 2
    assert index_presses(starts, 1500, 1) == -1  # back to the start of this recording
    assert index_presses(starts, 9000, 0) == -3
    assert index_presses(starts, 1000, 1) == 0
    with pytest.raises(ValueError):
        index_presses(starts, 0, 4)


class Tape:
    """A deck winding with a reel model the control does not know exactly."""

    def __init__(self, real: ReelModel, nominal: ReelModel) -> None:
        self.real, self.nominal, self.pos, self.winds = real, nominal, 0, []

    def wind(self, target: WindTarget) -> None:
        motion, held = self.nominal.hold(target.origin, target.position)
        self.winds.append(target)
        self.pos = self.real.landing(self.pos, motion, held)

    def observe(self) -> tuple[int, int] | None:
        self.pos += 20  # reading the signal plays a little
        return self.pos - 20, self.pos


def test_confirm_converges_on_a_deck_faster_than_the_model() -> None:
    tape = Tape(model().scaled(1.08), model())
    target = 400_000
    done = confirm_position(tape.wind, tape.observe, WindTarget(target, 0, "2:13:20"),
                            fps=50, early=250)
    assert target - 250 <= done.position <= target
    assert done.winds >= 2  # the first wind overshot: 8 % of 400 000 fields
    assert tape.winds[0].position == target - 125  # aimed early
    assert tape.winds[1].origin == done.observed[0] + 20  # corrections start where it is
    assert done.now == done.position + 20
    assert all(w.recording is None for w in tape.winds)


def test_confirm_gives_up_with_etimedout_and_eio() -> None:
    tape = Tape(model().scaled(3.0), model())
    with pytest.raises(ControlError) as info:
        confirm_position(tape.wind, tape.observe, WindTarget(300_000, 0, "1:40:00"),
                         fps=50, early=10, attempts=2)
    assert info.value.errno == errno.ETIMEDOUT and "wind by hand" in info.value.message
    with pytest.raises(ControlError) as info:
        confirm_position(tape.wind, lambda: None, WindTarget(1000, 0, "0:00:20"),
                         fps=50, early=10)
    assert info.value.errno == errno.EIO and "no signal" in info.value.message

"""How long to hold FAST FORWARD or REWIND: a model of a VHS cassette's two reels.

Theory of operation. An infrared remote gives no position feedback, so a deck without
index search is positioned by *timed winding*: press FF or REW, wait, press STOP. The
tape does not wind at a constant speed. The deck drives one reel (the take-up reel in
FF, the supply reel in REW) at a roughly constant angular speed ``w``, so the tape moves
at ``v = w * R`` where ``R`` is the radius of the tape wound on the driven reel:

    R(s) = sqrt(r0^2 + h * s / pi)      s = tape length on that reel, r0 = hub radius,
                                        h = tape thickness

    ds/dt = w * R   =>   dR/dt = w * h / (2 pi)   (a constant)

The radius of the driven reel therefore grows *linearly in time*; winding from ``s1`` to
``s2`` takes ``(R(s2) - R(s1)) / g`` seconds with ``g = w h / (2 pi)``. Winding is slow
near the start of the driven reel and fast near its end: the first minute of an E-180
fast-forwards about three times slower than the last. ``g`` is not measured directly;
it follows from the time the deck takes to wind the whole cassette end to end
(``full_wind``, one stopwatch measurement per deck), plus a fixed ``spin_up`` lost each
time winding starts (brakes, motor start).

Positions are field time from BOT (as everywhere in ``vcr``); tape length is field
time times the linear play speed (VHS SP: 33.35 mm/s NTSC, 23.39 mm/s PAL).

Parameters (defaults are typical, never measured on a real deck here):

=============  ==========  ====================================================
name           default     meaning
=============  ==========  ====================================================
hub_radius     12.5 mm     radius of an empty reel hub
thickness      0.019 mm    tape thickness (E-180 / T-120; E-240 about 0.015)
full_wind      180 s       end-to-end FF (or REW) time of this deck and length
spin_up        1.5 s       time lost each time winding starts
=============  ==========  ====================================================

``ReelModel.hold`` gives the FF/REW hold time for an origin -> target; ``landing`` is
the inverse (where the tape ends up after a hold), used to learn a deck's real speed
from where the signal says the tape landed (``speed_scale``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from backerd.vcr.control import Motion

PLAY_SPEED_MM_S = {"ntsc": 33.35, "pal": 23.39}  # VHS SP linear tape speed


@dataclass(frozen=True)
class ReelParams:
    """A deck's winding parameters (the config's ``[unit.vcr.reel]`` table)."""

    hub_radius: float = 12.5  # mm
    thickness: float = 0.019  # mm
    full_wind: float = 180.0  # s, end to end
    spin_up: float = 1.5  # s

    def __post_init__(self) -> None:
        for name in ("hub_radius", "thickness", "full_wind"):
            if not getattr(self, name) > 0:
                raise ValueError(f"reel {name} must be positive")
        if not self.spin_up >= 0:
            raise ValueError("reel spin_up must not be negative")


@dataclass(frozen=True)
class ReelModel:
    """Winding times of one cassette in one deck. ``scale`` > 1: the deck is faster."""

    length: int  # fields of tape on the cassette
    fps: int
    play_speed: float  # mm/s of tape at play speed
    params: ReelParams = ReelParams()
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.length <= 0 or self.fps <= 0 or self.play_speed <= 0 or self.scale <= 0:
            raise ValueError("reel model needs a positive length, fps, play speed and scale")

    @classmethod
    def for_cassette(cls, length: int, fps: int, standard: str,
                     params: ReelParams | None = None) -> ReelModel:
        return cls(length, fps, PLAY_SPEED_MM_S[standard], params or ReelParams())

    def scaled(self, scale: float) -> ReelModel:
        return ReelModel(self.length, self.fps, self.play_speed, self.params, scale)

    # -- geometry ------------------------------------------------------------------------

    def _mm(self, position: float) -> float:
        return min(max(position, 0.0), self.length) / self.fps * self.play_speed

    def _radius(self, wound_mm: float) -> float:
        p = self.params
        return math.sqrt(p.hub_radius ** 2 + p.thickness * max(wound_mm, 0.0) / math.pi)

    @property
    def _growth(self) -> float:
        """dR/dt of the driven reel (mm/s) at this deck's speed."""
        full = self._radius(self._mm(self.length)) - self.params.hub_radius
        return full / self.params.full_wind * self.scale

    def _driven(self, position: float, motion: Motion) -> float:
        """Radius of the reel the deck drives for ``motion`` at ``position``."""
        total = self._mm(self.length)
        here = self._mm(position)
        return self._radius(here if motion == Motion.FAST_FORWARD else total - here)

    # -- the two directions of the model ------------------------------------------------

    def travel(self, origin: int, target: int) -> float:
        """Seconds of winding (spin-up excluded) from ``origin`` to ``target``."""
        motion = Motion.FAST_FORWARD if target >= origin else Motion.REWIND
        return (self._driven(target, motion) - self._driven(origin, motion)) / self._growth

    def hold(self, origin: int, target: int) -> tuple[Motion, float]:
        """(FAST_FORWARD or REWIND, seconds to hold it) to go from origin to target."""
        motion = Motion.FAST_FORWARD if target >= origin else Motion.REWIND
        if target == origin:
            return motion, 0.0
        return motion, self.params.spin_up + self.travel(origin, target)

    def landing(self, origin: int, motion: Motion, held: float) -> int:
        """Where the tape is after holding ``motion`` for ``held`` seconds from ``origin``."""
        if motion not in (Motion.FAST_FORWARD, Motion.REWIND):
            raise ValueError(f"{motion} does not wind")
        moving = max(held - self.params.spin_up, 0.0)
        radius = self._driven(origin, motion) + self._growth * moving
        wound = (radius ** 2 - self.params.hub_radius ** 2) * math.pi / self.params.thickness
        total = self._mm(self.length)
        mm = wound if motion == Motion.FAST_FORWARD else total - wound
        mm = min(max(mm, 0.0), total)
        return round(mm / self.play_speed * self.fps)

    def speed_scale(self, origin: int, landed: int, held: float) -> float | None:
        """The ``scale`` that explains landing at ``landed`` after a hold of ``held`` s.

        None when the hold says nothing (no movement time, or the tape hit an end).
        """
        moving = held - self.params.spin_up
        if moving <= 0 or landed == origin or landed in (0, self.length):
            return None
        nominal = self.scaled(1.0).travel(origin, landed)
        return nominal / moving if nominal > 0 else None

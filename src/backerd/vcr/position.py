"""Getting the tape to a position without feedback from the deck, then confirming it.

Theory of operation. A ``VcrControl`` winds open-loop: index search counts marks, timed
winding trusts a reel model, an operator reads a counter that drifts. Only the signal
tells where the tape really is: the deck plays a little and reads sector numbers and
recording headers. ``confirm_position`` is that loop, pure over two callbacks:

* ``wind(target)`` asks the control to wind (``VcrControl.wind_to``);
* ``observe()`` plays briefly and returns ``(landed, now)``: where the signal shows the
  wind landed, and where the tape is after the playing it took to see that (or None
  when there is no signal to read: blank tape, no video).

Being a little *early* is cheap (the deck plays forward to the exact field, reading as
it goes) while being late costs another rewind with its spin-up. So the loop aims
``early // 2`` fields before the target and accepts any landing in
``[target - early, target]``. A correction carries the observed position (``now``)
as its origin. Each landing is also reported (``landed``, e.g. ``LircControl.landed``)
so a control can learn its deck's real winding speed. A correction never uses index
search (its mark count was for the first origin).

``index_presses`` counts the index marks between an origin and a recording's start:
the number of INDEX presses (forward positive) a VISS deck needs, which a deck puts
in ``WindTarget.marks``.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from backerd.errors import ControlError
from backerd.vcr.base import format_time
from backerd.vcr.control import WindTarget

DEFAULT_ATTEMPTS = 6


@dataclass(frozen=True)
class Positioned:
    """Where the loop ended: the confirmed position and every observation on the way."""

    position: int  # where the last wind landed (in the window)
    now: int  # where the tape is after confirming it
    observed: tuple[int, ...]  # every landing, first to last

    @property
    def winds(self) -> int:
        return len(self.observed)


def index_presses(starts: Sequence[int], origin: int, recording: int) -> int:
    """INDEX presses from ``origin`` to the mark of ``recording`` (negative = back).

    A forward search stops at the next mark after the head; a backward search at the
    last mark before it, so a head standing on a mark counts that mark only backwards.
    """
    if not 0 <= recording < len(starts):
        raise ValueError(f"no recording {recording} (the cassette has {len(starts)})")
    target = starts[recording]
    if target > origin:
        return sum(1 for s in starts if origin < s <= target)
    if target < origin:
        return -sum(1 for s in starts if target <= s < origin)
    return 0


def confirm_position(
    wind: Callable[[WindTarget], None],
    observe: Callable[[], tuple[int, int] | None],
    target: WindTarget,
    *,
    fps: int,
    early: int,
    attempts: int = DEFAULT_ATTEMPTS,
    landed: Callable[[int], None] | None = None,
) -> Positioned:
    """Wind to ``target`` and correct until the signal puts the tape in the window.

    Raises ``ControlError`` (EIO) when there is no signal to confirm from, and
    (ETIMEDOUT) when ``attempts`` winds did not land in the window.
    """
    if early < 0 or attempts < 1:
        raise ValueError("early must be >= 0 and attempts >= 1")
    goal = target.position
    low = max(goal - early, 0)
    aim = max(goal - early // 2, 0)
    request = target
    if target.recording is None:  # timed or by counter: aim early
        request = WindTarget(aim, target.origin, format_time(aim, fps), None, target.marks)
    seen: list[int] = []
    for _ in range(attempts):
        wind(request)
        seen_now = observe()
        if seen_now is None:
            raise ControlError(
                f"no signal after winding to {format_time(request.position, fps)}: "
                "the position cannot be confirmed (blank tape there, or no video reaches "
                "the card)", errno=errno.EIO)
        at, now = seen_now
        seen.append(at)
        if landed is not None:
            landed(at)
        if low <= at <= goal:
            return Positioned(at, now, tuple(seen))
        request = WindTarget(aim, now, format_time(aim, fps))
    raise ControlError(
        f"could not wind to {format_time(goal, fps)} in {attempts} tries (last at "
        f"{format_time(seen[-1], fps)}); wind by hand and retry", errno=errno.ETIMEDOUT)

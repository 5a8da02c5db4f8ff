"""The simulated VCR as a ``VcrControl``: buttons that move a simulated cassette.

Theory of operation: this VCR has no data path of its own. Its heads are connected to
an emulated card (``video``): while it plays, the field of the slot under the head is
the card's input, one slot per field time of the *VCR's* field clock (which starts when
PLAY is pressed); while it records, each field the card outputs is written to the slot
under the head, and a field that carries no data (all zero bytes, a black picture) is
recorded as no signal. Winding is instant in fast mode and costs transport time (and
sleeps, in real-time mode) through the same ``Transport`` model as the plain simulated
VCR. The cassette image, with its recording catalog, is the public ``Cassette`` API.

Every method takes the emulator's lock: the card is advanced from the service task
while the deck presses buttons from a worker thread.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable

from backerd.errors import ControlError, MediumError
from backerd.vcr.base import format_time
from backerd.vcr.control import Motion, VcrControl, WindTarget
from backerd.vcr.sim import Cassette
from backerd.vcr.transport import Transport


class EmuVcr:
    """A VCR whose video in/out is an emulated card; implements ``VcrControl``."""

    def __init__(self, cassette: Cassette, lock: threading.RLock, clock_ns: Callable[[], int], *,
                 realtime: bool = False) -> None:
        self.cassette = cassette
        self.lock = lock
        self._clock_ns = clock_ns
        self.motion = Motion.STOP
        self.position = 0
        self.play_origin = 0  # bus time (ns) of field 0 of the current playback
        self.realtime = realtime
        self.transport = Transport(cassette.fps)  # tape-time accounting only
        self.fields_recorded = 0
        self.blank_recorded = 0
        self._aborted = threading.Event()
        self.signal_lost = False  # fault injection: the VCR outputs no video

    # -- VcrControl -------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "sim"

    def press(self, motion: Motion) -> None:
        if self._aborted.is_set():
            self._aborted.clear()
            raise ControlError("interrupted", errno=errno.EINTR)
        with self.lock:
            if motion == Motion.RECORD:
                if self.cassette.write_protected:
                    raise ControlError("the cassette is write-protected", errno=errno.EACCES)
                if self.motion != Motion.RECORD and self.position < self.cassette.signal_end():
                    self.cassette.discard_from(self.position)
            if motion == Motion.PLAY and self.motion != Motion.PLAY:
                self.play_origin = self._clock_ns()
            if motion in (Motion.FAST_FORWARD, Motion.REWIND):
                raise ControlError(f"{motion} needs a target: use wind_to", errno=errno.EINVAL)
            if motion == Motion.EJECT:
                self.cassette.flush()
            self.motion = motion

    def wind_to(self, target: WindTarget) -> None:
        with self.lock:
            goal = min(max(target.position, 0), self.cassette.slots)
            distance = goal - self.position
            self.motion = Motion.STOP
            self.position = goal
        before = self.transport.elapsed
        self.transport.wind(distance)
        if self.realtime:  # a real deck takes this long to wind; the heads are idle
            self._aborted.wait(self.transport.elapsed - before)

    def status(self) -> dict:
        return {"control": "sim", "motion": str(self.motion), "position": self.position,
                "counter": format_time(self.position, self.cassette.fps)}

    def abort(self) -> None:
        self._aborted.set()

    # -- the heads (called by the emulated card with the lock held) ---------------------

    def play_field(self) -> bytes | None:
        """The field under the head at the start of a playback field time."""
        if self.motion != Motion.PLAY or self.position >= self.cassette.slots:
            return None
        field = self.cassette.read_fields(self.position, 1)[0]
        self.position += 1
        self.transport.run(1)
        return None if self.signal_lost else field

    def record_field(self, field: bytes) -> None:
        if self.motion != Motion.RECORD:
            return
        if self.position >= self.cassette.slots:
            raise MediumError("end of tape", errno=errno.ENOSPC)
        if any(field):
            self.cassette.write_fields(self.position, [field])
            self.fields_recorded += 1
        else:
            self.blank_recorded += 1
        self.position += 1
        self.transport.run(1)


class OperatedVcr:
    """The emulated VCR pressed by an operator or through lircd (``[unit.vcr]``).

    Models the person (or the IR transmitter) at the emulated deck: every button goes
    to ``operator`` first (a prompt, an IR command) and, once that has returned (the
    operator acknowledged, lircd sent the code), the emulated VCR performs the motion,
    as the real deck would when its button is pressed. So the whole manual or LIRC path
    runs against the emulated card end to end.
    """

    def __init__(self, operator: VcrControl, vcr: EmuVcr) -> None:
        self.operator = operator
        self.vcr = vcr

    @property
    def name(self) -> str:
        return self.operator.name

    def press(self, motion: Motion) -> None:
        self.operator.press(motion)
        self.vcr.press(motion)

    def wind_to(self, target: WindTarget) -> None:
        self.operator.wind_to(target)
        self.vcr.wind_to(target)

    def status(self) -> dict:
        return self.operator.status()

    def abort(self) -> None:
        self.operator.abort()
        self.vcr.abort()

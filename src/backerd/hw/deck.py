"""A deck made of a VCR control and a modem: ``vcr.base.Deck`` for real hardware.

Theory of operation: the medium above sees the same ``Deck`` as with the simulated VCR.
Underneath, motion goes to a ``VcrControl`` (buttons) and data to a ``Modem`` (the card).
The deck keeps the *logical* head position (fields recorded or played since BOT, what
the medium expects) and its belief of where the tape is; it winds lazily, only when a
play or record starts somewhere else than the tape is believed to be.

Recording: the first ``record`` positions the tape, presses RECORD and starts the card
in transmit with the first fields preloaded; later calls hand bytes to the modem's
bounded queue. The geometry comes from the field lengths (odd/even sizes differ per
standard and density). The recording ends when anything else happens (a catalog
commit, stop, seek, play): the modem transmits what is queued, pads and stops between
fields. Stale frames the card sent during underruns lie on tape inside the recording,
so the committed field count grows by them (the decoders skip them as duplicates).

Playing: the card starts receiving, then PLAY is pressed; field ``j`` of the playback
is what arrived between the bus times of field boundaries ``j`` and ``j + 1`` after the
press (exact on the emulator's fast clock; within one service tick in real time). The
card needs the density before it can receive: it is taken from the catalog recording
under the head, else the unit's default mode.

Confirming the position: the simulated VCR winds exactly; any other control (an
operator, timed winding through LIRC) lands a few percent off. After such a wind the
deck plays a short stretch (``PEEK`` fields), decodes the sector numbers in it and maps
them through the catalog to where the tape landed (``hw.confirm``);
``vcr.position.confirm_position`` winds again by the difference until the landing is
at most ``EARLY`` before the target. The playback then simply goes on: the fields
between the landing and the target are read and dropped. No signal where the catalog
has recordings is a ``ControlError`` that says what was seen.

The recording catalog is not on the tape: the emulated setup keeps it in the cassette
image; real hardware keeps it in a sidecar file in the state directory.
"""

from __future__ import annotations

import contextlib
import errno
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from backerd.errors import ControlError, MediumError, TapeError
from backerd.format.params import Geometry, ModeParams
from backerd.format.params import mode as mode_params
from backerd.hw.card import geometry_for_field
from backerd.hw.confirm import observed_landing, read_sectors
from backerd.hw.modem import Modem
from backerd.vcr.base import Field, Interrupted, Recording, RecordingCatalog, format_time
from backerd.vcr.control import LearnsLanding, Motion, VcrControl, WindTarget
from backerd.vcr.position import confirm_position, index_presses

WAIT = 30.0  # seconds a receive may wait for the card before ETIMEDOUT
# Seconds a transmit hand-over may take beyond the tape time of what the card must send
# first (the modem derives that part): a busy host's scheduling. A late service tick
# costs no slack: the stale frames it makes the card send extend the deadline.
SLACK = 5.0
PEEK = 16  # fields played to read where a wind landed (sectors to vote on)
EARLY_SECONDS = 10  # a landing up to this early is played forward, not wound again


@dataclass
class TapeInfo:
    """What the deck knows about the loaded cassette besides the signal on it."""

    standard: str
    fps: int
    length: int
    catalog: RecordingCatalog
    write_protected: Callable[[], bool]
    signal_end: Callable[[], int]


class _FinishingCatalog:
    """The medium's catalog; a recording in flight is finished before it changes."""

    def __init__(self, deck: CardDeck) -> None:
        self._deck = deck

    @property
    def _inner(self) -> RecordingCatalog:
        return self._deck.info.catalog

    @property
    def recordings(self) -> tuple[Recording, ...]:
        return self._inner.recordings

    @property
    def interrupted(self) -> Interrupted | None:
        return self._inner.interrupted

    def begin_recording(self, start: int, mode: str, fmt: str = "3.102", *, keep: int = 0,
                        index: int | None = None) -> None:
        self._deck.settle()
        with self._deck.lock:
            self._inner.begin_recording(start, mode, fmt, keep=keep, index=index)

    def commit_recording(self, recording: Recording) -> None:
        stale = self._deck.settle()
        if stale:
            recording = recording.with_(fields=recording.fields + stale)
            self._deck.moved_to(recording.end)
        with self._deck.lock:
            self._inner.commit_recording(recording)

    def replace_recording(self, index: int, recording: Recording) -> None:
        self._deck.settle()
        with self._deck.lock:
            self._inner.replace_recording(index, recording)

    def forget_interrupted(self) -> None:
        with self._deck.lock:
            self._inner.forget_interrupted()

    def flush(self) -> None:
        self._deck.settle()
        with self._deck.lock:
            self._inner.flush()

    def discard_from(self, slot: int, *, index: int | None = None) -> None:
        self._deck.settle()
        with self._deck.lock:
            self._inner.discard_from(slot, index=index)


class CardDeck:
    """``confirm``: check every wind against the signal (False only for an exact VCR)."""

    def __init__(self, control: VcrControl, modem: Modem, info: TapeInfo, *,
                 default_mode: str = "nhs", lock: threading.RLock | None = None,
                 confirm: bool = True) -> None:
        self.control = control
        self.confirm = confirm
        self.modem = modem
        self.info = info
        self.default_mode = default_mode
        self.lock = lock or threading.RLock()
        self._catalog = _FinishingCatalog(self)
        self._loaded = True
        self._pos = 0
        self._tape: int | None = 0  # where the tape is believed to be (None: unknown)
        self._motion: str | None = None  # "record" | "play" | None
        self._stale_base = 0
        self._play_t0 = 0
        self._play_start = 0
        self._peeked: list[Field] = []  # fields played from _play_start while confirming
        self._next_field = 0
        self.last_geometry: Geometry | None = None

    # -- Deck properties -------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._loaded

    def _require(self) -> TapeInfo:
        if not self._loaded:
            raise MediumError("no cassette loaded", errno=errno.ENOMEDIUM)
        return self.info

    @property
    def standard(self) -> str:
        return self._require().standard

    @property
    def fps(self) -> int:
        return self._require().fps

    @property
    def length(self) -> int:
        return self._require().length

    @property
    def write_protected(self) -> bool:
        return self._require().write_protected()

    @property
    def catalog(self) -> RecordingCatalog:
        self._require()
        return self._catalog

    def load(self) -> None:
        self._loaded = True
        self._pos = 0
        self._tape = None

    def eject(self) -> None:
        self.stop()
        self.control.press(Motion.EJECT)
        self._loaded = False

    def position(self) -> int:
        return self._pos

    def counter(self) -> str:
        return format_time(self._pos, self.fps)

    def signal_end(self) -> int:
        return self._require().signal_end()

    # -- motion ---------------------------------------------------------------------------

    def settle(self) -> int:
        """End the recording or playback in flight; stale fields a recording gained."""
        if self._motion == "record":
            self._motion = None
            try:
                self.modem.finish(SLACK)
            finally:
                self.control.press(Motion.STOP)
                # A confirming deck believes the tape stopped where the data did (the
                # next wind is checked anyway); an exact one re-places it from scratch.
                self._tape = self._pos if self.confirm else None
            stale = self.modem.counters.stale_bytes - self._stale_base
            g = self.last_geometry
            return 0 if g is None else stale // g.frame_size * 2
        if self._motion == "play":
            self._motion = None
            self.modem.stop()
            self.control.press(Motion.STOP)
            self._tape = self._pos if self.confirm else None
        return 0

    def moved_to(self, position: int) -> None:
        if self._tape == self._pos:
            self._tape = position
        self._pos = position

    def stop(self) -> None:
        self.settle()
        self.control.press(Motion.STOP)

    def seek(self, position: int) -> None:
        position = min(max(position, 0), self.length)
        if position != self._pos or self._motion is not None:
            self.settle()
        self._pos = position

    def wind(self, fields: int) -> None:
        self.seek(self._pos + fields)

    def rewind(self) -> None:
        self.seek(0)

    def index_search(self, recording: int) -> None:
        recs = self.catalog.recordings
        if not 0 <= recording < len(recs):
            raise MediumError(f"no recording {recording} on the cassette", errno=errno.EIO)
        self.seek(recs[recording].start)

    def _position_tape(self) -> None:
        if self._tape == self._pos:
            return
        recs = self.info.catalog.recordings
        index = next((i for i, r in enumerate(recs) if r.start == self._pos), None)
        self.control.wind_to(WindTarget(self._pos, self._tape if self._tape is not None else -1,
                                        format_time(self._pos, self.fps), index))
        self._tape = self._pos

    # -- data -----------------------------------------------------------------------------

    def record(self, fields: Sequence[bytes]) -> None:
        info = self._require()
        if not fields:
            return
        if info.write_protected():
            raise MediumError("cassette is write-protected", errno=errno.EACCES)
        room = info.length - self._pos
        take = list(fields[:room])
        data = b"".join(take)
        if self._motion != "record":
            self.settle()
            geometry = geometry_for_field(len(take[0]))
            if geometry is None:
                raise TapeError(f"a field of {len(take[0])} bytes fits no card geometry",
                                errno=errno.EINVAL)
            if self.confirm and self._tape != self._pos:
                self._confirmed_cue()
            self._position_tape()
            self.control.press(Motion.RECORD)
            self._stale_base = self.modem.counters.stale_bytes
            self.last_geometry = geometry
            self.modem.start(geometry, "transmit", preload=data)
            self._motion = "record"
        else:
            self.modem.submit(data, SLACK)
        self._pos += len(take)
        if len(take) < len(fields):
            raise MediumError("end of tape", errno=errno.ENOSPC)

    def _geometry_here(self) -> Geometry:
        for rec in self.info.catalog.recordings:
            if rec.start <= self._pos < rec.end:
                return mode_params(rec.mode, rec.fmt).geometry
        return mode_params(self.default_mode).geometry

    def play(self, count: int) -> list[Field]:
        info = self._require()
        count = max(min(count, info.length - self._pos), 0)
        if count == 0:
            return []
        if self._motion != "play":
            self.settle()
            if self.confirm and self._tape != self._pos:
                self._confirmed_play()
            else:
                self._position_tape()
                self._start_playing(self._pos)
        out: list[Field] = []
        first = self._pos - self._play_start
        for j in range(first, first + count):
            out.append(self._played(j))
        self._pos += count
        self._tape = None
        return out

    def _start_playing(self, at: int) -> None:
        """Receive, press PLAY: field ``j`` of this playback is tape slot ``at + j``."""
        geometry = self._geometry_here()
        self.last_geometry = geometry
        self.modem.start(geometry, "receive")
        self.control.press(Motion.PLAY)
        self._play_t0 = self.modem.now_ns()
        self._play_start = at
        self._peeked = []
        self._next_field = 0  # the next field of this playback to collect
        self._motion = "play"

    def _played(self, j: int) -> Field:
        """Field ``j`` of the playback in flight (already read while confirming, or now)."""
        if j < len(self._peeked):
            return self._peeked[j]
        data = b""
        while self._next_field <= j:  # one field time at a time: the ring is not a tape
            self._next_field += 1
            due = self._play_t0 + self._next_field * 1_000_000_000 // self.fps
            data = self.modem.collect(due, WAIT).data
        return data or None

    def _params_here(self) -> tuple[ModeParams, tuple[Recording, ...]]:
        """The mode to decode at the position and the recordings that share it."""
        recs = self.info.catalog.recordings
        for rec in recs:
            if rec.start <= self._pos < rec.end:
                break
        else:
            before = [r for r in recs if r.start <= self._pos]
            rec = before[-1] if before else (recs[0] if recs else None)
        if rec is None:
            return mode_params(self.default_mode), ()
        same = tuple(r for r in recs if (r.mode, r.fmt) == (rec.mode, rec.fmt))
        return mode_params(rec.mode, rec.fmt), same

    def _confirmed_play(self) -> None:
        """Wind to the position and confirm it from the signal; leaves the deck playing
        from the confirmed landing (at most ``EARLY_SECONDS`` before the position)."""
        goal = self._pos
        params, recs = self._params_here()
        end = self.info.signal_end()
        origin = self._tape if self._tape is not None else -1
        starts = [r.start for r in self.info.catalog.recordings]
        index = next((i for i, s in enumerate(starts) if s == goal), None)
        marks = None if index is None or origin < 0 else index_presses(starts, origin, index)
        target = WindTarget(goal, origin, format_time(goal, self.fps), index, marks)
        blank = [False]  # an earlier look at this positioning saw blank tape
        seen_text: list[str] = []
        winding = [False]  # a failure of the control itself passes unchanged

        def wind(request: WindTarget) -> None:
            if self._motion == "play":
                self._motion = None
                self.modem.stop()
                self.control.press(Motion.STOP)
            winding[0] = True
            self.control.wind_to(request)
            winding[0] = False
            self._tape = request.position  # believed until observed

        def observe() -> tuple[int, int] | None:
            self._start_playing(self._tape if self._tape is not None else goal)
            self._peeked = [self._played(j) for j in range(PEEK)]
            seen = read_sectors(self._peeked, params)
            data = sum(1 for f in self._peeked if f)
            numbers = "".join(f" {s.number}" for s in seen[:4])
            seen_text.append(f"{data} of {PEEK} fields with video, {len(seen)} sectors "
                             f"decoded{' (numbers' + numbers + ')' if seen else ''}")
            at = observed_landing(recs, seen, video=data, near=self._play_start, goal=goal,
                                  signal_end=end, blank_before=blank[0])
            if at is None:
                return None
            blank[0] = blank[0] or not seen
            if seen and isinstance(self.control, LearnsLanding):
                self.control.landed(at)  # only a landing the sectors showed teaches
            self._play_start = at
            return at, at + PEEK

        try:
            done = confirm_position(wind, observe, target, fps=self.fps,
                                    early=EARLY_SECONDS * self.fps)
        except ControlError as exc:
            if self._motion == "play":
                self.settle()
            self._tape = None
            if winding[0] or not seen_text:
                raise
            raise ControlError(f"{exc}; seen after the last wind: "
                               f"{seen_text[-1]}",
                               errno=exc.errno) from None
        self._play_start = done.position
        self._tape = None

    def _confirmed_cue(self) -> None:
        """Before recording after a wind: confirm the landing from the signal as for
        playback, play up to the position and stop there, so that a recording never
        starts inside the one before it (or leaves a gap) because the reels ran
        otherwise than the model said."""
        goal = self._pos
        self._confirmed_play()
        for j in range(goal - self._play_start):
            self._played(j)
        self._motion = None
        self.modem.stop()
        self.control.press(Motion.STOP)
        self._tape = goal

    def status(self) -> dict:
        control: dict | None = None
        with contextlib.suppress(Exception):  # status is informative: never let it fail
            control = self.control.status()
        return {
            "loaded": self._loaded, "position": self._pos, "motion": self._motion or "stopped",
            "modem": self.modem.name, "counters": self.modem.counters.to_json(),
            "control": control,
        }

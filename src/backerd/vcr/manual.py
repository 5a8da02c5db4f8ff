"""A person presses the VCR's buttons: ``ManualControl`` and the ``deck`` requests.

Theory of operation. When no IR transmitter is fitted, the daemon asks an operator.
Each ``press`` or ``wind_to`` becomes a *prompt*: one sentence saying what to press
or where to wind (the tape counter target as the daemon counts it from BOT, and the
recording whose index mark is there, for decks with index search), published four
ways at once: a log line, the systemd STATUS text, ``backerd status`` (``status()``),
and the prompt's own number. The operator does it and acknowledges through the
daemon's control socket (``backerd deck ready --unit N``), or gives up
(``backerd deck cancel --unit N``), which ends the wait with ECANCELED.

For PLAY, the signal answers as well: with a ``listen`` callable (the modem's latest
raw fields) the prompt ends as soon as the key search finds a Backer signal
(``vcr.signal``), acknowledged or not; after an acknowledgement without signal the
control waits ``signal_timeout`` more for it and then fails with a message that says
what to check. Every wait has a timeout (``ack_timeout``, ETIMEDOUT) and ends early on
``abort()`` (EINTR); waits poll in short slices so neither needs a second thread.

The request side is ``deck_request``: the control socket hands it the words after
``deck`` and a table of the units' manual controls; it answers a JSON-able dict.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

from backerd.errors import ControlError
from backerd.vcr.base import Field
from backerd.vcr.control import Motion, WindTarget
from backerd.vcr.settings import VcrSettings
from backerd.vcr.signal import signal_present

log = logging.getLogger("backerd.vcr")

POLL = 0.25  # s between checks of the signal and the clock while waiting

# What to tell the operator for each motion (button names as decks print them).
BUTTONS: dict[Motion, str] = {
    Motion.PLAY: "PLAY",
    Motion.RECORD: "REC (with PLAY if the deck needs both)",
    Motion.STOP: "STOP",
    Motion.PAUSE: "PAUSE",
    Motion.FAST_FORWARD: "FF",
    Motion.REWIND: "REW",
    Motion.EJECT: "EJECT",
}


@dataclass(frozen=True)
class Prompt:
    """One request to the operator."""

    number: int  # increases with every prompt of the unit
    action: str  # "press" | "wind" | "do"
    text: str
    motion: str | None = None
    counter: str | None = None
    recording: int | None = None
    since: float = 0.0  # wall clock (time.time) when it was asked


class ManualControl:
    """``VcrControl`` by operator prompts; ``ack``/``cancel`` come from the control socket.

    ``notify`` publishes the systemd status text (the daemon's ``sd_notify``).
    """

    def __init__(
        self,
        unit: int,
        settings: VcrSettings | None = None,
        *,
        mode: str = "nhs",
        fmt: str = "3.102",
        notify: Callable[[str], None],
        listen: Callable[[], Sequence[Field]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll: float = POLL,
    ) -> None:
        self.unit = unit
        self.settings = settings or VcrSettings(control="manual")
        self.mode, self.fmt = mode, fmt
        self._listen = listen
        self._notify = notify
        self._clock = clock
        self._poll = poll
        self._cond = threading.Condition()
        self._prompt: Prompt | None = None
        self._acked = False
        self._ended: tuple[int, str] | None = None  # (errno, why) from cancel/abort
        self._count = 0
        self._last: str | None = None
        self._closed = False
        self._stopping = False

    @property
    def name(self) -> str:
        return "manual"

    # -- from the control socket (any thread) -------------------------------------------

    def ack(self, number: int | None = None) -> str:
        """The operator did what the prompt asked; returns a line for them."""
        with self._cond:
            prompt = self._prompt
            if prompt is None:
                raise ControlError(f"unit {self.unit} is not waiting for the operator",
                                   errno=errno.EAGAIN)
            if number is not None and number != prompt.number:
                raise ControlError(f"unit {self.unit} is now waiting for prompt "
                                   f"{prompt.number}, not {number}: {prompt.text}",
                                   errno=errno.EAGAIN)
            self._acked = True
            self._cond.notify_all()
            return f"unit {self.unit}: acknowledged: {prompt.text}"

    def cancel(self, reason: str = "") -> str:
        """The operator cannot do it (no cassette, deck broken): the wait fails."""
        with self._cond:
            if self._prompt is None:
                raise ControlError(f"unit {self.unit} is not waiting for the operator",
                                   errno=errno.EAGAIN)
            why = f"the operator cancelled: {reason}" if reason else "the operator cancelled"
            self._ended = (errno.ECANCELED, why)
            self._cond.notify_all()
            return f"unit {self.unit}: cancelled"

    def abort(self) -> None:
        with self._cond:
            if self._prompt is not None:
                self._ended = (errno.EINTR, "aborted")
                self._cond.notify_all()

    def stopping(self) -> None:
        """The daemon is stopping: the wait in progress ends (EINTR); later prompts (the
        STOP that closes a recording) are announced but not waited for."""
        with self._cond:
            self._stopping = True
            self._ended = (errno.EINTR, "the daemon is stopping")
            self._cond.notify_all()

    def close(self) -> None:
        """The daemon is stopping: end any wait and refuse every later request (EINTR)."""
        with self._cond:
            self._closed = True
            self._ended = (errno.EINTR, "the daemon is stopping")
            self._cond.notify_all()

    def status(self) -> dict:
        with self._cond:
            prompt = self._prompt
            return {
                "control": "manual",
                "waiting": None if prompt is None else asdict(prompt),
                "last": self._last,
            }

    # -- the deck's side (a worker thread) ----------------------------------------------

    def _ask(self, action: str, text: str, **details: object) -> Prompt:
        with self._cond:
            if self._closed:
                raise ControlError(f"unit {self.unit}: the daemon is stopping",
                                   errno=errno.EINTR)
            self._count += 1
            hint = f"; then run `backerd deck ready --unit {self.unit}`"
            prompt = Prompt(self._count, action, text + hint, since=time.time(),
                            **details)  # type: ignore[arg-type]
        log.warning("unit %d: operator, please %s", self.unit, prompt.text)
        self._notify(f"STATUS=unit {self.unit}: operator, please {prompt.text}")
        with self._cond:  # acknowledgeable once announced everywhere
            self._prompt, self._acked = prompt, False
            if not (self._closed or self._stopping):  # a close() meanwhile stays in force
                self._ended = None
        return prompt

    def _done(self, prompt: Prompt, outcome: str) -> None:
        with self._cond:
            if self._prompt is prompt:
                self._prompt = None
            self._last = f"{prompt.text.split(';')[0]}: {outcome}"
        self._notify(f"STATUS=unit {self.unit}: {outcome}")

    def _signal(self) -> bool:
        if self._listen is None:
            return False
        return signal_present(self._listen(), self.mode, self.fmt)

    def _wait(self, prompt: Prompt, *, until_signal: bool) -> str:
        """Wait for the acknowledgement (or the signal); returns what ended it."""
        deadline = self._clock() + self.settings.ack_timeout
        while True:
            with self._cond:
                if self._ended is not None:
                    code, why = self._ended
                    raise ControlError(f"unit {self.unit}: {why} while waiting to "
                                       f"{prompt.text.split(';')[0]}", errno=code)
                if self._acked:
                    return "acknowledged"
            if until_signal and self._signal():
                return "signal found"
            left = deadline - self._clock()
            if left <= 0:
                raise ControlError(
                    f"unit {self.unit}: nobody acknowledged \"{prompt.text.split(';')[0]}\" "
                    f"within {self.settings.ack_timeout:g} s (run `backerd deck ready --unit "
                    f"{self.unit}` once it is done)", errno=errno.ETIMEDOUT)
            with self._cond:
                if not (self._acked or self._ended):
                    self._cond.wait(min(left, self._poll))

    def _await_signal(self, prompt: Prompt) -> None:
        deadline = self._clock() + self.settings.signal_timeout
        while not self._signal():
            with self._cond:
                if self._ended is not None:
                    raise ControlError(f"unit {self.unit}: {self._ended[1]} while waiting "
                                       "for the signal", errno=self._ended[0])
            if self._clock() >= deadline:
                raise ControlError(
                    f"unit {self.unit}: PLAY was acknowledged but no Backer signal reached "
                    f"the card within {self.settings.signal_timeout:g} s: check that the "
                    "tape holds a recording here, that the VCR's video output is cabled to "
                    f"the card, and that the VCR outputs its tape (AV), in mode {self.mode}",
                    errno=errno.EIO)
            with self._cond:
                self._cond.wait(self._poll)

    def press(self, motion: Motion) -> None:
        prompt = self._ask("press", f"press {BUTTONS[motion]} on the VCR of unit {self.unit}",
                           motion=motion.value)
        if self._stopping:
            self._done(prompt, "not waited for: the daemon is stopping")
            return
        try:
            playing = motion == Motion.PLAY and self._listen is not None
            how = self._wait(prompt, until_signal=playing)
            if playing and how == "acknowledged":
                self._await_signal(prompt)
                how = "acknowledged, signal found"
        except ControlError as exc:
            self._done(prompt, f"failed: {exc.message}")
            raise
        self._done(prompt, how)

    def request(self, text: str) -> None:
        """Ask the operator to do ``text`` (e.g. insert a cassette); wait for ``ready``."""
        prompt = self._ask("do", text)
        try:
            how = self._wait(prompt, until_signal=False)
        except ControlError as exc:
            self._done(prompt, f"failed: {exc.message}")
            raise
        self._done(prompt, how)

    def wind_to(self, target: WindTarget) -> None:
        where = f"counter {target.counter} (counted from 0:00:00 at the beginning of the tape)"
        if target.recording is not None:
            where += f", the start of recording {target.recording}"
            if target.marks:
                way = "forward" if target.marks > 0 else "back"
                where += f" (index search: {abs(target.marks)} {way})"
        text = f"wind the tape of unit {self.unit} to {where}, then press STOP"
        prompt = self._ask("wind", text, counter=target.counter, recording=target.recording)
        try:
            how = self._wait(prompt, until_signal=False)
        except ControlError as exc:
            self._done(prompt, f"failed: {exc.message}")
            raise
        self._done(prompt, how)


def deck_request(words: Sequence[str], controls: Mapping[int, ManualControl]) -> dict:
    """Answer ``deck ready|cancel UNIT [PROMPT|REASON...]`` from the control socket."""
    usage = "usage: deck ready UNIT [PROMPT] | deck cancel UNIT [REASON]"
    if len(words) < 2 or words[0] not in ("ready", "cancel") or not words[1].isdigit():
        return {"error": usage}
    unit = int(words[1])
    control = controls.get(unit)
    if control is None:
        manual = ", ".join(map(str, sorted(controls))) or "none"
        return {"error": f"unit {unit} is not under manual control (manual units: {manual})"}
    try:
        if words[0] == "ready":
            if len(words) > 2 and not words[2].isdigit():
                return {"error": usage}
            message = control.ack(int(words[2]) if len(words) > 2 else None)
        else:
            message = control.cancel(" ".join(words[2:]))
    except ControlError as exc:
        return {"error": exc.message}
    return {"ok": True, "message": message}

"""A VCR's buttons pressed through lircd and an IR transmitter: ``LircControl``.

Theory of operation. ``LircConnection`` is the thin socket edge: a blocking unix
stream socket to lircd, every read bounded by a deadline and polled in short slices so
``abort()`` from another thread ends it (EINTR); all parsing is the sans-IO
``LircClient``. A connection lost (lircd restarted) is reopened once per command.

``LircControl`` implements ``VcrControl`` open-loop, because IR is one-way:

* ``press`` sends the key-map keys of a motion (``SEND_ONCE``, in order), then waits
  ``settle`` seconds for PLAY/RECORD (the deck laces the tape). A refused key is a
  ``ControlError`` with lircd's message.
* ``wind_to`` uses index search when the target is a recording start, the deck has
  INDEX keys and the deck told how many marks lie between (``WindTarget.marks``): the
  INDEX key is pressed that many times, the search is given the reel model's winding
  time plus ``index_settle``, then STOP. Otherwise it winds by time: FF or REW held for
  what ``ReelModel.hold`` says, then STOP.
* The deck then confirms the position from the signal (``vcr.position``) and asks again
  from the observed origin. ``landed(position)`` tells the control where its last timed
  wind really ended, so it learns the deck's real winding speed (a weighted mean of
  ``ReelModel.speed_scale`` over the winds so far) and the next wind is closer. Only a
  wind's own landing teaches: any other motion in between forgets the wind.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from backerd.errors import ControlError
from backerd.vcr.control import Motion, WindTarget
from backerd.vcr.lirc_protocol import ButtonPress, LircClient, Malformed, Reply, Sighup
from backerd.vcr.reel import ReelModel
from backerd.vcr.settings import KeyMap, VcrSettings

log = logging.getLogger("backerd.vcr")

COMMAND_TIMEOUT = 5.0  # s for lircd to answer one command (a long IR code takes < 1 s)
_SLICE = 0.1  # s between abort checks while waiting
_MIN_HOLD = 0.2  # s: a shorter wind cannot be timed through lircd; not worth pressing


class LircConnection:
    """One connection to lircd; ``command`` returns the matching ``Reply``."""

    def __init__(self, path: Path, *, abort: threading.Event | None = None,
                 timeout: float = COMMAND_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._abort = abort or threading.Event()
        self._sock: socket.socket | None = None
        self._client = LircClient()

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(_SLICE)
        try:
            s.connect(str(self.path))
        except FileNotFoundError:
            s.close()
            raise ControlError(f"lircd is not running (no socket at {self.path}); start "
                               "lircd or set [unit.vcr] socket", errno=errno.ENODEV) from None
        except OSError as exc:
            s.close()
            raise ControlError(f"cannot connect to lircd at {self.path}: {exc.strerror}",
                               errno=errno.ENODEV) from None
        self._sock, self._client = s, LircClient()
        return s

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def command(self, text: str) -> Reply:
        """Send ``text``; reopen the connection once if lircd went away."""
        try:
            return self._exchange(text)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            self.close()
            log.info("lircd connection lost; reconnecting to %s", self.path)
        try:
            return self._exchange(text)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            self.close()
            raise ControlError(f"lircd at {self.path} closed the connection",
                               errno=errno.EIO) from None

    def _exchange(self, text: str) -> Reply:
        sock = self._connect()
        sock.sendall(self._client.command(text))
        deadline = time.monotonic() + self.timeout
        while True:
            if self._abort.is_set():
                self.close()  # a reply may still come: never pair it with a later command
                raise ControlError(f"aborted while waiting for lircd ({text})",
                                   errno=errno.EINTR)
            if time.monotonic() > deadline:
                self.close()
                raise ControlError(f"lircd did not answer {text!r} within {self.timeout:g} s",
                                   errno=errno.ETIMEDOUT)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            if not data:
                raise EOFError
            for event in self._client.feed(data):
                if isinstance(event, Reply) and event.expected:
                    return event
                if isinstance(event, Sighup):
                    log.info("lircd reread its configuration")
                elif isinstance(event, Malformed):
                    log.warning("lircd sent something unexpected: %s", event.reason)
                elif isinstance(event, ButtonPress):
                    log.debug("IR button %s of %s seen", event.key, event.remote)


class LircControl:
    """``VcrControl`` over lircd. ``sleep`` is injectable (tests use a virtual clock)."""

    def __init__(
        self,
        settings: VcrSettings,
        model: ReelModel,
        *,
        sleep: Callable[[float], None] | None = None,
        connection: LircConnection | None = None,
    ) -> None:
        if settings.keymap is None:
            raise ControlError("LIRC control needs a key map ([unit.vcr.keys])",
                               errno=errno.EINVAL)
        self.settings = settings
        self.keymap: KeyMap = settings.keymap
        self.model = model
        self._abort = threading.Event()
        self._sleep = sleep
        self._conn = connection or LircConnection(settings.socket, abort=self._abort)
        self._motion: Motion | None = None
        self._doing = "idle"
        self._last_wind: tuple[int, Motion, float] | None = None  # origin, motion, held
        self._closed = False
        self._busy = False  # a call is using the connection (close() leaves it to the call)
        self._learned = [0.0, 0.0]  # sum(scale * weight), sum(weight)

    @property
    def name(self) -> str:
        return f"lirc:{self.keymap.remote}"

    def load_cassette(self, model: ReelModel) -> None:
        """A new cassette (length) in the deck: its reel model; what was learnt goes."""
        self.model = model
        self._last_wind = None
        self._learned = [0.0, 0.0]

    def check_keys(self) -> None:
        """Ask lircd (``LIST remote``) whether it knows every key of the key map.

        Run at start-up so a misspelt key fails there, not at the first tape operation.
        """
        reply = self._conn.command(f"LIST {self.keymap.remote}")
        if not reply.success:
            raise ControlError(f"lircd does not know remote {self.keymap.remote!r}: "
                               f"{reply.message}", errno=errno.ENODEV)
        known = {line.split()[-1] for line in reply.data if line.split()}
        missing = sorted({k for keys in self.keymap.keys.values() for k in keys} - known)
        if missing:
            raise ControlError(
                f"lircd's remote {self.keymap.remote!r} has no key {', '.join(missing)} "
                f"(known: {' '.join(sorted(known))}); fix [unit.vcr.keys]", errno=errno.EINVAL)

    # -- waiting -----------------------------------------------------------------------

    def abort(self) -> None:
        self._abort.set()

    def _check_abort(self, what: str) -> None:
        if self._abort.is_set():
            self._abort.clear()
            self._doing = "idle"
            raise ControlError(f"aborted while {what}", errno=errno.EINTR)

    def _wait(self, seconds: float, what: str) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._abort.wait(seconds)  # returns early on abort()
        self._check_abort(what)

    # -- buttons -----------------------------------------------------------------------

    def _send(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            self._check_abort(f"pressing {key}")
            text = f"SEND_ONCE {self.keymap.remote} {key}"
            if self.settings.repeats:
                text += f" {self.settings.repeats}"
            try:
                reply = self._conn.command(text)
            except ControlError as exc:
                if exc.errno == errno.EINTR:
                    self._abort.clear()
                raise
            if not reply.success:
                raise ControlError(f"lircd refused {text}: {reply.message} (check the key "
                                   f"names of [unit.vcr.keys] against `irsend LIST "
                                   f"{self.keymap.remote} \"\"`)", errno=errno.EIO)

    def _keys(self, role: str) -> tuple[str, ...]:
        keys = self.keymap.keys.get(role)
        if keys is None:
            raise ControlError(f"the key map of remote {self.keymap.remote} has no {role} "
                               f"key; add it to [unit.vcr.keys]", errno=errno.EOPNOTSUPP)
        return keys

    def _end(self) -> None:
        self._busy = False
        self._doing = "idle"
        if self._closed:
            self._conn.close()

    def press(self, motion: Motion) -> None:
        self._begin()
        try:
            if motion not in (Motion.PLAY, Motion.STOP, Motion.PAUSE):
                self._last_wind = None  # the tape moved: the landing can no longer be seen
            self._doing = f"pressing {motion.value}"
            self._send(self._keys(motion.value))
            self._motion = motion
            if motion in (Motion.PLAY, Motion.RECORD):
                self._wait(self.settings.settle, f"waiting for the deck to {motion.value}")
        finally:
            self._end()

    # -- positioning ---------------------------------------------------------------------

    @property
    def speed_scale(self) -> float:
        """The deck's winding speed relative to the reel model, as learnt so far."""
        total, weight = self._learned
        return total / weight if weight else 1.0

    def landed(self, observed: int) -> None:
        """Where the signal showed the last timed wind ended (before any other motion)."""
        if self._last_wind is None:
            return
        origin, _, held = self._last_wind
        self._last_wind = None
        scale = self.model.speed_scale(origin, observed, held)
        if scale is not None and 0.25 < scale < 4.0:  # else: the deck did not wind as asked
            weight = held - self.model.params.spin_up
            self._learned[0] += scale * weight
            self._learned[1] += weight

    def wind_to(self, target: WindTarget) -> None:
        self._begin()
        try:
            self._wind(target)
        finally:
            self._end()

    def _wind(self, target: WindTarget) -> None:
        self._last_wind = None
        model = self.model.scaled(self.speed_scale)
        if target.recording is not None and target.marks and self.keymap.index_search:
            role = "index_forward" if target.marks > 0 else "index_back"
            self._doing = f"index search to recording {target.recording}"
            for _ in range(abs(target.marks)):
                self._send(self._keys(role))
            _, seconds = model.hold(target.origin, target.position)
            self._wait(seconds + self.settings.index_settle, self._doing)
        else:
            motion, held = model.hold(target.origin, target.position)
            if held - model.params.spin_up < _MIN_HOLD:
                if motion == Motion.FAST_FORWARD or target.position == target.origin:
                    return  # too close to time: the deck plays forward the rest
                # Late by less than a wind can be timed: rewind the shortest wind, which
                # lands early, where playing forward reaches the target.
                held = model.params.spin_up + _MIN_HOLD
            self._doing = f"winding to {target.counter}"
            self._send(self._keys(motion.value))
            self._motion = motion
            try:
                self._wait(held, self._doing)
            except ControlError:
                # Aborted: do not leave the deck winding into the end of the tape.
                with contextlib.suppress(ControlError):
                    self._abort.clear()
                    self._send(self._keys("stop"))
                    self._motion = Motion.STOP
                raise
            self._last_wind = (target.origin, motion, held)
        self._send(self._keys("stop"))
        self._motion = Motion.STOP

    def status(self) -> dict:
        return {
            "control": "lirc", "remote": self.keymap.remote, "socket": str(self._conn.path),
            "motion": None if self._motion is None else self._motion.value,
            "doing": self._doing, "speed_scale": round(self.speed_scale, 4),
            "index_search": self.keymap.index_search,
        }

    def close(self) -> None:
        """The daemon is stopping: end any wait (EINTR) and refuse later calls."""
        self._closed = True
        self._abort.set()
        if not self._busy:
            self._conn.close()

    def _begin(self) -> None:
        if self._closed:
            raise ControlError("LIRC control is closed (the daemon is stopping)",
                               errno=errno.EINTR)
        self._abort.clear()  # abort() ends a wait in progress, not a later call
        self._busy = True

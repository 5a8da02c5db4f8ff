"""The lircd socket protocol, sans I/O: command bytes out, bytes in -> events.

Theory of operation. lircd (``/var/run/lirc/lircd``) speaks lines over a unix stream
socket. A client sends one command per line (``SEND_ONCE remote key [repeats]``,
``LIST remote``, ``VERSION``); lircd answers each with a *reply packet*::

    BEGIN
    <the command, echoed>
    SUCCESS | ERROR
    [DATA
     <n>
     <n lines>]
    END

An ERROR always carries DATA with the message. On the same socket lircd also writes,
unasked, one *broadcast* line per decoded button press (``<code hex> <repeat hex>
<key> <remote>``) and, when it rereads its configuration, a ``BEGIN / SIGHUP / END``
packet. Either can arrive between replies or right after a command, so neither may be
taken for the reply: a reply is recognised by its echoed command, matched in order
against the commands sent.

``LircParser`` is a line-driven state machine (the rules are the ``_NEXT`` table). It
never raises on input: an overlong line, bytes that are not UTF-8, a packet cut short
by a new ``BEGIN``, a count that is not a number all become a ``Malformed`` event and
the parser resynchronises on the next ``BEGIN``. ``LircClient`` adds the command side:
it formats commands (refusing names lircd could not parse, which are the caller's
error, not wire input) and pairs replies with the commands waiting for them.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

MAX_LINE = 4096  # bytes; lircd's own packets are far shorter
MAX_DATA_LINES = 1000  # a DATA count above this is garbage (LIST of a big remote: ~200)
MAX_REPEATS = 600  # lircd's default --repeat-max

# A remote or key name as lircd.conf allows it: printable, no blanks.
_NAME = re.compile(r"^[!-~]{1,128}$")
_BROADCAST = re.compile(r"^[0-9A-Fa-f]{1,16} [0-9A-Fa-f]{1,8} \S+ \S+$")


@dataclass(frozen=True)
class Reply:
    """lircd's answer to one command. ``expected`` is False for an unmatched echo."""

    command: str
    success: bool
    data: tuple[str, ...] = ()
    expected: bool = True

    @property
    def message(self) -> str:
        """The error text (or data) on one line."""
        return " ".join(self.data) if self.data else ("ok" if self.success else "error")


@dataclass(frozen=True)
class ButtonPress:
    """A broadcast: lircd decoded an IR button (someone used a remote)."""

    code: str
    repeat: int
    key: str
    remote: str


@dataclass(frozen=True)
class Sighup:
    """lircd reread its configuration (remotes and keys may have changed)."""


@dataclass(frozen=True)
class Malformed:
    """Input that fits no rule; the parser resynchronised after it."""

    reason: str
    line: str = ""


Event = Reply | ButtonPress | Sighup | Malformed

# Parser states.
_IDLE = "idle"  # between packets: broadcasts or BEGIN
_COMMAND = "command"  # after BEGIN: the echoed command (or SIGHUP)
_SIGHUP_END = "sighup_end"  # after BEGIN/SIGHUP: END
_RESULT = "result"  # after the command: SUCCESS or ERROR
_AFTER_RESULT = "after_result"  # DATA or END
_COUNT = "count"  # after DATA: the number of data lines
_DATA = "data"  # data lines
_END = "end"  # after the data lines: END

# Rules as data: state -> {keyword line: next state}. Lines that are not keywords are
# handled by the state's own action (command echo, count, data line).
_NEXT: dict[str, dict[str, str]] = {
    _IDLE: {"BEGIN": _COMMAND},
    _COMMAND: {"SIGHUP": _SIGHUP_END},
    _SIGHUP_END: {"END": _IDLE},
    _RESULT: {"SUCCESS": _AFTER_RESULT, "ERROR": _AFTER_RESULT},
    _AFTER_RESULT: {"DATA": _COUNT, "END": _IDLE},
    _END: {"END": _IDLE},
}


class LircParser:
    """Bytes from lircd -> events. ``feed`` never raises on any input."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skipping = False  # inside an overlong line: drop up to its newline
        self._state = _IDLE
        self._command = ""
        self._success = False
        self._left = 0
        self._data: list[str] = []

    @property
    def idle(self) -> bool:
        """True between packets (no reply half-read)."""
        return self._state == _IDLE and not self._buf

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        self._buf += data
        pos = 0  # lines are consumed by offset and cut off once: linear in the input
        while True:
            nl = self._buf.find(b"\n", pos)
            if nl < 0:
                del self._buf[:pos]
                if len(self._buf) > MAX_LINE:
                    if not self._skipping:
                        events.append(Malformed(f"line longer than {MAX_LINE} bytes"))
                        self._reset()
                    self._skipping = True
                    self._buf.clear()
                return events
            raw = bytes(self._buf[pos:nl])
            pos = nl + 1
            if self._skipping:
                self._skipping = False
                continue
            if len(raw) > MAX_LINE:
                events.append(Malformed(f"line longer than {MAX_LINE} bytes"))
                self._reset()
                continue
            try:
                line = raw.decode("utf-8").removesuffix("\r")
            except UnicodeDecodeError:
                events.append(Malformed("line is not UTF-8", raw.decode("utf-8", "replace")))
                self._reset()
                continue
            events.extend(self._line(line))

    def _reset(self) -> None:
        self._state = _IDLE
        self._command = ""
        self._data = []
        self._left = 0

    def _line(self, line: str) -> list[Event]:
        state = self._state
        keyword = line.strip()
        if state == _DATA:  # data lines are taken as they are, even "END" or "BEGIN"
            self._data.append(line)
            self._left -= 1
            if self._left == 0:
                self._state = _END
            return []
        if state != _IDLE and keyword == "BEGIN":
            # A packet cut short: report it and start the new one.
            self._reset()
            self._state = _COMMAND
            return [Malformed("packet cut short by BEGIN")]
        nxt = _NEXT.get(state, {}).get(keyword)
        if nxt is not None:
            return self._keyword(keyword, nxt)
        if state == _IDLE:
            if not keyword:
                return []
            if _BROADCAST.match(keyword):
                code, repeat, key, remote = keyword.split(" ")
                return [ButtonPress(code, int(repeat, 16), key, remote)]
            return [Malformed("unexpected line between packets", line)]
        if state == _COMMAND and keyword:
            self._command = keyword
            self._state = _RESULT
            return []
        if state == _COUNT and keyword.isascii() and keyword.isdigit():
            n = int(keyword)
            if n > MAX_DATA_LINES:
                self._reset()
                return [Malformed("DATA count too large", line)]
            self._left = n
            self._data = []
            self._state = _DATA if n else _END
            return []
        if state in (_RESULT, _AFTER_RESULT, _END) and _BROADCAST.match(keyword):
            # lircd writes broadcasts whole, but tolerate one between a packet's lines.
            code, repeat, key, remote = keyword.split(" ")
            return [ButtonPress(code, int(repeat, 16), key, remote)]
        self._reset()
        return [Malformed(f"unexpected line in a reply ({state})", line)]

    def _keyword(self, keyword: str, nxt: str) -> list[Event]:
        events: list[Event] = []
        if keyword in ("SUCCESS", "ERROR"):
            self._success = keyword == "SUCCESS"
        elif keyword == "END" and self._state == _SIGHUP_END:
            events.append(Sighup())
        elif keyword == "END":
            events.append(Reply(self._command, self._success, tuple(self._data)))
            self._command, self._data = "", []
        self._state = nxt
        return events


def _normal(command: str) -> str:
    return " ".join(command.split()).upper()


class LircClient:
    """Commands to lircd and the pairing of its replies with them (sans I/O)."""

    def __init__(self) -> None:
        self._parser = LircParser()
        self._waiting: deque[str] = deque()

    @property
    def waiting(self) -> tuple[str, ...]:
        """Commands sent and not yet answered, oldest first."""
        return tuple(self._waiting)

    def command(self, text: str) -> bytes:
        """Bytes to send for ``text`` (one line); its reply will be expected."""
        if not text or "\n" in text or "\r" in text or not text.isprintable():
            raise ValueError(f"not a single-line lircd command: {text!r}")
        self._waiting.append(_normal(text))
        return text.encode("utf-8") + b"\n"

    def send_once(self, remote: str, key: str, repeats: int = 0) -> bytes:
        """``SEND_ONCE remote key [repeats]``: one press (plus repeat codes)."""
        for what, name in (("remote", remote), ("key", key)):
            if not _NAME.match(name):
                raise ValueError(f"invalid lircd {what} name {name!r}")
        if not 0 <= repeats <= MAX_REPEATS:
            raise ValueError(f"repeats must be 0..{MAX_REPEATS}, got {repeats}")
        return self.command(f"SEND_ONCE {remote} {key}" + (f" {repeats}" if repeats else ""))

    def feed(self, data: bytes) -> list[Event]:
        """Events in ``data``; a reply whose echo is not the oldest waiting command
        comes out with ``expected=False`` (and leaves the waiting commands alone)."""
        out: list[Event] = []
        for event in self._parser.feed(data):
            if isinstance(event, Reply):
                if self._waiting and _normal(event.command) == self._waiting[0]:
                    self._waiting.popleft()
                else:
                    event = Reply(event.command, event.success, event.data, expected=False)
            out.append(event)
        return out

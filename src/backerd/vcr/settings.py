"""How a unit's VCR is controlled: the ``[unit.vcr]`` table of the configuration.

Example (LIRC; every key of ``[unit.vcr.keys]`` names a button of the remote as
lircd.conf spells it, and a list is pressed in order)::

    [[unit]]
    number = 0

    [unit.vcr]
    control = "lirc"                     # sim | manual | lirc
    socket = "/var/run/lirc/lircd"
    remote = "panasonic_vcr"
    settle = 2.0                         # s for the deck to lace the tape after PLAY/REC
    index_settle = 3.0                   # s an index search spends finding its mark

    [unit.vcr.keys]
    play = "KEY_PLAY"
    record = ["KEY_RECORD", "KEY_PLAY"]  # decks that want REC then PLAY
    stop = "KEY_STOP"
    pause = "KEY_PAUSE"
    fast_forward = "KEY_FASTFORWARD"
    rewind = "KEY_REWIND"
    eject = "KEY_EJECTCD"
    index_forward = "KEY_NEXT"           # VISS index search; leave out if the deck has none
    index_back = "KEY_PREVIOUS"

    [unit.vcr.reel]                      # timed winding (see vcr.reel)
    full_wind = 170.0                    # s to fast-forward this cassette end to end
    spin_up = 1.5

Manual control (an operator presses the buttons) needs only ``control = "manual"`` and
optionally ``ack_timeout`` (s to wait for ``backerd deck ready``) and
``signal_timeout`` (s to wait for a signal after PLAY). Errors are ``ConfigError``
naming the key, like the rest of the configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backerd.errors import ConfigError
from backerd.vcr.control import Motion
from backerd.vcr.lirc_protocol import MAX_REPEATS
from backerd.vcr.reel import ReelParams

CONTROLS = ("sim", "manual", "lirc")
DEFAULT_LIRC_SOCKET = Path("/var/run/lirc/lircd")

# Key-map roles -> the motion they produce (None: index search, not a motion).
KEY_ROLES: dict[str, Motion | None] = {
    "play": Motion.PLAY,
    "record": Motion.RECORD,
    "stop": Motion.STOP,
    "pause": Motion.PAUSE,
    "fast_forward": Motion.FAST_FORWARD,
    "rewind": Motion.REWIND,
    "eject": Motion.EJECT,
    "index_forward": None,
    "index_back": None,
}
REQUIRED_ROLES = ("play", "stop", "fast_forward", "rewind")
_REEL_KEYS = ("hub_radius", "thickness", "full_wind", "spin_up")
_VCR_KEYS = {"control", "socket", "remote", "keys", "reel", "settle", "index_settle",
             "ack_timeout", "signal_timeout", "repeats"}


@dataclass(frozen=True)
class KeyMap:
    """The buttons of one remote in lircd's names: role -> keys pressed in order."""

    remote: str
    keys: Mapping[str, tuple[str, ...]]

    def for_motion(self, motion: Motion) -> tuple[str, ...] | None:
        return self.keys.get(motion.value)

    @property
    def index_search(self) -> bool:
        return "index_forward" in self.keys and "index_back" in self.keys


@dataclass(frozen=True)
class VcrSettings:
    control: str = "sim"
    socket: Path = DEFAULT_LIRC_SOCKET
    keymap: KeyMap | None = None
    reel: ReelParams = field(default_factory=ReelParams)
    settle: float = 2.0  # s after PLAY/RECORD before the heads read or write
    index_settle: float = 3.0  # s an index search spends slowing down onto its mark
    ack_timeout: float = 900.0  # s an operator has to acknowledge a prompt
    signal_timeout: float = 30.0  # s to wait for a signal once PLAY is pressed
    repeats: int = 0  # extra repeat codes per press, for decks that miss single codes


def _number(table: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError(f"{where}{key}: expected a number >= 0, got {value!r}")
    return float(value)


def _keys(table: Any, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table of key names")
    out: dict[str, tuple[str, ...]] = {}
    for role, value in table.items():
        if role not in KEY_ROLES:
            raise ConfigError(f"{where}.{role}: unknown button (known: {', '.join(KEY_ROLES)})")
        names = [value] if isinstance(value, str) else value
        if (not isinstance(names, list) or not names
                or not all(isinstance(n, str) and n and n.isprintable() and " " not in n
                           for n in names)):
            raise ConfigError(
                f"{where}.{role}: expected a lircd key name or a list of them, got {value!r}")
        out[role] = tuple(names)
    return out


def parse_vcr(table: Any, where: str) -> VcrSettings:
    """Validate a ``[unit.vcr]`` table; ``where`` prefixes error messages (``unit[0].vcr.``)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where.rstrip('.')}: expected a table, got {table!r}")
    for key in table:
        if key not in _VCR_KEYS:
            raise ConfigError(f"{where}{key}: unknown key (known: {', '.join(sorted(_VCR_KEYS))})")
    control = table.get("control", "sim")
    if control not in CONTROLS:
        raise ConfigError(f"{where}control: expected one of {', '.join(CONTROLS)}, got {control!r}")
    socket = table.get("socket", str(DEFAULT_LIRC_SOCKET))
    if not isinstance(socket, str) or not Path(socket).is_absolute():
        raise ConfigError(f"{where}socket: expected an absolute path, got {socket!r}")
    reel_table = table.get("reel", {})
    if not isinstance(reel_table, dict) or set(reel_table) - set(_REEL_KEYS):
        raise ConfigError(f"{where}reel: expected a table with {', '.join(_REEL_KEYS)}")
    defaults = ReelParams()
    try:
        reel = ReelParams(**{k: _number(reel_table, k, f"{where}reel.", getattr(defaults, k))
                             for k in _REEL_KEYS})
    except ValueError as exc:
        raise ConfigError(f"{where}reel: {exc}") from None
    repeats = table.get("repeats", 0)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 0 <= repeats <= MAX_REPEATS:
        raise ConfigError(f"{where}repeats: expected 0..{MAX_REPEATS}, got {repeats!r}")
    keymap = None
    if control == "lirc":
        remote = table.get("remote")
        if not isinstance(remote, str) or not remote or " " in remote:
            raise ConfigError(f"{where}remote: the lircd remote name is required for LIRC")
        keys = _keys(table.get("keys", {}), f"{where}keys")
        missing = [r for r in REQUIRED_ROLES if r not in keys]
        if missing:
            raise ConfigError(f"{where}keys: LIRC needs keys for {', '.join(missing)}")
        if ("index_forward" in keys) != ("index_back" in keys):
            raise ConfigError(f"{where}keys: index search needs both index_forward and "
                              "index_back")
        keymap = KeyMap(remote, keys)
    elif "keys" in table or "remote" in table:
        raise ConfigError(f"{where}keys: a key map is only used with control = \"lirc\"")
    return VcrSettings(
        control=control, socket=Path(socket), keymap=keymap, reel=reel,
        settle=_number(table, "settle", where, 2.0),
        index_settle=_number(table, "index_settle", where, 3.0),
        ack_timeout=_number(table, "ack_timeout", where, 900.0),
        signal_timeout=_number(table, "signal_timeout", where, 30.0),
        repeats=repeats,
    )

"""The daemon's configuration: a TOML file (tomllib) over built-in defaults.

Example (every key is optional; this is the built-in default)::

    state_dir = "/var/lib/backerd"       # or $BACKERD_STATE_DIR / $STATE_DIRECTORY
    runtime_dir = "/run/backerd"         # or $BACKERD_RUNTIME_DIR / $RUNTIME_DIRECTORY
    fuse_root = "/run/backerd/dev"       # default: <runtime_dir>/dev
    transport = "auto"                   # auto | cuse | fuse
    fuse_max_pages = 32                  # 32 = CUSE's 128 KiB chunks; up to 256
    unrestricted_ioctl = false           # CUSE only
    catalog = "/var/lib/backerd/catalog.db"  # default: <state_dir>/catalog.db; "" = none
    metrics_file = ""                    # Prometheus textfile, e.g.
                                         # "/var/lib/node_exporter/textfile/backerd.prom"
    fuse_owner = "root"                  # FUSE fallback nodes: owner (name or uid),
    fuse_group = "tape"                  # group (name or gid; default tape, else root)
    fuse_mode = "0660"                   # and permission bits (octal)
    watchdog_stall = 300                 # under WatchdogSec=: seconds a busy unit may
                                         # go without progress before pings stop

    [[unit]]
    number = 0                           # nodes backer0 and nbacker0
    name = "backer0"                     # a label for status and logs
    deck = "sim"                         # or emulated-isa / emulated-parport, or a
                                         # real card: isa / parport (hw.settings: port,
                                         # dma, dma_address, dma_size, udmabuf, parport,
                                         # label)
    cassette = "/var/lib/backerd/backer0.cassette"
    mode = "nhs"                         # nls nhs pls phs nle nhe ple phe nlr nhr plr phr;
                                         # if absent: nhs, or phs for a PAL cassette
    length = "E-180"                     # for a cassette created on first start
    realtime = false
    noise = ""                           # playback noise of the simulated VCR, e.g.
    #   "seed=3,errors=2,dropout=0.01,dropout_length=8,slip=0.001"
    #   (every mode survives it; docs/usage.md)
    late_service = ""                    # emulated cards: one late service tick, e.g.
                                         # "transmit:800:700" (800 ms in, 700 ms late)
    encrypt = false                      # seal every tape block (docs/encryption.md);
    key_file = ""                        # needs key_file (from backerd key new) and a
                                         # labelled cassette; sim decks only for now

    [unit.vcr]                           # who presses the VCR's buttons (vcr.settings)
    control = "sim"                      # sim | manual | lirc; a real card: manual
                                         # (the default there) or lirc

``[[job]]`` tables are backup jobs, validated by ``backerd.jobs.config`` (docs/backups.md).

A top-level ``user = "backerd"`` names the user a daemon with real cards switches to
once ports, DMA memory and nodes are open (``hw.host.drop_privileges``).

Errors name the offending key (``unit[1].mode: ...``) and are ``ConfigError``.

A unit without a ``mode`` follows its cassette: ``resolve_modes`` gives it the default
mode of the cassette's standard (``Standard.default_mode``) once the images can be
looked at; a configured mode of the other standard is an error that names the fix.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backerd.errors import ConfigError, UsageError
from backerd.format.params import MODES, Standard, standard_mismatch
from backerd.format.params import mode as mode_params
from backerd.hw.settings import CARD_DECKS, RULES, CardSettings, card_keys_misused, parse_card
from backerd.jobs.config import JobConfig, parse_jobs
from backerd.vcr.image import parse_length
from backerd.vcr.settings import VcrSettings, parse_vcr

DEFAULT_STATE_DIR = Path("/var/lib/backerd")
DEFAULT_RUNTIME_DIR = Path("/run/backerd")
DEFAULT_CONFIG_FILE = Path("/etc/backerd/backerd.toml")
TRANSPORTS = ("auto", "cuse", "fuse")
DECKS = ("sim", "emulated-isa", "emulated-parport", *CARD_DECKS)
DEFAULT_MODE = "nhs"
DEFAULT_LENGTH = "E-180"
_MAX_UNITS = 64


@dataclass(frozen=True)
class UnitConfig:
    """One Backer unit: a deck, a cassette and the two nodes that serve it."""

    number: int
    cassette: Path
    deck: str = "sim"
    mode: str = DEFAULT_MODE
    length: str = DEFAULT_LENGTH
    realtime: bool = False
    name: str = ""  # a label for people (status, logs); the nodes follow the number
    noise: str = ""  # sim deck playback noise (vcr.noise.NoiseModel.parse syntax); off if ""
    vcr: VcrSettings = dataclasses.field(default_factory=VcrSettings)  # [unit.vcr]
    catalog: Path | None = None  # the catalog database the unit records into (None: none)
    # no mode configured: ``mode`` is the default of the cassette's standard
    mode_follows_cassette: bool = False
    late_service: str = ""  # emulated card fault (hw.service.LateService.parse syntax)
    card: CardSettings | None = None  # where a real card is (deck isa or parport)
    encrypt: bool = False  # seal tape blocks with the key in key_file (medium.encrypted)
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", f"backer{self.number}")

    @property
    def rewinding_node(self) -> str:
        """Node name of the rewind-on-close device (st's /dev/st0 role)."""
        return f"backer{self.number}"

    @property
    def non_rewinding_node(self) -> str:
        """Node name of the no-rewind device (st's /dev/nst0 role)."""
        return f"nbacker{self.number}"

    @property
    def standard(self) -> Standard:
        """Video standard a new cassette gets: the one of the unit's mode."""
        return mode_params(self.mode).geometry.standard


@dataclass(frozen=True)
class Config:
    state_dir: Path
    runtime_dir: Path
    fuse_root: Path
    units: tuple[UnitConfig, ...]
    transport: str = "auto"
    fuse_max_pages: int = 32
    unrestricted_ioctl: bool = False
    metrics_file: Path | None = None
    fuse_access: NodeAccess = dataclasses.field(default_factory=lambda: node_access({}))
    source: Path | None = None  # the file it came from, None for built-in defaults
    user: str | None = None  # who the daemon becomes once real hardware is open
    jobs: tuple[JobConfig, ...] = ()  # [[job]] tables: backup jobs (backerd.jobs.config)
    watchdog_stall: float = 300.0  # seconds a busy worker may go without progress

    @property
    def control_socket(self) -> Path:
        return self.runtime_dir / "control.sock"

    def with_overrides(
        self,
        *,
        cassette: Path | None = None,
        fuse_root: Path | None = None,
        realtime: bool = False,
        deck: str | None = None,
    ) -> Config:
        """Apply the command-line options of ``backerd serve``."""
        units = self.units
        if deck is not None:
            units = tuple(dataclasses.replace(u, deck=deck) for u in units)
        if cassette is not None:
            if len(units) != 1:
                raise UsageError(
                    f"--cassette needs a configuration with exactly one unit "
                    f"(this one has {len(units)}); set unit cassettes in the config file"
                )
            units = (dataclasses.replace(units[0], cassette=cassette),)
        if realtime:
            units = tuple(dataclasses.replace(u, realtime=True) for u in units)
        return dataclasses.replace(
            self, units=units, fuse_root=fuse_root if fuse_root is not None else self.fuse_root
        )


_TOP_KEYS = {
    "state_dir", "runtime_dir", "fuse_root", "transport", "fuse_max_pages",
    "unrestricted_ioctl", "unit", "catalog", "metrics_file", "user", "job",
    "watchdog_stall",
}
_UNIT_KEYS = {"number", "name", "deck", "cassette", "mode", "length", "realtime", "noise",
              "vcr", "late_service", "encrypt", "key_file", *RULES}


def _get(table: Mapping[str, Any], key: str, kind: type, where: str, default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    # bool is an int subclass: do not accept true for a number
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(
            f"{where}{key}: expected {kind.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"{where}{key}: unknown key (known: {', '.join(sorted(allowed))})"
            )


def _unit(table: Any, index: int, state_dir: Path, taken: set[int]) -> UnitConfig:
    where = f"unit[{index}]."
    if not isinstance(table, dict):
        raise ConfigError(f"unit[{index}]: expected a table ([[unit]]), got {table!r}")
    _check_keys(table, _UNIT_KEYS, where)
    number = _get(table, "number", int, where, index)
    if not 0 <= number < _MAX_UNITS:
        raise ConfigError(f"{where}number: must be 0..{_MAX_UNITS - 1}, got {number}")
    if number in taken:
        raise ConfigError(f"{where}number: unit {number} is configured twice")
    taken.add(number)
    name = _get(table, "name", str, where, f"backer{number}")
    deck = _get(table, "deck", str, where, "sim")
    if deck not in DECKS:
        raise ConfigError(f"{where}deck: unknown deck {deck!r} (known: {', '.join(DECKS)})")
    mode = _get(table, "mode", str, where, DEFAULT_MODE)
    if mode not in MODES:
        raise ConfigError(f"{where}mode: unknown mode {mode!r} (known: {' '.join(MODES)})")
    length = _get(table, "length", str, where, DEFAULT_LENGTH)
    try:
        parse_length(length)
    except UsageError as exc:
        raise ConfigError(f"{where}length: {exc.message}") from None
    default_cassette = str(state_dir / f"backer{number}.cassette")
    cassette = Path(_get(table, "cassette", str, where, default_cassette))
    if not cassette.is_absolute():
        cassette = state_dir / cassette
    realtime = _get(table, "realtime", bool, where, False)
    noise = _get(table, "noise", str, where, "")
    if noise:
        from backerd.vcr.noise import NoiseModel

        try:
            NoiseModel.parse(noise)
        except UsageError as exc:
            raise ConfigError(f"{where}noise: {exc.message}") from None
    vcr = parse_vcr(table.get("vcr", {}), f"{where}vcr.")
    card = None
    if deck in CARD_DECKS:
        card = parse_card(table, deck, where, state_dir=state_dir,
                          default_label=cassette.stem)
        vcr = _real_vcr(table.get("vcr", {}), vcr, where)
    else:
        card_keys_misused(table, deck, where)
    late_service = _get(table, "late_service", str, where, "")
    if late_service:
        from backerd.hw.service import LateService

        try:
            LateService.parse(late_service)
        except UsageError as exc:
            raise ConfigError(f"{where}late_service: {exc.message}") from None
    encrypt, key_file = _encryption(table, where, deck, state_dir)
    return UnitConfig(number, cassette, deck, mode, length, realtime, name, noise, vcr,
                      mode_follows_cassette="mode" not in table, late_service=late_service,
                      card=card, encrypt=encrypt, key_file=key_file)


def _encryption(table: Mapping[str, Any], where: str, deck: str,
                state_dir: Path) -> tuple[bool, Path | None]:
    """``encrypt`` and ``key_file``: both or neither; the key file may appear later."""
    encrypt = _get(table, "encrypt", bool, where, False)
    key_file = _get(table, "key_file", str, where, "")
    if encrypt and not key_file:
        raise ConfigError(f"{where}encrypt: needs key_file (make one with backerd key new)")
    if key_file and not encrypt:
        raise ConfigError(f"{where}key_file: set encrypt = true to use it")
    if encrypt and deck != "sim":
        raise ConfigError(f"{where}encrypt: supported on deck = \"sim\" only so far "
                          "(the card decks keep no label to bind the blocks to)")
    if not key_file:
        return False, None
    path = Path(key_file)
    return True, path if path.is_absolute() else state_dir / path


def _real_vcr(table: Mapping[str, Any], vcr: VcrSettings, where: str) -> VcrSettings:
    """A real card's VCR is pressed by an operator (the default) or through LIRC."""
    if "control" not in table:
        return dataclasses.replace(vcr, control="manual")
    if vcr.control == "sim":
        raise ConfigError(f'{where}vcr.control: "sim" is the emulator\'s VCR; a real card\'s '
                          'VCR needs control = "manual" (an operator) or "lirc" (an IR '
                          "transmitter)")
    return vcr


def resolve_modes(config: Config, standard_of: Callable[[Path], str | None]) -> Config:
    """Fit every unit's mode to the standard of its cassette (``standard_of(path)``).

    ``standard_of`` gives None for a cassette that does not exist yet: it is created in
    the standard of the unit's mode. A unit without a configured mode takes the default
    mode of its cassette's standard; a configured mode of the other standard is an error.
    """
    units = []
    for index, unit in enumerate(config.units):
        standard = standard_of(unit.cassette)
        problem = None if standard is None else standard_mismatch(unit.mode, standard)
        if standard is not None and unit.mode_follows_cassette:
            units.append(dataclasses.replace(unit, mode=Standard.parse(standard).default_mode))
        elif problem is not None:
            where = f"{config.source}: " if config.source else ""
            raise ConfigError(f"{where}unit[{index}].mode: {problem} (cassette "
                              f"{unit.cassette}), or leave mode out to follow the cassette")
        else:
            units.append(unit)
    return dataclasses.replace(config, units=tuple(units))


@dataclass(frozen=True)
class NodeAccess:
    """Who may use the FUSE fallback's nodes: owner, group and permission bits, as the
    udev rule sets them for CUSE nodes (root, group tape, 0660)."""

    uid: int
    gid: int
    mode: int


_NODE_ACCESS_KEYS = {"fuse_owner", "fuse_group", "fuse_mode"}


def _resolve_id(value: str | int, key: str, lookup: Any, kind: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < 2**32 - 1:
            raise ConfigError(f"{key}: {kind} id must be 0..4294967294, got {value}")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a {kind} name or id, got {value!r}")
    try:
        return int(lookup(value))
    except KeyError:
        raise ConfigError(f"{key}: no {kind} named {value!r} on this system") from None


def node_access(table: Mapping[str, Any]) -> NodeAccess:
    """The fuse_owner/fuse_group/fuse_mode keys, names resolved; defaults: root, group
    tape if it exists (else root), 0660."""
    import grp
    import pwd

    owner = _resolve_id(table.get("fuse_owner", "root"), "fuse_owner",
                        lambda name: pwd.getpwnam(name).pw_uid, "user")
    try:
        default_group: str | int = grp.getgrnam("tape").gr_gid
    except KeyError:
        default_group = 0
    group = _resolve_id(table.get("fuse_group", default_group), "fuse_group",
                        lambda name: grp.getgrnam(name).gr_gid, "group")
    mode = table.get("fuse_mode", "0660")
    if not isinstance(mode, str) or not re.fullmatch(r"0?[0-7]{3}", mode):
        raise ConfigError(f"fuse_mode: expected permission bits in octal like \"0660\", "
                          f"got {mode!r}")
    return NodeAccess(owner, group, int(mode, 8))


def parse_config(
    table: Mapping[str, Any], *, environ: Mapping[str, str], source: Path | None = None
) -> Config:
    """Validate a parsed TOML table and fill in defaults."""
    _check_keys(table, _TOP_KEYS | _NODE_ACCESS_KEYS, "")
    state_default = (
        environ.get("BACKERD_STATE_DIR")
        or environ.get("STATE_DIRECTORY")  # systemd's StateDirectory=
        or str(DEFAULT_STATE_DIR)
    )
    state_dir = Path(_get(table, "state_dir", str, "", state_default))
    runtime_default = (
        environ.get("BACKERD_RUNTIME_DIR")
        or environ.get("RUNTIME_DIRECTORY")  # systemd's RuntimeDirectory=
        or str(DEFAULT_RUNTIME_DIR)
    )
    runtime_dir = Path(_get(table, "runtime_dir", str, "", runtime_default))
    fuse_root = Path(_get(table, "fuse_root", str, "", str(runtime_dir / "dev")))
    transport = _get(table, "transport", str, "", "auto")
    if transport not in TRANSPORTS:
        raise ConfigError(
            f"transport: expected one of {', '.join(TRANSPORTS)}, got {transport!r}"
        )
    max_pages = _get(table, "fuse_max_pages", int, "", 32)
    if not 1 <= max_pages <= 256:
        raise ConfigError(f"fuse_max_pages: must be 1..256, got {max_pages}")
    unrestricted = _get(table, "unrestricted_ioctl", bool, "", False)
    stall = _get(table, "watchdog_stall", int, "", 300)
    if not 30 <= stall <= 86_400:
        # shorter than a rewind of the longest cassette, a healthy deck would be restarted
        raise ConfigError(f"watchdog_stall: must be 30..86400 seconds, got {stall}")
    raw_units = table.get("unit", [{}])
    if not isinstance(raw_units, list) or not raw_units:
        raise ConfigError("unit: expected one or more [[unit]] tables")
    taken: set[int] = set()
    units = tuple(_unit(u, i, state_dir, taken) for i, u in enumerate(raw_units))
    catalog = _get(table, "catalog", str, "", str(state_dir / "catalog.db"))
    if catalog:
        units = tuple(dataclasses.replace(u, catalog=Path(catalog)) for u in units)
    metrics = _get(table, "metrics_file", str, "", "")
    user = _get(table, "user", str, "", "") or None
    if user is not None:
        import pwd

        try:
            pwd.getpwnam(user)
        except KeyError:
            raise ConfigError(f"user: no user named {user!r} on this system") from None
    for path in (state_dir, runtime_dir, fuse_root, *(Path(p) for p in (catalog, metrics) if p)):
        if not path.is_absolute():
            raise ConfigError(f"directories must be absolute paths, got {str(path)!r}")
    jobs = parse_jobs(table.get("job", []), {u.number for u in units})
    return Config(
        state_dir=state_dir,
        runtime_dir=runtime_dir,
        fuse_root=fuse_root,
        units=units,
        transport=transport,
        fuse_max_pages=max_pages,
        unrestricted_ioctl=unrestricted,
        metrics_file=Path(metrics) if metrics else None,
        fuse_access=node_access(table),
        source=source,
        user=user,
        jobs=jobs,
        watchdog_stall=float(stall),
    )


def load_config(path: Path | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (else $BACKERD_CONFIG, else /etc/backerd/backerd.toml if present).

    Without any file the built-in default is one unit on the simulated VCR.
    """
    env = os.environ if environ is None else environ
    if path is None and env.get("BACKERD_CONFIG"):
        path = Path(env["BACKERD_CONFIG"])
    elif path is None and DEFAULT_CONFIG_FILE.exists():
        path = DEFAULT_CONFIG_FILE
    if path is None:
        return parse_config({}, environ=env)
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 text ({exc.reason} at byte "
                          f"{exc.start})") from None
    try:
        return parse_config(table, environ=env, source=path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None

"""The ``[[job]]`` tables of the configuration, validated by a rule table.

Example::

    [[job]]
    name = "home"          # required, unique: letters, digits, "-", "_", "."
    unit = 0               # the unit whose cassette receives the archives
    paths = ["/home"]      # absolute paths to archive
    exclude = ["*.cache"]  # GNU tar --exclude patterns
    full_every = 7         # days between full dumps; or "7 days" / "7 runs"
    verify = true          # read back and compare SHA-256 of every member
    keep = 4               # full cycles kept before a cassette's backups expire
    next_cassette = "/srv/tapes/home-$TAR_VOLUME.img"  # optional: the cassette to load
                           # when one is full (simulated VCR: an image, created if missing)
    change_timeout = 3600  # seconds to wait for an operator's ``backerd deck insert``

Theory of operation: ``KEYS`` is the table of every key: its TOML type, its default
(``REQUIRED`` when there is none) and a check returning a problem or None. ``parse_jobs``
applies the table to each ``[[job]]`` and then the cross-job rules (unique names, known
units); every error names the key (``job[1].keep: ...``) and is a ``ConfigError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from backerd.errors import ConfigError

FULL_EVERY_UNITS = ("days", "runs")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_FULL_EVERY = re.compile(r"\s*(\d+)\s*(days?|runs?)\s*")


@dataclass(frozen=True)
class FullEvery:
    """How often a full dump is due: every ``count`` days, or every ``count`` runs."""

    count: int
    unit: str  # one of FULL_EVERY_UNITS


@dataclass(frozen=True)
class JobConfig:
    name: str
    paths: tuple[str, ...]
    unit: int = 0
    exclude: tuple[str, ...] = ()
    full_every: FullEvery = FullEvery(7, "days")
    verify: bool = True
    keep: int = 4
    next_cassette: str = ""  # "": wait for an operator to insert the next cassette
    change_timeout: int = 3600



def parse_full_every(value: Any) -> FullEvery | None:
    """``7`` (days), ``"7 days"``, ``"1 run"`` -> FullEvery; None when not understood."""
    if isinstance(value, int) and not isinstance(value, bool):
        return FullEvery(value, "days") if value >= 1 else None
    if isinstance(value, str) and (m := _FULL_EVERY.fullmatch(value)):
        count = int(m.group(1))
        unit = m.group(2) if m.group(2).endswith("s") else m.group(2) + "s"
        return FullEvery(count, unit) if count >= 1 else None
    return None


def _name(value: Any) -> str | None:
    if not _NAME.fullmatch(value):
        return "must be 1-64 letters, digits, '.', '-' or '_' (starting with a letter or digit)"
    return None


def _paths(value: Any) -> str | None:
    if not value:
        return "must name at least one path"
    for path in value:
        if not isinstance(path, str) or not path.startswith("/"):
            return f"every path must be an absolute path, got {path!r}"
        if "\n" in path or "\0" in path:
            return f"a path must not hold a newline or NUL, got {path!r}"
    return None


def _patterns(value: Any) -> str | None:
    for pattern in value:
        if not isinstance(pattern, str) or not pattern or "\n" in pattern:
            return f"every pattern must be a non-empty one-line string, got {pattern!r}"
    return None


def _unit(value: Any) -> str | None:
    return None if 0 <= value < 64 else f"must be 0..63, got {value}"


def _full_every(value: Any) -> str | None:
    if parse_full_every(value) is None:
        return f'expected a number of days (7) or "N days" / "N runs" (N >= 1), got {value!r}'
    return None


def _keep(value: Any) -> str | None:
    return None if value >= 1 else f"must keep at least 1 full cycle, got {value}"


def _next_cassette(value: Any) -> str | None:
    if value and "$TAR_VOLUME" not in value:
        return ("must hold $TAR_VOLUME (the volume number, from 2), e.g. "
                f'"/srv/tapes/home-$TAR_VOLUME.img", got {value!r}')
    if "\n" in value or "\0" in value:
        return f"must not hold a newline or NUL, got {value!r}"
    return None


def _change_timeout(value: Any) -> str | None:
    return None if value >= 1 else f"must be at least 1 second, got {value}"


REQUIRED = object()
Check = Callable[[Any], str | None]

# key -> (accepted TOML types, default, check)
KEYS: dict[str, tuple[tuple[type, ...], Any, Check | None]] = {
    "name": ((str,), REQUIRED, _name),
    "unit": ((int,), 0, _unit),
    "paths": ((list,), REQUIRED, _paths),
    "exclude": ((list,), [], _patterns),
    "full_every": ((int, str), 7, _full_every),
    "verify": ((bool,), True, None),
    "keep": ((int,), 4, _keep),
    "next_cassette": ((str,), "", _next_cassette),
    "change_timeout": ((int,), 3600, _change_timeout),
}


def _type_ok(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in kinds:
        return False  # TOML true is not a number
    return isinstance(value, kinds)


def parse_job(table: Any, index: int) -> JobConfig:
    where = f"job[{index}]."
    if not isinstance(table, Mapping):
        raise ConfigError(f"job[{index}]: expected a table ([[job]]), got {table!r}")
    for key in table:
        if key not in KEYS:
            raise ConfigError(f"{where}{key}: unknown key (known: {', '.join(sorted(KEYS))})")
    values: dict[str, Any] = {}
    for key, (kinds, default, check) in KEYS.items():
        if key not in table:
            if default is REQUIRED:
                raise ConfigError(f"{where}{key}: required")
            values[key] = default
            continue
        value = table[key]
        if not _type_ok(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(f"{where}{key}: expected {names}, got {type(value).__name__} "
                              f"{value!r}")
        if check is not None and (problem := check(value)) is not None:
            raise ConfigError(f"{where}{key}: {problem}")
        values[key] = value
    full_every = parse_full_every(values["full_every"])
    assert full_every is not None  # checked by the table
    return JobConfig(name=values["name"], paths=tuple(values["paths"]), unit=values["unit"],
                     exclude=tuple(values["exclude"]), full_every=full_every,
                     verify=values["verify"], keep=values["keep"],
                     next_cassette=values["next_cassette"],
                     change_timeout=values["change_timeout"])


def parse_jobs(raw: Any, units: Collection[int]) -> tuple[JobConfig, ...]:
    """Every ``[[job]]`` table; names unique, units configured."""
    if not isinstance(raw, list):
        raise ConfigError(f"job: expected [[job]] tables, got {raw!r}")
    jobs = tuple(parse_job(table, i) for i, table in enumerate(raw))
    seen: set[str] = set()
    for i, job in enumerate(jobs):
        if job.name in seen:
            raise ConfigError(f"job[{i}].name: job {job.name!r} is defined twice")
        seen.add(job.name)
        if job.unit not in units:
            known = ", ".join(map(str, sorted(units))) or "none"
            raise ConfigError(f"job[{i}].unit: no unit {job.unit} is configured (units: {known})")
    return jobs


def find_job(jobs: Collection[JobConfig], name: str) -> JobConfig:
    for job in jobs:
        if job.name == name:
            return job
    known = ", ".join(sorted(j.name for j in jobs)) or "none; add a [[job]] table"
    raise ConfigError(f"no job named {name!r} in the configuration (jobs: {known})")

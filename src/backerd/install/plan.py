"""What ``backerd install-system`` does, decided from values: the plan, no I/O.

Theory of operation. The files to install ship as package data (``files/``); ``FILES``
maps each to where it belongs on the system and says when it applies (the namespace
hardening drop-in only where the transport is CUSE). ``render`` points every
``ExecStart=`` that runs backerd at the backerd being run. ``plan_install`` and
``plan_uninstall`` compare three hashes per file: what we would install now, what is on
disk, and what the manifest says we installed last time. A file on disk that matches
neither what we installed nor what we would install was edited by an administrator (or
was never ours) and is left alone, with a warning; that is the rule that keeps an
install or an uninstall from ever destroying someone's edit. The edge
(``install.apply``) reads the disk, writes the files and the manifest, and runs
``systemd-analyze verify``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import PurePosixPath

MANIFEST = PurePosixPath("/var/lib/backerd/installed.json")
# the path the shipped files name; install points it at the backerd being run
SHIPPED_BACKERD = "/usr/local/bin/backerd"


@dataclass(frozen=True)
class ShippedFile:
    source: str  # relative to the package's files/ directory
    target: PurePosixPath  # absolute path on the installed system
    only_for: str | None = None  # a transport ("cuse") the file applies to; None: always


UNIT_DIR = PurePosixPath("/etc/systemd/system")

# rules as data: every shipped file, where it goes, when
FILES: tuple[ShippedFile, ...] = (
    ShippedFile("systemd/backerd.service", UNIT_DIR / "backerd.service"),
    ShippedFile("systemd/backerd.service.d/cuse-hardening.conf",
                UNIT_DIR / "backerd.service.d" / "cuse-hardening.conf", only_for="cuse"),
    ShippedFile("systemd/backerd-backup@.service", UNIT_DIR / "backerd-backup@.service"),
    ShippedFile("systemd/backerd-backup@.timer", UNIT_DIR / "backerd-backup@.timer"),
    ShippedFile("systemd/backerd-backup-failed@.service",
                UNIT_DIR / "backerd-backup-failed@.service"),
    ShippedFile("udev/60-backerd.rules", PurePosixPath("/etc/udev/rules.d/60-backerd.rules")),
    ShippedFile("modules-load.d/backerd.conf",
                PurePosixPath("/etc/modules-load.d/backerd.conf")),
)

# where a unit's ExecStart could no longer run the binary with ProtectHome=
HIDDEN_BY_PROTECT_HOME = (PurePosixPath("/home"), PurePosixPath("/root"),
                          PurePosixPath("/run/user"))

_EXEC_START = re.compile(r"^(ExecStart=[-@:+!]*)(\S*/backerd)(?=\s|$)", re.MULTILINE)


class Step(Enum):
    """What happens to one file, and whether it is the manifest's afterwards."""

    INSTALL = "install"  # missing: written
    UPDATE = "update"  # ours and unedited, but the shipped version differs: rewritten
    UNCHANGED = "unchanged"  # already what we would write
    KEEP_EDITED = "keep-edited"  # differs from what we installed: the administrator's
    KEEP_FOREIGN = "keep-foreign"  # there before us with other content: not ours
    REMOVE = "remove"  # ours and unedited: deleted (uninstall, or no longer shipped)
    ALREADY_GONE = "already-gone"  # ours, but someone removed it


WRITES = (Step.INSTALL, Step.UPDATE)
WARNS = (Step.KEEP_EDITED, Step.KEEP_FOREIGN)


@dataclass(frozen=True)
class Action:
    step: Step
    target: PurePosixPath
    content: bytes | None = None  # what to write (INSTALL, UPDATE)

    def describe(self) -> str:
        why = {
            Step.KEEP_EDITED: " (edited since it was installed: left alone)",
            Step.KEEP_FOREIGN: " (not installed by backerd: left alone)",
            Step.ALREADY_GONE: " (already removed)",
        }.get(self.step, "")
        return f"{self.step.value:<12} {self.target}{why}"


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    manifest: dict[str, str]  # target -> SHA-256 of what backerd installed there

    @property
    def warnings(self) -> list[str]:
        return [a.describe().split(None, 1)[1] for a in self.actions if a.step in WARNS]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def render(text: str, backerd: str) -> str:
    """``text`` with every ExecStart that runs backerd pointed at ``backerd``."""
    return _EXEC_START.sub(lambda m: m.group(1) + backerd, text)


def exec_path_problem(backerd: str) -> str | None:
    """Why ``backerd`` cannot stand in an ExecStart line, or None."""
    if not backerd.startswith("/"):
        return f"backerd path {backerd!r} is not absolute"
    if any(c.isspace() for c in backerd) or "%" in backerd or "$" in backerd:
        return f"backerd path {backerd!r} holds a space, % or $ (not usable in a unit file)"
    return None


def hidden_by_protect_home(*paths: str) -> str | None:
    """The first of ``paths`` under /home, /root or /run/user, where ProtectHome= (and a
    person's home directory being unmounted) would make it unreachable; else None."""
    for path in paths:
        p = PurePosixPath(path)
        if any(p == top or top in p.parents for top in HIDDEN_BY_PROTECT_HOME):
            return path
    return None


def wanted_files(transport: str, sources: Mapping[str, str],
                 backerd: str) -> dict[PurePosixPath, bytes]:
    """Target -> content of every file that applies to ``transport``."""
    return {f.target: render(sources[f.source], backerd).encode()
            for f in FILES if f.only_for in (None, transport)}


def plan_install(wanted: Mapping[PurePosixPath, bytes],
                 on_disk: Mapping[PurePosixPath, str | None],
                 manifest: Mapping[str, str]) -> Plan:
    """Install ``wanted``; ``on_disk`` gives each relevant target's SHA-256 (None:
    missing) and must cover ``wanted`` and the manifest's targets."""
    actions: list[Action] = []
    new_manifest: dict[str, str] = {}
    for target, content in wanted.items():
        digest, present, ours = sha256(content), on_disk.get(target), manifest.get(str(target))
        if present is None:
            actions.append(Action(Step.INSTALL, target, content))
            new_manifest[str(target)] = digest
        elif present == digest:
            actions.append(Action(Step.UNCHANGED, target))
            new_manifest[str(target)] = digest
        elif present == ours:
            actions.append(Action(Step.UPDATE, target, content))
            new_manifest[str(target)] = digest
        else:
            actions.append(Action(Step.KEEP_EDITED if ours else Step.KEEP_FOREIGN, target))
            if ours:  # still what we installed once; an uninstall leaves it too
                new_manifest[str(target)] = ours
    wanted_names = {str(t) for t in wanted}
    for name, ours in manifest.items():
        if name not in wanted_names:  # shipped before, not now (e.g. the transport changed)
            actions.append(_removal(PurePosixPath(name), on_disk.get(PurePosixPath(name)), ours))
            if actions[-1].step is Step.KEEP_EDITED:
                new_manifest[name] = ours
    return Plan(tuple(actions), new_manifest)


def plan_uninstall(on_disk: Mapping[PurePosixPath, str | None],
                   manifest: Mapping[str, str]) -> Plan:
    """Remove exactly what the manifest says we installed and nobody edited since."""
    actions = tuple(_removal(PurePosixPath(name), on_disk.get(PurePosixPath(name)), ours)
                    for name, ours in manifest.items())
    return Plan(actions, {})


def _removal(target: PurePosixPath, present: str | None, ours: str) -> Action:
    if present is None:
        return Action(Step.ALREADY_GONE, target)
    if present == ours:
        return Action(Step.REMOVE, target)
    return Action(Step.KEEP_EDITED, target)


def parse_manifest(text: str) -> dict[str, str] | None:
    """The manifest's target -> hash table; None when ``text`` is not one (never raises)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return None
    if not all(isinstance(k, str) and k.startswith("/") and isinstance(v, str)
               and re.fullmatch(r"[0-9a-f]{64}", v) for k, v in files.items()):
        return None
    return dict(files)


def manifest_text(manifest: Mapping[str, str], backerd: str) -> str:
    return json.dumps({"installed_by": "backerd install-system", "backerd": backerd,
                       "files": dict(sorted(manifest.items()))}, indent=2) + "\n"

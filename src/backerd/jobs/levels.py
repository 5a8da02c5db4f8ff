"""Which level the next run of a job writes, and the snapshot files it uses (pure).

Theory of operation: GNU tar ``--listed-incremental`` keeps the state of the tree it
archived in a snapshot file and rewrites that file in place on every run. A job keeps
one snapshot file per level: ``level-0.snar`` is the state after the last full dump,
``level-k.snar`` the state after the k-th incremental that followed it. A run at level k
starts from a copy of level k-1's file (level 0 starts from none, so everything is
dumped) and, only when the run succeeds, its copy replaces level k's file; files of
higher levels then describe a chain that was cut and are removed. A failed run
therefore leaves every snapshot as it was, and the next run repeats the same level.

The chain is the good full dump and the good incrementals after it (``plan.chain``);
``next_level`` says full when there is no chain, when ``full_every`` has passed (whole
calendar days since the full, in the time zone of ``now``, or runs in the chain), or
when the snapshot the next incremental needs is missing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from backerd.jobs.config import FullEvery
from backerd.jobs.records import BackupRecord


def snapshot_file(directory: Path, level: int) -> Path:
    return directory / f"level-{level}.snar"


def next_level(chain: Sequence[BackupRecord], full_every: FullEvery, now: datetime,
               snapshots: Collection[int]) -> int:
    """The level of the next run: 0 (full) or ``len(chain)`` (the next incremental).

    ``snapshots``: the levels whose snapshot files exist.
    """
    if not chain:
        return 0
    if full_every.unit == "runs":
        if len(chain) >= full_every.count:
            return 0
    else:
        zone = now.tzinfo
        days = (now.date() - chain[0].started.astimezone(zone).date()).days
        if days >= full_every.count:
            return 0
    level = len(chain)
    return level if level - 1 in snapshots else 0


@dataclass(frozen=True)
class SnapshotPlan:
    """The files of one run: copy ``base`` to ``work`` (or start ``work`` empty), give
    ``work`` to tar, then on success rename ``work`` to ``keep_as`` and delete ``stale``."""

    base: Path | None
    work: Path
    keep_as: Path
    stale: tuple[Path, ...]


def snapshot_plan(directory: Path, level: int, snapshots: Collection[int]) -> SnapshotPlan:
    """The snapshot files of a run at ``level``; ``snapshots``: the levels that exist."""
    return SnapshotPlan(
        base=snapshot_file(directory, level - 1) if level > 0 else None,
        work=directory / f"level-{level}.snar.new",
        keep_as=snapshot_file(directory, level),
        stale=tuple(snapshot_file(directory, k) for k in sorted(snapshots) if k > level))


def dry_run_base(directory: Path, chain: Sequence[BackupRecord]) -> Path | None:
    """The snapshot that describes the tree as the job's last good run saw it."""
    return snapshot_file(directory, chain[-1].level) if chain else None


def snapshot_levels(names: Collection[str]) -> set[int]:
    """The levels present among file names in a job's state directory."""
    levels = set()
    for name in names:
        if name.startswith("level-") and name.endswith(".snar"):
            number = name[len("level-"):-len(".snar")]
            if number.isdigit():
                levels.add(int(number))
    return levels

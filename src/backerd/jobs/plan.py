"""Which tape files a restore needs, in which order, on which cassettes (pure).

Theory of operation: a job's restorable state as of a time T is its last good full dump
started at or before T, then the good incrementals after it, in order. An incremental
at level k was made from level k-1's snapshot, so it follows the chain's first k
entries: a later incremental at a level already in the chain (a run repeated after
the snapshot files were restored from an older copy) replaces that level and
everything after it. An incremental whose level is beyond the chain's end has lost its
predecessor; the chain stops before it and the plan says so. Failed, lost and
verify-failed backups never enter the chain (``BackupRecord.good``).

A plan is the chain's pieces in order. ``first_missing`` says which cassette to insert
when the one a step needs is not the one loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from backerd.jobs.records import BackupRecord, Piece, order_key


@dataclass(frozen=True)
class Chain:
    backups: tuple[BackupRecord, ...]
    notes: tuple[str, ...] = ()


def chain(records: Iterable[BackupRecord], job: str, as_of: datetime | None = None) -> Chain:
    """The full dump and incrementals that restore ``job`` as of ``as_of`` (None: now)."""
    good = sorted((r for r in records if r.job == job and r.good
                   and (as_of is None or r.started <= as_of)), key=order_key)
    fulls = [i for i, r in enumerate(good) if r.level == 0]
    if not fulls:
        return Chain(())
    links = [good[fulls[-1]]]
    notes: list[str] = []
    for record in good[fulls[-1] + 1:]:
        if record.level > len(links):
            notes.append(f"backup {record.id} (level {record.level}) has no level "
                         f"{len(links)} before it; the restore stops before it")
            break
        links = links[:record.level] + [record]
    return Chain(tuple(links), tuple(notes))


@dataclass(frozen=True)
class Step:
    """Restore one tape file: ``backup``'s piece ``piece``."""

    backup: BackupRecord
    piece: Piece


def steps(links: Sequence[BackupRecord]) -> list[Step]:
    return [Step(b, p) for b in links for p in sorted(b.pieces, key=lambda p: p.seq)]


def cassettes_needed(plan: Sequence[Step]) -> list[str]:
    """The cassettes of a plan in the order they are first needed."""
    out: list[str] = []
    for step in plan:
        if step.piece.cassette_uuid not in out:
            out.append(step.piece.cassette_uuid)
    return out


def first_missing(plan: Sequence[Step], loaded: str | None) -> Step | None:
    """The first step whose cassette is not the loaded one (None: all can run now)."""
    for step in plan:
        if step.piece.cassette_uuid != loaded:
            return step
    return None


def by_backup(plan: Sequence[Step], start: int = 0) -> list[tuple[int, list[Step]]]:
    """The plan from step ``start`` as (first step number, that backup's steps): one
    backup's pieces are one archive, extracted by one tar."""
    groups: list[tuple[int, list[Step]]] = []
    for number, step in enumerate(plan[start:], start=start):
        if groups and groups[-1][1][0].backup.id == step.backup.id:
            groups[-1][1].append(step)
        else:
            groups.append((number, [step]))
    return groups

"""Which backups have expired and which cassettes may be reused (a pure function).

Theory of operation: per job, the backups on tape are cut into full cycles in the order
they ran: each good full dump starts a cycle, and everything that ran after it until
the next good full (incrementals, failed runs, fulls that failed verify) belongs to
it. What ran before the job's first good full belongs to no cycle. The rules, as data
(``RULES``), each say why a backup is kept:

* it is in one of the job's ``keep`` newest cycles;
* it is in the newest cycle whose full dump was verified (never expired, whatever
  ``keep`` says, so a run of unverified or failed dumps cannot push out the last
  known-good one);
* its job has no good full at all (nothing could replace it);
* its job is no longer configured (nobody said how long to keep it).

Everything else has expired. A failed or verify-failed backup never starts a cycle, so
it never counts toward ``keep``. A cassette is reusable only when every backup on it
has expired and it holds no recording that is not a job's backup. Lost backups (their
tape file overwritten) hold no cassette.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from backerd.jobs.records import BackupRecord, order_key


@dataclass(frozen=True)
class Placed:
    """A backup with its place in its job's cycles."""

    backup: BackupRecord
    cycle: int | None  # index among the job's cycles (0: oldest); None: before any
    cycles: int  # how many cycles the job has
    verified_cycle: int | None  # the newest cycle whose full was verified
    keep: int | None  # the job's keep; None: job not configured


def _in_kept_cycles(p: Placed) -> bool:
    return p.keep is not None and p.cycle is not None and p.cycle >= p.cycles - p.keep


def _newest_verified(p: Placed) -> bool:
    return p.cycle is not None and p.cycle == p.verified_cycle


def _no_good_full(p: Placed) -> bool:
    return p.cycles == 0


def _unconfigured(p: Placed) -> bool:
    return p.keep is None


RULES: tuple[tuple[str, Callable[[Placed], bool]], ...] = (
    ("in the newest full cycles kept", _in_kept_cycles),
    ("in the newest verified full cycle", _newest_verified),
    ("its job has no good full dump yet", _no_good_full),
    ("its job is not configured", _unconfigured),
)


@dataclass(frozen=True)
class Retention:
    kept: dict[int, str]  # backup id -> why (the first rule that keeps it)
    expired: frozenset[int]
    reusable: tuple[str, ...]  # cassette UUIDs, in the order their last backup ran
    holding: dict[str, tuple[int, ...]]  # cassette -> backups on it still kept


def place(records: Iterable[BackupRecord], keep: Mapping[str, int]) -> list[Placed]:
    by_job: dict[str, list[BackupRecord]] = {}
    for r in sorted(records, key=order_key):
        if r.on_tape:
            by_job.setdefault(r.job, []).append(r)
    placed = []
    for job, runs in by_job.items():
        cycle, verified, starts = None, None, 0
        marks: list[int | None] = []
        for r in runs:
            if r.level == 0 and r.good:
                cycle = starts
                starts += 1
                if r.verified:
                    verified = cycle
            marks.append(cycle)
        placed += [Placed(r, c, starts, verified, keep.get(job)) for r, c in zip(runs, marks,
                                                                                 strict=True)]
    return placed


def retention(records: Iterable[BackupRecord], keep: Mapping[str, int],
              foreign: Iterable[str] = ()) -> Retention:
    """Apply the rules. ``keep``: job -> full cycles kept; ``foreign``: cassettes that
    hold recordings which are no job's backup (never reusable)."""
    kept: dict[int, str] = {}
    expired: set[int] = set()
    placed = place(records, keep)
    for p in placed:
        why = next((name for name, rule in RULES if rule(p)), None)
        if why is None:
            expired.add(p.backup.id)
        else:
            kept[p.backup.id] = why
    on: dict[str, list[BackupRecord]] = {}
    for p in placed:
        if not p.backup.lost:
            for uuid in p.backup.cassettes:
                on.setdefault(uuid, []).append(p.backup)
    blocked = set(foreign)
    holding = {uuid: tuple(b.id for b in bs if b.id in kept) for uuid, bs in on.items()}
    last_run = {uuid: max(order_key(b) for b in bs) for uuid, bs in on.items()}
    reusable = tuple(sorted((u for u, ids in holding.items() if not ids and u not in blocked),
                            key=lambda u: last_run[u]))
    return Retention(kept, frozenset(expired), reusable,
                     {u: ids for u, ids in holding.items() if ids})

"""Which level runs next, the snapshot files per level, and the restore chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from backerd.jobs.config import FullEvery
from backerd.jobs.levels import (
    dry_run_base,
    next_level,
    snapshot_file,
    snapshot_levels,
    snapshot_plan,
)
from backerd.jobs.plan import by_backup, cassettes_needed, chain, first_missing, steps
from backerd.jobs.records import BackupRecord, Piece

T0 = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
D = Path("/state/jobs/home")


def rec(i: int, level: int, *, hours: float | None = None, verified: bool | None = True,
        result: str = "written", cassette: str = "A", present: bool = True,
        job: str = "home") -> BackupRecord:
    return BackupRecord(i, job, level, T0 + timedelta(hours=i if hours is None else hours),
                        result, verified, (Piece(cassette, i, 10, present=present),))


def test_no_chain_is_a_full() -> None:
    assert next_level([], FullEvery(7, "days"), T0, {0, 1}) == 0


def test_runs() -> None:
    every3 = FullEvery(3, "runs")
    links = [rec(1, 0), rec(2, 1)]
    assert next_level(links[:1], every3, T0, {0}) == 1
    assert next_level(links, every3, T0, {0, 1}) == 2
    assert next_level([*links, rec(3, 2)], every3, T0, {0, 1, 2}) == 0
    assert next_level(links[:1], FullEvery(1, "runs"), T0, {0}) == 0


def test_days_are_calendar_days_in_the_zone_of_now() -> None:
    full = [rec(1, 0, hours=0)]  # 23:30 UTC on March 1
    week = FullEvery(7, "days")
    # a nightly run a few minutes earlier seven days later is still due
    assert next_level(full, week, T0 + timedelta(days=7, minutes=-5), {0}) == 0
    assert next_level(full, week, T0 + timedelta(days=6, minutes=29), {0}) == 1
    # in UTC+2 the full ran on March 2 local time: a week later is March 9 local
    plus2 = timezone(timedelta(hours=2))
    now = datetime(2026, 3, 8, 23, 0, tzinfo=plus2)
    assert next_level(full, week, now, {0}) == 1
    assert next_level(full, week, now + timedelta(hours=2), {0}) == 0


def test_a_missing_snapshot_forces_a_full() -> None:
    links = [rec(1, 0), rec(2, 1)]
    assert next_level(links, FullEvery(9, "runs"), T0, {0}) == 0
    assert next_level(links, FullEvery(9, "runs"), T0, {0, 1}) == 2


def test_snapshot_plan() -> None:
    full = snapshot_plan(D, 0, {0, 1, 2})
    assert full.base is None and full.keep_as == D / "level-0.snar"
    assert full.stale == (D / "level-1.snar", D / "level-2.snar")
    incr = snapshot_plan(D, 2, {0, 1, 2, 3})
    assert incr.base == D / "level-1.snar" and incr.keep_as == D / "level-2.snar"
    assert incr.work not in (incr.base, incr.keep_as) and incr.stale == (D / "level-3.snar",)
    assert dry_run_base(D, [rec(1, 0), rec(2, 1)]) == snapshot_file(D, 1)
    assert dry_run_base(D, []) is None


def test_snapshot_levels() -> None:
    names = ["level-0.snar", "level-12.snar", "level-1.snar.new", "level-x.snar", "lock",
             "dry-run.snar"]
    assert snapshot_levels(names) == {0, 12}


def test_chain_last_good_full_then_its_incrementals() -> None:
    records = [rec(1, 0), rec(2, 1), rec(3, 0), rec(4, 1), rec(5, 2, verified=False),
               rec(6, 2), rec(7, 3, result="failed"), rec(8, 3, verified=None),
               rec(9, 0, job="etc")]
    assert [r.id for r in chain(records, "home").backups] == [3, 4, 6, 8]
    as_of = T0 + timedelta(hours=2, minutes=30)
    assert [r.id for r in chain(records, "home", as_of).backups] == [1, 2]
    assert chain(records, "home", T0).backups == ()
    assert chain(records, "nobody").backups == ()


def test_chain_a_repeated_level_replaces_the_tail_and_a_gap_stops_it() -> None:
    records = [rec(1, 0), rec(2, 1), rec(3, 2), rec(4, 1), rec(5, 2)]
    assert [r.id for r in chain(records, "home").backups] == [1, 4, 5]
    gap = chain([rec(1, 0), rec(2, 2), rec(3, 1)], "home")
    assert [r.id for r in gap.backups] == [1] and "no level 1" in gap.notes[0]


def test_lost_and_failed_fulls_are_not_restored_from() -> None:
    records = [rec(1, 0), rec(2, 0, present=False), rec(3, 0, result="failed")]
    assert [r.id for r in chain(records, "home").backups] == [1]


@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=20))
def test_chain_levels_count_up_from_a_full(rows: list[tuple[int, bool]]) -> None:
    records = [rec(i, level, verified=ok) for i, (level, ok) in enumerate(rows, start=1)]
    links = chain(records, "home").backups
    assert [r.level for r in links] == list(range(len(links)))
    assert all(r.good for r in links)
    assert [r.id for r in links] == sorted(r.id for r in links)


def test_steps_cassettes_and_what_to_insert() -> None:
    spanning = BackupRecord(3, "home", 1, T0, "written", True,
                            (Piece("C", 0, 5, seq=1), Piece("B", 7, 5, seq=0)))
    plan = steps([rec(1, 0, cassette="A"), rec(2, 1, cassette="B"), spanning])
    assert [(s.piece.cassette_uuid, s.piece.file_number) for s in plan] == [
        ("A", 1), ("B", 2), ("B", 7), ("C", 0)]
    assert cassettes_needed(plan) == ["A", "B", "C"]
    assert first_missing(plan, "A") is plan[1]
    assert first_missing(plan[:1], "A") is None
    assert first_missing(plan, None) is plan[0]

    groups = by_backup(plan)
    assert [(n, [s.piece.file_number for s in g]) for n, g in groups] == [
        (0, [1]), (1, [2]), (2, [7, 0])]
    assert [n for n, _ in by_backup(plan, 2)] == [2]
    assert by_backup(plan, 4) == []

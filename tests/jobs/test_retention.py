"""Retention rules against an independent per-backup model (hypothesis), and examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.jobs.records import BackupRecord, Piece
from backerd.jobs.retention import retention

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CASSETTES = ("A", "B", "C")


def rec(i: int, level: int, *, job: str = "home", result: str = "written",
        verified: bool | None = True, cassette: str = "A", present: bool = True,
        day: int | None = None) -> BackupRecord:
    pieces = () if result == "skipped" else (Piece(cassette, i, 100, present=present),)
    return BackupRecord(i, job, level, T0 + timedelta(days=i if day is None else day),
                        result, verified if result != "skipped" else None, pieces)


def model_kept(records: list[BackupRecord], keep: dict[str, int]) -> set[int]:
    """Per backup, by counting: which good full it follows and how many come after."""
    kept = set()
    for b in records:
        if not b.on_tape:
            continue
        key = (b.started, b.id)
        same = [r for r in records if r.job == b.job and r.on_tape]
        fulls = [r for r in same if r.level == 0 and r.good]
        before = [f for f in fulls if (f.started, f.id) <= key]
        if b.job not in keep or not fulls:
            kept.add(b.id)
            continue
        if not before:
            continue  # before the first good full: replaced by it
        mine = max(before, key=lambda f: (f.started, f.id))
        newer = [f for f in fulls if (f.started, f.id) > (mine.started, mine.id)]
        verified = [f for f in fulls if f.verified]
        newest_verified = max(verified, key=lambda f: (f.started, f.id)) if verified else None
        if len(newer) < keep[b.job] or mine is newest_verified:
            kept.add(b.id)
    return kept


backups = st.lists(
    st.tuples(st.sampled_from(["home", "etc", "gone"]), st.integers(0, 3),
              st.sampled_from(["written", "written", "written", "failed", "skipped"]),
              st.sampled_from([True, True, None, False]), st.sampled_from(CASSETTES),
              st.booleans(), st.integers(0, 40)),
    max_size=30)


def build(rows: list[tuple]) -> list[BackupRecord]:
    return [rec(i, lvl, job=job, result=res, verified=ver, cassette=cas, present=pres,
                day=day)
            for i, (job, lvl, res, ver, cas, pres, day) in enumerate(rows, start=1)]


@settings(max_examples=400)
@given(backups, st.integers(1, 4), st.integers(1, 4))
def test_retention_matches_the_counting_model(rows: list[tuple], keep_home: int,
                                              keep_etc: int) -> None:
    records = build(rows)
    keep = {"home": keep_home, "etc": keep_etc}  # "gone" is no longer configured
    result = retention(records, keep)
    expected = model_kept(records, keep)
    assert set(result.kept) == expected
    assert result.expired == {r.id for r in records if r.on_tape} - expected
    # a cassette is reusable exactly when every (not lost) backup on it expired
    holders: dict[str, set[int]] = {}
    for r in records:
        if r.on_tape and not r.lost:
            for c in r.cassettes:
                holders.setdefault(c, set()).add(r.id)
    assert set(result.reusable) == {c for c, ids in holders.items() if not ids & expected}


@given(backups, st.integers(1, 4))
def test_the_newest_verified_full_and_the_newest_good_full_are_never_expired(
        rows: list[tuple], keep: int) -> None:
    records = build(rows)
    result = retention(records, {"home": keep, "etc": keep})
    for job in ("home", "etc"):
        fulls = sorted((r for r in records if r.job == job and r.level == 0 and r.good),
                       key=lambda r: (r.started, r.id))
        if fulls:
            assert fulls[-1].id in result.kept
        verified = [f for f in fulls if f.verified]
        if verified:
            assert verified[-1].id in result.kept


@given(backups, st.integers(1, 4), st.sampled_from(CASSETTES))
def test_foreign_recordings_keep_a_cassette(rows: list[tuple], keep: int, foreign: str
                                            ) -> None:
    result = retention(build(rows), {"home": keep, "etc": keep}, foreign=[foreign])
    assert foreign not in result.reusable


def test_failed_verify_does_not_count_toward_keep() -> None:
    records = [rec(1, 0), rec(2, 1), rec(3, 0, verified=False), rec(4, 0, result="failed")]
    result = retention(records, {"home": 1})
    assert result.expired == frozenset()
    assert result.kept[1] == "in the newest full cycles kept"


def test_keep_two_cycles_expires_the_third_and_frees_its_cassette() -> None:
    records = [rec(1, 0, cassette="A"), rec(2, 1, cassette="A"), rec(3, 0, cassette="B"),
               rec(4, 1, cassette="B"), rec(5, 0, cassette="C")]
    result = retention(records, {"home": 2})
    assert result.expired == {1, 2}
    assert result.reusable == ("A",)
    assert result.holding == {"B": (3, 4), "C": (5,)}


def test_unverified_newer_cycles_keep_the_verified_one() -> None:
    records = [rec(1, 0, verified=True), rec(2, 0, verified=None), rec(3, 0, verified=None)]
    result = retention(records, {"home": 1})
    assert result.expired == {2}
    assert result.kept == {1: "in the newest verified full cycle",
                           3: "in the newest full cycles kept"}


def test_a_job_without_a_good_full_keeps_everything() -> None:
    records = [rec(1, 0, verified=False), rec(2, 1)]
    assert retention(records, {"home": 1}).expired == frozenset()


def test_lost_backups_hold_no_cassette() -> None:
    records = [rec(1, 0, cassette="A", present=False), rec(2, 0, cassette="B")]
    result = retention(records, {"home": 1})
    assert result.expired == {1} and result.reusable == ()
    assert "A" not in result.holding

"""Archives larger than one cassette: next-volume rules, cassettes needed, volume sets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backerd.catalog.schema import MIGRATIONS, migrate
from backerd.catalog.store import CassetteRow, Catalog
from backerd.catalog.volumes import (
    VolumeFacts,
    VolumeLog,
    cassettes_needed,
    holds_unexpired,
    volume_refusal,
)
from backerd.errors import UsageError

# -- which cassette may be the next volume -------------------------------------------------

BLANK = VolumeFacts(loaded=True, identity="new", recordings=0)
HELD = VolumeFacts(loaded=True, identity="old-backups", label="MONDAY", recordings=2,
                   holds_unexpired=True)
EXPIRED = VolumeFacts(loaded=True, identity="expired", recordings=2, holds_unexpired=False)
PROTECTED = VolumeFacts(loaded=True, identity="tab", recordings=0, write_protected=True)
EMPTY = VolumeFacts(loaded=False)

# (previous, current, writing, force) -> a word the refusal must contain, or None
REFUSALS = [
    ("prev", BLANK, True, False, None),
    ("prev", EXPIRED, True, False, None),
    ("prev", HELD, True, False, "retention"),
    ("prev", HELD, True, True, None),
    ("prev", HELD, False, False, None),  # reading an archive back
    ("new", BLANK, True, False, "just ejected"),
    ("new", BLANK, False, False, "just ejected"),
    ("new", BLANK, True, True, "just ejected"),  # --force never takes the same cassette
    ("prev", EMPTY, True, False, "no cassette"),
    ("prev", EMPTY, False, True, "no cassette"),
    ("prev", PROTECTED, True, True, "write-protected"),
    ("prev", PROTECTED, False, False, None),
    (None, BLANK, True, False, None),  # nothing was in the deck before
]


@pytest.mark.parametrize(("previous", "current", "writing", "force", "word"), REFUSALS)
def test_volume_refusal(previous: str | None, current: VolumeFacts, writing: bool,
                        force: bool, word: str | None) -> None:
    refusal = volume_refusal(previous, current, writing=writing, force=force)
    if word is None:
        assert refusal is None
    else:
        assert refusal is not None and word in refusal and "\n" not in refusal


def test_facts_describe_blank_labelled_and_round_trip() -> None:
    assert "blank" in BLANK.describe() and "unlabelled" in BLANK.describe()
    assert "'MONDAY' with 2 recordings" in HELD.describe()
    assert EMPTY.describe() == "no cassette" and not EMPTY.blank
    data = {"loaded": True, "identity": "x", "label": None, "recordings": 1,
            "holds_unexpired": True, "write_protected": False, "blank": False}
    assert VolumeFacts.from_json(data) == VolumeFacts(True, "x", None, 1, True, False)


@pytest.mark.parametrize(("state", "statuses", "on_tape", "held"), [
    (None, None, 0, False),  # unknown to any catalog, blank
    (None, None, 3, True),  # unknown, recordings on tape: nothing says they expired
    ("active", [], 3, False),  # the catalog knows it and has no recordings of it
    ("active", ["ok"], 1, True),
    ("full", ["ok", "unindexed"], 2, True),
    ("active", ["expired", "expired"], 2, False),
    ("active", ["expired", "ok"], 2, True),
    ("expired", ["ok"], 1, False),
    ("retired", ["ok"], 1, False),
])
def test_holds_unexpired(state: str | None, statuses: list[str] | None, on_tape: int,
                         held: bool) -> None:
    assert holds_unexpired(state, statuses, on_tape) is held


@pytest.mark.parametrize(("state", "others", "on_tape", "jobs_kept", "held"), [
    ("active", [], 2, True, True),  # the jobs rule keeps a backup on it
    ("active", [], 2, False, False),  # every job backup on it has expired
    ("full", [], 1, False, False),
    ("active", ["ok"], 3, False, True),  # expired job backups, but an archive by hand
    ("active", ["expired"], 3, False, False),
    ("expired", [], 1, True, False),  # the operator said so: the catalog state wins
    ("retired", ["ok"], 2, True, False),
    (None, None, 2, False, True),  # no catalog: the tape alone
])
def test_holds_unexpired_with_the_jobs_rule(state: str | None, others: list[str] | None,
                                            on_tape: int, jobs_kept: bool,
                                            held: bool) -> None:
    assert holds_unexpired(state, others, on_tape, jobs_kept) is held


# -- how many cassettes -------------------------------------------------------------------


def fill(need: int, first: int, blank: int) -> int | None:
    """Oracle: put the bytes on cassettes one at a time until none are left."""
    left, used = need, 1
    left -= min(left, max(first, 0))
    if left and first <= 0:
        used = 0
    while left > 0:
        if blank <= 0:
            return None
        left -= min(left, blank)
        used += 1
    return used


@st.composite
def requests(draw: st.DrawFn) -> tuple[int, int, int]:
    """(need, first, blank), with at most a few thousand blank cassettes to fill one by
    one: the oracle's loop stays short whatever the machine's load."""
    first = draw(st.integers(-100, 10**6))
    blank = draw(st.integers(0, 10**6))
    most = max(first, 0) + blank * draw(st.integers(0, 3000)) + draw(st.integers(0, 10**4))
    return draw(st.integers(0, min(most, 10**7))), first, blank


@given(requests())
def test_cassettes_needed_matches_filling_them(request: tuple[int, int, int]) -> None:
    need, first, blank = request
    assert cassettes_needed(need, first, blank) == fill(need, first, blank)


def test_cassettes_needed_examples() -> None:
    assert cassettes_needed(10, 10, 5) == 1
    assert cassettes_needed(11, 10, 5) == 2
    assert cassettes_needed(21, 10, 5) == 4
    assert cassettes_needed(10, 0, 5) == 2  # the current one holds nothing: two blank ones
    assert cassettes_needed(11, 10, 0) is None


# -- volume sets in the catalog ------------------------------------------------------------


@pytest.fixture
def catalog(tmp_path: Path):
    with Catalog(tmp_path / "catalog.db") as cat:
        for uuid, label in (("u-1", "MON-1"), ("u-2", "MON-2"), ("u-3", "MON-3")):
            cat.put_cassette(CassetteRow(uuid=uuid, label=label))
        yield cat


def test_tar_volumes_chain_into_one_set(catalog: Catalog) -> None:
    log = VolumeLog(catalog)
    set_a, k = log.continue_tar(0, "/dev/nbacker0", "u-1", "u-2", 2, previous_file=4)
    assert k == 2
    set_b, k = log.continue_tar(0, "/dev/nbacker0", "u-2", "u-3", 3)
    assert (set_b, k) == (set_a, 3)
    vs = log.volume_set(set_a)
    assert vs.count == 3 and vs.state == "open" and vs.archive == "/dev/nbacker0"
    assert [(v.seq, v.cassette_uuid, v.tar_volume, v.label) for v in vs.volumes] == [
        (1, "u-1", 1, "MON-1"), (2, "u-2", 2, "MON-2"), (3, "u-3", 3, "MON-3")]
    assert vs.volumes[0].file_number == 4 and vs.volumes[1].file_number == 0
    log.finish_set(set_a)
    assert log.volume_set(set_a).state == "complete"
    assert [s.uuid for s in log.sets_on("u-2")] == [set_a]


def test_a_new_archive_starts_a_new_set(catalog: Catalog) -> None:
    log = VolumeLog(catalog)
    first, _ = log.continue_tar(0, "a", "u-1", "u-2", 2)
    log.finish_set(first)
    # tar volume 2 again: not a continuation of the finished set
    second, k = log.continue_tar(0, "b", "u-2", "u-3", 2)
    assert second != first and k == 2
    # another unit's archive never continues this one
    third, _ = log.continue_tar(1, "c", "u-3", "u-1", 3)
    assert third not in (first, second)
    assert len(log.sets_on("u-3")) == 2


def test_a_set_for_a_backup_job(catalog: Catalog) -> None:
    log = VolumeLog(catalog)
    set_uuid = log.begin_set("job nightly", unit=0)
    assert log.add_volume(set_uuid, "u-1", file_number=7) == 1
    assert log.add_volume(set_uuid, "u-2") == 2
    vs = log.volume_set(set_uuid)
    assert [v.tar_volume for v in vs.volumes] == [None, None]
    with pytest.raises(UsageError):
        log.volume_set("nope")
    with pytest.raises(UsageError):
        log.add_volume("nope", "u-1")
    with pytest.raises(UsageError):
        log.finish_set(set_uuid, "lost")


def test_a_version_1_catalog_gains_the_volume_tables(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO cassettes (uuid, label) VALUES ('u-9', 'KEPT')")
    assert migrate(db) == 1
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"volume_sets", "volumes"} <= tables
    assert db.execute("SELECT label FROM cassettes").fetchall() == [("KEPT",)]


def test_catalog_show_names_the_volume_sets(catalog: Catalog,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from backerd.cli import main

    set_uuid, _ = VolumeLog(catalog).continue_tar(0, "/dev/nbacker0", "u-1", "u-2", 2)
    VolumeLog(catalog).continue_tar(0, "/dev/nbacker0", "u-2", "u-3", 3)
    assert main(["catalog", "show", "MON-2", "--catalog", str(catalog.path)]) == 0
    out = capsys.readouterr().out
    assert (f"volume    2 of 3 of /dev/nbacker0 (open, set {set_uuid[:8]}): "
            "MON-1, MON-2, MON-3") in out
    assert main(["catalog", "show", "MON-3", "--catalog", str(catalog.path), "--json"]) == 0
    [vs] = json.loads(capsys.readouterr().out)["volume_sets"]
    assert (vs["set"], vs["here"], vs["count"]) == (set_uuid, [3], 3)

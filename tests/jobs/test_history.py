"""The catalog's job tables: runs round trip, pieces present or lost, foreign cassettes;
and the tar command lines a job runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from backerd.catalog.store import CassetteRow, Catalog, RecordingRow
from backerd.errors import ArchiverError
from backerd.jobs import history
from backerd.jobs.archiver import create_argv, create_outcome, extract_argv, first_problem
from backerd.jobs.config import JobConfig
from backerd.jobs.records import BackupRecord, MemberDigest, Piece
from backerd.jobs.report import next_cassette

T0 = datetime(2026, 5, 1, 22, 0, tzinfo=UTC)


@pytest.fixture
def catalog(tmp_path: Path):
    with Catalog(tmp_path / "catalog.db") as c:
        for uuid, label in (("u-a", "MONDAY"), ("u-b", "")):
            c.put_cassette(CassetteRow(uuid=uuid, label=label))
        yield c


def recording(catalog: Catalog, uuid: str, n: int, size: int) -> None:
    catalog.store_recording(uuid, RecordingRow(n, 0, 10, "nhs", "3.102", size, 1, size))


def test_the_schema_has_the_job_tables(catalog: Catalog) -> None:
    tables = {r[0] for r in catalog.db.execute("SELECT name FROM sqlite_master")}
    assert {"job_runs", "job_pieces", "job_members"} <= tables


def test_runs_round_trip_with_members(catalog: Catalog) -> None:
    recording(catalog, "u-a", 0, 4096)
    members = [MemberDigest("home/", "dir", 9, "d" * 64), MemberDigest("home/a", "file", 3,
                                                                       "a" * 64)]
    written = BackupRecord(0, "home", 0, T0, "written", None, (Piece("u-a", 0, 4096),),
                           files=1, bytes=4096, tree_digest="t" * 64, reason="",
                           finished=T0 + timedelta(minutes=3))
    run_id = history.add_run(catalog, written, members)
    skipped = history.add_run(catalog, BackupRecord(0, "home", 1, T0 + timedelta(days=1),
                                                    "skipped", reason="nothing changed"))
    history.add_run(catalog, BackupRecord(0, "etc", 0, T0, "failed", reason="tar exited 2"))
    history.set_verified(catalog, run_id, True)
    [first, second] = history.runs(catalog, "home")
    assert first == BackupRecord(run_id, "home", 0, T0, "written", True,
                                 (Piece("u-a", 0, 4096),), 1, 4096, "t" * 64, "",
                                 T0 + timedelta(minutes=3))
    assert first.good and second.id == skipped and second.result == "skipped"
    assert history.members(catalog, run_id) == members
    assert [r.job for r in history.runs(catalog)] == ["home", "etc", "home"]
    history.set_verified(catalog, run_id, False, "x: SHA-256 differs")
    [first, _] = history.runs(catalog, "home")
    assert first.verified is False and first.reason == "x: SHA-256 differs" and not first.good


def test_an_overwritten_or_forgotten_recording_makes_the_backup_lost(catalog: Catalog
                                                                       ) -> None:
    recording(catalog, "u-a", 0, 4096)
    history.add_run(catalog, BackupRecord(0, "home", 0, T0, "written", True,
                                          (Piece("u-a", 0, 4096),)))
    assert not history.runs(catalog)[0].lost
    recording(catalog, "u-a", 0, 8192)  # another archive written over file 0
    assert history.runs(catalog)[0].lost
    recording(catalog, "u-a", 0, 4096)
    catalog.forget_from("u-a", 0)  # relabelled or erased
    assert history.runs(catalog)[0].lost


def test_foreign_cassettes_and_labels(catalog: Catalog) -> None:
    recording(catalog, "u-a", 0, 4096)
    recording(catalog, "u-b", 0, 512)
    history.add_run(catalog, BackupRecord(0, "home", 0, T0, "written", True,
                                          (Piece("u-a", 0, 4096),)))
    assert history.foreign_cassettes(catalog, ["u-a", "u-b"]) == {"u-b"}
    recording(catalog, "u-a", 1, 100)  # a tar written by hand after the job's file
    assert history.foreign_cassettes(catalog, ["u-a"]) == {"u-a"}
    assert history.label_of(catalog, "u-a") == "MONDAY"
    assert history.label_of(catalog, "u-b") == "u-b"
    assert history.label_of(catalog, "nope") == "nope"


def test_create_and_extract_command_lines() -> None:
    job = JobConfig("home", ("/home", "/etc/"), exclude=("*.cache", "tmp/*"))
    argv = create_argv(job, Path("/s/level-1.snar.new"), "tar")
    assert argv == ["tar", "--create", "--format=gnu", "--file=-", "--blocking-factor=20",
                    "--listed-incremental=/s/level-1.snar.new", "--no-check-device",
                    "--exclude=*.cache", "--exclude=tmp/*", "-C", "/", "--", "home", "etc/"]
    assert create_argv(JobConfig("all", ("/",)), Path("/s"), "tar")[-1] == "."
    assert extract_argv(Path("/r"), (), "tar") == [
        "tar", "--extract", "--file=-", "--read-full-records",
        "--listed-incremental=/dev/null", "-C", "/r"]
    assert extract_argv(Path("/r"), ("/home/a/*",), "tar")[-3:] == ["--wildcards", "--",
                                                                   "home/a/*"]


def test_tar_exit_statuses() -> None:
    assert create_outcome(0, "") == ""
    assert create_outcome(1, "tar: home/a: file changed as we read it\n") == \
        "tar: home/a: file changed as we read it"
    with pytest.raises(ArchiverError, match="tar exited 2: tar: /nope: Cannot stat"):
        create_outcome(2, "tar: /nope: Cannot stat: No such file or directory\n"
                          "tar: Exiting with failure status due to previous errors")
    assert first_problem("tar: Exiting with failure status due to previous errors") == \
        "no message"


def test_next_cassette() -> None:
    assert next_cassette("MONDAY", True, ["FRIDAY"]) == "MONDAY (loaded)"
    assert next_cassette("MONDAY", False, ["FRIDAY", "SUNDAY"]).startswith("FRIDAY ")
    assert next_cassette("MONDAY", False, []) == "a blank cassette"
    assert next_cassette(None, None, []) == "unknown (the daemon is not running)"
    assert next_cassette(None, None, ["FRIDAY"]).startswith("FRIDAY ")
    assert next_cassette("MONDAY", None, ["FRIDAY"]) == (
        "MONDAY (loaded; the preflight could not be asked)")


def test_runs_come_back_in_the_order_they_ran_across_a_dst_change(catalog: Catalog) -> None:
    summer, winter = timezone(timedelta(hours=2)), timezone(timedelta(hours=1))
    early = datetime(2026, 10, 25, 2, 30, tzinfo=summer)  # 00:30 UTC
    late = datetime(2026, 10, 25, 2, 10, tzinfo=winter)  # 01:10 UTC, earlier on the clock
    history.add_run(catalog, BackupRecord(0, "home", 0, early, "skipped"))
    history.add_run(catalog, BackupRecord(0, "home", 1, late, "skipped"))
    assert [r.level for r in history.runs(catalog)] == [0, 1]
    assert history.runs(catalog)[0].started == early

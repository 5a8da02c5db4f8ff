"""The job commands without a daemon: unknown jobs, the report, the plan from the catalog."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backerd.catalog.store import CassetteRow, Catalog, RecordingRow
from backerd.cli import main
from backerd.jobs import history
from backerd.jobs.records import BackupRecord, Piece

T0 = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "backerd.toml"
    path.write_text(f'state_dir = "{tmp_path}/state"\nruntime_dir = "{tmp_path}/run"\n'
                    '[[job]]\nname = "home"\npaths = ["/home"]\nkeep = 1\n')
    return path


def test_unknown_job(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backup", "etc", "--config", str(config)]) == 2
    assert capsys.readouterr().err.strip() == (
        "backerd backup: no job named 'etc' in the configuration (jobs: home)")


def test_backup_without_a_daemon_fails_and_is_recorded(config: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    assert main(["backup", "home", "--config", str(config)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("backerd backup: no daemon is running")
    with Catalog(tmp_path / "state" / "catalog.db") as catalog:
        [run] = history.runs(catalog, "home")
    assert (run.result, run.level) == ("failed", 0)


def test_jobs_report_and_restore_plan_from_the_catalog(config: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    with Catalog(tmp_path / "state" / "catalog.db") as catalog:
        catalog.put_cassette(CassetteRow(uuid="u-1", label="MONDAY"))
        for n, level in enumerate((0, 1, 0)):
            catalog.store_recording("u-1", RecordingRow(n, 0, 1, "nhs", "3.102", 100, 1, 100))
            history.add_run(catalog, BackupRecord(
                0, "home", level, T0.replace(day=1 + n), "written", True,
                (Piece("u-1", n, 100),)))
    assert main(["jobs", "--json", "--config", str(config)]) == 0
    [job] = json.loads(capsys.readouterr().out)["jobs"]
    assert job["last"]["file"] == 2 and job["chain"] == [3]
    assert [r["file"] for r in job["would_expire"]] == [0, 1]
    assert job["next_cassette"] == "unknown (the daemon is not running)"
    assert main(["jobs", "--config", str(config)]) == 0
    text = capsys.readouterr().out
    assert "would expire:  #1 full" in text and "reusable cassettes: none" in text
    assert main(["restore", "home", "--dry-run", "--json", "--config", str(config)]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [(s["step"], s["file"], s["cassette"]) for s in plan["steps"]] == [
        (0, 2, "MONDAY")]
    assert main(["restore", "home", "--dry-run", "--as-of", "2026-06-02", "--config",
                 str(config)]) == 0
    assert "2 tape file(s) on MONDAY" in capsys.readouterr().out
    assert main(["restore", "home", "--as-of", "2026-05-01", "--config", str(config)]) == 2
    assert "no good full backup as of 2026-05-01" in capsys.readouterr().err
    assert main(["restore", "home", "--as-of", "yesterday", "--config", str(config)]) == 2
    assert "--as-of wants a date" in capsys.readouterr().err

"""Backup jobs end to end: ``backerd backup``, ``restore`` and ``jobs`` against a real
``backerd serve`` on the simulated VCR, GNU tar underneath."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backerd.format.params import mode
from testkit.systemtest import DEVICE_KIND, MODE, Daemon, new_daemon, same_tree, stop_checked

pytestmark = pytest.mark.workflow


def job_config(src: Path, *, verify: bool = True, keep: int = 1, noise: str = "",
               unit_mode: str = MODE) -> str:
    noisy = f'noise = "{noise}"\n' if noise else ""
    return (f'[[unit]]\nmode = "{unit_mode}"\n{noisy}'
            f'[[job]]\nname = "home"\npaths = ["{src}"]\nexclude = ["*.cache"]\n'
            f'full_every = "3 runs"\nverify = {str(verify).lower()}\nkeep = {keep}\n')


def backerd(d: Daemon, *args: str, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    return d.run(*d.backerd(*args, "--config", str(d.config_file)), ok=ok)


def backup(d: Daemon, *extra: str) -> dict[str, Any]:
    return json.loads(backerd(d, "backup", "home", "--json", *extra).stdout)


def jobs(d: Daemon) -> dict[str, Any]:
    return json.loads(backerd(d, "jobs", "--json").stdout)


def make_source(root: Path) -> Path:
    src = root / "home"
    (src / "alice" / "docs").mkdir(parents=True)
    (src / "bob").mkdir()
    (src / "alice" / "notes.txt").write_text("first notes\n")
    (src / "alice" / "docs" / "report.bin").write_bytes(os.urandom(50_000))
    (src / "bob" / "old.txt").write_text("to be deleted\n")
    (src / "bob" / "keep.txt").write_text("kept\n")
    (src / "alice" / "link").symlink_to("notes.txt")
    return src


@pytest.fixture
def job_daemon(no_shared_daemon: None, tmp_path: Path) -> Iterator[Daemon]:
    src = make_source(tmp_path)
    (tmp_path / "d").mkdir()
    d = new_daemon(tmp_path / "d", job_config(src))
    d.start()
    try:
        backerd(d, "label", "--unit", "0", "MONDAY-01")
        yield d
    finally:
        stop_checked(d)


def restored(d: Daemon, dest: Path, *extra: str) -> dict[str, Any]:
    dest.mkdir()
    return json.loads(backerd(d, "restore", "home", "--to", str(dest), "--json",
                              *extra).stdout)


def test_full_skip_incremental_restore(job_daemon: Daemon, tmp_path: Path) -> None:
    d = job_daemon
    src = tmp_path / "home"
    first = backup(d)
    assert first == {"job": "home", "result": "written", "cassette": "MONDAY-01", "file": 0,
                     "level": "full", "files": 5, "bytes": first["bytes"], "verified": True,
                     "cassettes": ["MONDAY-01"]}
    assert first["bytes"] > 50_000
    # nothing changed: the second run writes nothing
    second = backup(d)
    assert second["result"] == "skipped" and second["file"] is None
    assert len(jobs(d)["jobs"][0]["chain"]) == 1
    # a changed, an added and a deleted file (and an excluded one)
    (src / "alice" / "notes.txt").write_text("second notes, longer than the first\n")
    (src / "bob" / "new.txt").write_text("added\n")
    (src / "bob" / "old.txt").unlink()
    (src / "bob" / "junk.cache").write_text("excluded\n")
    third = backup(d)
    assert (third["result"], third["level"], third["file"], third["files"]) == (
        "written", "incremental", 1, 2)
    assert third["verified"] is True
    # one snapshot file per level, the run's copy promoted only after it verified
    state = Path(d.env["BACKERD_STATE_DIR"]) / "jobs" / "home"
    assert sorted(p.name for p in state.iterdir()) == ["level-0.snar", "level-1.snar", "lock"]
    # the plan: the full, then the incremental
    plan = json.loads(backerd(d, "restore", "home", "--dry-run", "--json").stdout)
    assert [(s["level"], s["file"], s["cassette"]) for s in plan["steps"]] == [
        ("full", 0, "MONDAY-01"), ("incremental", 1, "MONDAY-01")]
    # a restore to an empty directory equals the source as it is now, deletion included
    (src / "bob" / "junk.cache").unlink()
    out = restored(d, tmp_path / "out")
    assert out["verified"] is True
    assert same_tree(src, tmp_path / "out" / str(src).lstrip("/")) == []
    assert not (tmp_path / "out" / str(src).lstrip("/") / "bob" / "old.txt").exists()
    # as of the first run: the deleted file is back, the added one is not there yet
    report = jobs(d)
    [job] = report["jobs"]
    assert job["last"]["result"] == "written" and job["last"]["file"] == 1
    assert job["would_expire"] == []
    runs = json.loads(backerd(d, "restore", "home", "--dry-run", "--json", "--as-of",
                              plan["steps"][0]["started"]).stdout)
    assert [s["file"] for s in runs["steps"]] == [0]
    early = tmp_path / "early"
    restored(d, early, "--as-of", plan["steps"][0]["started"])
    base = early / str(src).lstrip("/")
    assert (base / "bob" / "old.txt").read_text() == "to be deleted\n"
    assert not (base / "bob" / "new.txt").exists()
    # only matching paths
    some = tmp_path / "some"
    restored(d, some, "--path", f"{src}/alice/*")
    assert (some / str(src).lstrip("/") / "alice" / "notes.txt").read_text().startswith(
        "second")
    assert not (some / str(src).lstrip("/") / "bob").exists()


def write_config(d: Daemon, src: Path, **options: Any) -> None:
    d.config_file.write_text(f'transport = "{DEVICE_KIND}"\n' + job_config(src, **options))


def test_verify_catches_a_corrupted_recording(no_shared_daemon: None, tmp_path: Path) -> None:
    """Raw mode has no error correction: the deck's playback noise corrupts what is read
    back, as a worn tape would, and only a content check can tell."""
    src = make_source(tmp_path)
    raw = "nhr" if mode(MODE).geometry.standard.name == "NTSC" else "phr"
    (tmp_path / "d").mkdir()
    d = new_daemon(tmp_path / "d", job_config(src, noise="seed=5,errors=0.5", unit_mode=raw))
    d.start()
    try:
        result = backerd(d, "backup", "home", "--json", ok=False)
        assert result.returncode == 10, result.stderr
        out = json.loads(result.stdout)
        assert (out["result"], out["verified"]) == ("written", False)
        [reason] = result.stderr.decode().splitlines()
        assert reason.startswith("backerd backup: verify failed for file 0")
        [job] = jobs(d)["jobs"]
        assert job["last"]["verified"] is False and job["chain"] == []
        # a backup that failed verify is never one to restore from
        refused = backerd(d, "restore", "home", "--dry-run", ok=False)
        assert refused.returncode == 2 and b"no good full backup" in refused.stderr
        # the next run is a full again: the failed one promoted no snapshot
        assert job["next_level"] == "full"
        state = Path(d.env["BACKERD_STATE_DIR"]) / "jobs" / "home"
        assert sorted(p.name for p in state.iterdir()) == ["lock"]
    finally:
        stop_checked(d)


def test_retention_expires_old_cycles_never_the_newest_verified_full(
        job_daemon: Daemon, tmp_path: Path) -> None:
    d = job_daemon
    src = tmp_path / "home"
    write_config(d, src, keep=1)

    def changed_run(n: int) -> dict[str, Any]:
        (src / "bob" / f"run{n}.txt").write_text(f"run {n}\n")
        return backup(d)

    runs = [changed_run(n) for n in (1, 2, 3, 4)]
    # full_every = "3 runs": full, incremental, incremental, then a full
    assert [(r["level"], r["file"], r["verified"]) for r in runs] == [
        ("full", 0, True), ("incremental", 1, True), ("incremental", 2, True),
        ("full", 3, True)]
    [job] = jobs(d)["jobs"]
    assert [r["file"] for r in job["would_expire"]] == [0, 1, 2]
    assert [(r["file"], r["why"]) for r in job["kept"]] == [
        (3, "in the newest full cycles kept")]
    # unverified cycles after it cannot push out the newest verified full
    write_config(d, src, keep=1, verify=False)
    runs += [changed_run(n) for n in (5, 6, 7)]
    assert [(r["level"], r["file"], r["verified"]) for r in runs[4:]] == [
        ("incremental", 4, None), ("incremental", 5, None), ("full", 6, None)]
    [job] = jobs(d)["jobs"]
    assert [r["file"] for r in job["would_expire"]] == [0, 1, 2]
    assert [(r["file"], r["why"]) for r in job["kept"]] == [
        (3, "in the newest verified full cycle"), (4, "in the newest verified full cycle"),
        (5, "in the newest verified full cycle"), (6, "in the newest full cycles kept")]
    assert jobs(d)["reusable"] == []  # one cassette, still holding kept backups


def test_preflight_refusal_and_the_cassette_to_insert(job_daemon: Daemon, tmp_path: Path
                                                      ) -> None:
    d = job_daemon
    first = backerd(d, "backup", "home")  # the text form
    assert first.stdout.decode().startswith("home: full written to MONDAY-01 file 0: 5 files")
    listing = backerd(d, "jobs").stdout.decode()
    assert "last run:      written full" in listing and "MONDAY-01 file 0, verified" in listing
    # the inventory says the cassette is full: the preflight refuses, nothing is written
    db = Path(d.env["BACKERD_STATE_DIR"]) / "catalog.db"
    d.run(*d.backerd("catalog", "--catalog", str(db), "set", "MONDAY-01", "--state", "full"))
    (tmp_path / "home" / "bob" / "more.txt").write_text("more\n")
    refused = backerd(d, "backup", "home", "--json", ok=False)
    assert refused.returncode == 8 and refused.stdout == b""
    [line] = refused.stderr.decode().splitlines()
    assert line.startswith("backerd backup: preflight failed on unit 0: writable?")
    assert jobs(d)["jobs"][0]["last"]["result"] == "failed"
    assert jobs(d)["jobs"][0]["next_cassette"] == "a blank cassette"
    # the next cassette in the deck takes the incremental
    monday, tuesday = d.cassette, tmp_path / "d" / "other.cassette"

    def load(cassette: Path) -> None:
        stop_checked(d)
        d.cassette = cassette
        d.start()

    load(tuesday)
    backerd(d, "label", "--unit", "0", "TUESDAY-02")
    second = backup(d)
    assert (second["cassette"], second["file"], second["level"]) == (
        "TUESDAY-02", 0, "incremental")
    plan = backerd(d, "restore", "home", "--dry-run").stdout.decode()
    assert "2 tape file(s) on MONDAY-01, TUESDAY-02" in plan
    # the restore names the cassette to insert, and where to go on after changing it
    out = tmp_path / "out"
    wrong = backerd(d, "restore", "home", "--to", str(out), ok=False)
    assert wrong.returncode == 11
    [line] = wrong.stderr.decode().splitlines()
    assert line.startswith("backerd restore: insert cassette MONDAY-01 (uuid ")
    assert line.endswith("the loaded cassette is TUESDAY-02") and not out.exists()
    load(monday)
    half = backerd(d, "restore", "home", "--to", str(out), ok=False)
    assert half.returncode == 11
    assert half.stderr.decode().rstrip().endswith("run the restore again with --resume 1")
    assert "insert cassette TUESDAY-02" in half.stderr.decode()
    load(tuesday)
    backerd(d, "restore", "home", "--to", str(out), "--resume", "1")
    src = tmp_path / "home"
    assert same_tree(src, out / str(src).lstrip("/")) == []


def test_a_tar_error_fails_the_run_and_keeps_the_snapshots(job_daemon: Daemon,
                                                           tmp_path: Path) -> None:
    d = job_daemon
    src = tmp_path / "home"
    assert backup(d)["level"] == "full"
    state = Path(d.env["BACKERD_STATE_DIR"]) / "jobs" / "home"
    before = (state / "level-0.snar").read_bytes()
    write_config(d, tmp_path / "no-such-directory")
    failed = backerd(d, "backup", "home", ok=False)
    assert failed.returncode == 9
    [line] = failed.stderr.decode().splitlines()
    assert line.startswith("backerd backup: tar exited 2: ") and "no-such-directory" in line
    assert (state / "level-0.snar").read_bytes() == before
    assert sorted(p.name for p in state.iterdir()) == ["level-0.snar", "lock"]
    [job] = jobs(d)["jobs"]
    assert job["last"]["result"] == "failed" and job["chain"] == [1]
    # the job's paths back: the next run is the incremental the failed one was to be
    write_config(d, src)
    (src / "bob" / "late.txt").write_text("late\n")
    again = backup(d)
    assert (again["level"], again["result"], again["files"]) == ("incremental", "written", 1)

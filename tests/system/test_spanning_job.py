"""A backup job larger than one cassette: it goes on on the next cassette at the
early-warning point, verifies across both, is a volume set in the catalog, and restores
byte-exact with the cassettes asked for in order."""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit.systemtest import MODE, Daemon, new_daemon, same_tree, stop_checked

pytestmark = pytest.mark.workflow

LENGTH = "2"  # minutes: one minute before the early-warning point, a few MB per cassette


def job_config(src: Path, pattern: str) -> str:
    return (f'[[unit]]\nmode = "{MODE}"\n'
            f'[[job]]\nname = "big"\npaths = ["{src}"]\nverify = true\n'
            f'full_every = "1 run"\nnext_cassette = "{pattern}"\nchange_timeout = 60\n')


def backerd(d: Daemon, *args: str, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    return d.run(*d.backerd(*args, "--config", str(d.config_file)), ok=ok)


def deck(d: Daemon, *args: str) -> None:
    backerd(d, "deck", *args, "--unit", "0")


def unit_status(d: Daemon) -> dict[str, Any]:
    return d.status()["units"][0]


@pytest.fixture
def span_daemon(no_shared_daemon: None, tmp_path: Path) -> Iterator[Daemon]:
    """A daemon serving vol1.img, a two-minute cassette labelled BIG-01, for job "big"
    whose next cassettes are vol$TAR_VOLUME.img."""
    src = tmp_path / "src"
    src.mkdir()
    home = tmp_path / "d"
    home.mkdir()
    d = new_daemon(home, job_config(src, f"{home}/vol$TAR_VOLUME.img"))
    d.cassette = home / "vol1.img"
    d.run(*d.backerd("cassette", "new", str(d.cassette), "--length", LENGTH))
    d.start()
    try:
        backerd(d, "label", "--unit", "0", "BIG-01")
        yield d
    finally:
        stop_checked(d)


def test_a_job_spans_two_cassettes_and_restores_them_in_order(span_daemon: Daemon,
                                                               tmp_path: Path) -> None:
    d = span_daemon
    src, home = tmp_path / "src", tmp_path / "d"
    capacity = unit_status(d)["capacity_left_bytes"]
    assert capacity > 0
    # more than the first cassette holds, less than two: one member spans the change
    rng = random.Random(7)
    (src / "a.bin").write_bytes(rng.randbytes(capacity * 3 // 4))
    (src / "b.bin").write_bytes(rng.randbytes(capacity // 2))
    (src / "small.txt").write_text("small\n")

    [before] = json.loads(backerd(d, "jobs", "--json").stdout)["jobs"]
    assert (before["next_bytes"], before["next_cassettes"]) == (None, None)  # no run yet

    out = json.loads(backerd(d, "backup", "big", "--json").stdout)
    assert (out["result"], out["level"], out["cassette"], out["file"], out["verified"]) == (
        "written", "full", "BIG-01", 0, True)
    assert len(out["cassettes"]) == 2 and out["cassettes"][0] == "BIG-01"
    assert out["bytes"] > capacity
    assert unit_status(d)["cassette"] == str(home / "vol2.img")

    # the next full is estimated as this one: more than vol2 has left, less than that
    # and a blank cassette: two cassettes
    left = unit_status(d)["capacity_left_bytes"]
    assert left < out["bytes"] <= left + capacity
    [job] = json.loads(backerd(d, "jobs", "--json").stdout)["jobs"]
    assert (job["next_level"], job["next_bytes"], job["next_cassettes"]) == (
        "full", out["bytes"], 2)
    assert f"takes:         2 cassettes (about {out['bytes']:,} bytes" in backerd(
        d, "jobs").stdout.decode()

    # the catalog: the run's two pieces, and a volume set listed on both cassettes
    shown = json.loads(backerd(d, "catalog", "show", "BIG-01", "--json").stdout)
    [vset] = shown["volume_sets"]
    assert vset["state"] == "complete" and vset["count"] == 2 and vset["here"] == [1]
    assert [(v["seq"], v["tar_volume"], v["file_number"]) for v in vset["volumes"]] == [
        (1, 1, 0), (2, 2, 0)]
    vol2_uuid = vset["volumes"][1]["cassette_uuid"]
    assert unit_status(d)["cassette_uuid"] == vol2_uuid
    text = backerd(d, "catalog", "show", vol2_uuid).stdout.decode()
    assert "big" in text
    plan = json.loads(backerd(d, "restore", "big", "--dry-run", "--json").stdout)
    assert [(s["cassette"], s["file"]) for s in plan["steps"]] == [
        ("BIG-01", 0), (plan["steps"][1]["cassette"], 0)]
    assert plan["steps"][1]["cassette_uuid"] == vol2_uuid

    # vol2 is loaded: the restore first asks for BIG-01, touching nothing
    dest = tmp_path / "out"
    first = backerd(d, "restore", "big", "--to", str(dest), ok=False)
    assert first.returncode == 11
    assert first.stderr.decode().startswith("backerd restore: insert cassette BIG-01")
    assert not dest.exists()
    deck(d, "eject")
    deck(d, "insert", str(home / "vol1.img"))

    # with BIG-01 in, it reads it, ejects it and asks for the second cassette
    restore = subprocess.Popen(
        d.backerd("restore", "big", "--to", str(dest), "--json", "--config",
                  str(d.config_file)),
        env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while unit_status(d)["loaded"]:
            assert time.monotonic() < deadline and restore.poll() is None
            time.sleep(0.2)
        assert restore.poll() is None  # waiting for the next volume
        deck(d, "insert", str(home / "vol2.img"))
        stdout, stderr = restore.communicate(timeout=300)
    finally:
        if restore.poll() is None:
            restore.kill()
            restore.wait()
    assert restore.returncode == 0, stderr
    assert f"insert cassette {plan['steps'][1]['cassette']}" in stderr.decode()
    assert json.loads(stdout)["verified"] is True
    assert same_tree(src, dest / str(src).lstrip("/")) == []


def test_backup_waits_for_the_operator_and_next_volume_follows_the_jobs_rule(
        no_shared_daemon: None, tmp_path: Path) -> None:
    """Without next_cassette the job waits for ``deck insert``; a cassette whose job
    backups have all expired may then be a tar -M volume, one still kept may not."""
    src = tmp_path / "src"
    src.mkdir()
    home = tmp_path / "d"
    home.mkdir()
    d = new_daemon(home, f'[[unit]]\nmode = "{MODE}"\n'
                         f'[[job]]\nname = "big"\npaths = ["{src}"]\nkeep = 1\n'
                         'full_every = "1 run"\nchange_timeout = 60\n')
    d.cassette = home / "vol1.img"
    d.run(*d.backerd("cassette", "new", str(d.cassette), "--length", LENGTH))
    d.start()
    try:
        capacity = unit_status(d)["capacity_left_bytes"]
        (src / "a.bin").write_bytes(random.Random(3).randbytes(capacity * 5 // 4))
        job = subprocess.Popen(d.backerd("backup", "big", "--config", str(d.config_file)),
                               env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 300
            while unit_status(d)["loaded"]:  # until the full cassette is ejected
                assert time.monotonic() < deadline and job.poll() is None
                time.sleep(0.2)
            assert job.poll() is None  # waiting for the operator
            deck(d, "insert", str(home / "vol2.img"), "--new")
            stdout, stderr = job.communicate(timeout=300)
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
        assert job.returncode == 0, stderr
        assert "insert the next cassette (volume 2)" in stderr.decode()
        said = stdout.decode()
        assert said.startswith("big: full written to ") and " and on " in said
        assert said.rstrip().endswith("verified")

        def next_volume(image: Path) -> subprocess.CompletedProcess[bytes]:
            return subprocess.run(
                d.backerd("next-volume", "--unit", "0", "--socket", str(d.control_socket),
                          "--timeout", "30", "--insert", str(image)),
                capture_output=True, timeout=120,
                env={**d.env, "TAR_SUBCOMMAND": "-c", "TAR_VOLUME": "2"})

        # vol1 holds the first volume of the job's only backup: kept, refused
        held = next_volume(home / "vol1.img")
        assert held.returncode == 1 and b"retention" in held.stderr
        # a newer full on a third cassette: keep = 1 expires the spanning backup, and
        # vol1 may be written over although its recording is not marked expired
        (src / "a.bin").write_bytes(b"smaller now\n")
        deck(d, "eject")
        deck(d, "insert", str(home / "vol3.img"), "--new")
        backerd(d, "backup", "big")
        freed = next_volume(home / "vol1.img")
        assert freed.returncode == 0, freed.stderr
        held = next_volume(home / "vol3.img")
        assert held.returncode == 1 and b"retention" in held.stderr
    finally:
        stop_checked(d)

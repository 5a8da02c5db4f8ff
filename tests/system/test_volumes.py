"""Archives larger than one cassette: tar -M with ``backerd next-volume`` as its -F
script, cassettes ejected and inserted while the daemon runs, and the refusals."""

from __future__ import annotations

import errno
import os
import random
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.systemtest import MODE, Daemon, ToolError, new_daemon, same_tree, stop_checked

LENGTH = "2"  # minutes: one minute before the early-warning point, a few MB per cassette


@pytest.fixture
def changer(no_shared_daemon: None, tmp_path: Path) -> Iterator[Daemon]:
    """A daemon serving vol1.img, a two-minute cassette, with a catalog."""
    d = new_daemon(tmp_path, f'[[unit]]\nmode = "{MODE}"\n')
    d.cassette = tmp_path / "vol1.img"
    d.run(*d.backerd("cassette", "new", str(d.cassette), "--length", LENGTH))
    d.start()
    try:
        yield d
    finally:
        stop_checked(d)


def deck(d: Daemon, *args: str, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    return d.run(*d.backerd("deck", *args, "--unit", "0", "--socket", str(d.control_socket)),
                 ok=ok)


def script(d: Daemon, *extra: str) -> str:
    """tar's -F: next-volume inserting DIR/vol$TAR_VOLUME.img (tar expands the variable)."""
    import sys

    return (f"{sys.executable} -m backerd next-volume --unit 0 --socket {d.control_socket} "
            f"--timeout 60 --insert {d.tmp}/vol$TAR_VOLUME.img {' '.join(extra)}")


def unit_status(d: Daemon) -> dict:
    return d.status()["units"][0]


def test_tar_multi_volume_across_three_cassettes(changer: Daemon) -> None:
    d = changer
    rng = random.Random(13)
    src = d.tmp / "src"
    src.mkdir()
    capacity = unit_status(d)["capacity_left_bytes"]
    assert capacity > 0
    # more than two cassettes hold before their early-warning points, less than three
    for i, size in enumerate((capacity, capacity // 2, capacity * 4 // 5)):
        (src / f"part{i}.bin").write_bytes(rng.randbytes(size))
    d.run("tar", "-c", "-M", "-F", script(d), "-f", d.rew, "-C", str(src), ".")
    assert [p.name for p in sorted(d.tmp.glob("vol*.img"))] == [
        "vol1.img", "vol2.img", "vol3.img"]
    st = unit_status(d)
    assert st["cassette"] == str(d.tmp / "vol3.img")

    # the catalog holds the volume set: cassettes 1..3 with tar volumes 1..3
    db = sqlite3.connect(Path(d.env["BACKERD_STATE_DIR"]) / "catalog.db")
    rows = db.execute("SELECT v.seq, v.tar_volume FROM volumes v JOIN volume_sets s"
                      " ON s.id = v.set_id ORDER BY v.seq").fetchall()
    db.close()
    assert rows == [(1, 1), (2, 2), (3, 3)]

    # back to volume 1, then read everything back through the same script
    deck(d, "eject")
    deck(d, "insert", str(d.tmp / "vol1.img"))
    out = d.tmp / "out"
    out.mkdir()
    d.run("tar", "-x", "-M", "-F", script(d), "-f", d.rew, "-C", str(out))
    assert same_tree(src, out) == []


def test_eject_insert_idle_enomedium_and_busy(changer: Daemon) -> None:
    d = changer
    other = d.tmp / "other.img"
    assert "ejected" in deck(d, "eject").stdout.decode()
    st = unit_status(d)
    assert st["loaded"] is False and st["cassette"] is None
    # no cassette: open fails with ENOMEDIUM, as st's does
    with pytest.raises(OSError) as caught:
        os.open(d.nrew, os.O_RDONLY)
    assert caught.value.errno == errno.ENOMEDIUM
    # a missing image is refused without --new, created with it (blank, unlabelled)
    assert deck(d, "insert", str(other), ok=False).returncode != 0
    said = deck(d, "insert", str(other), "--new").stdout.decode()
    assert "blank" in said and "unlabelled" in said
    d.run("tar", "-c", "-f", d.nrew, "-C", str(d.tmp), "backerd.toml")
    st = unit_status(d)
    assert st["cassette"] == str(other) and st["loaded"] is True
    # while a node is open, eject and insert are refused (device busy)
    fd = os.open(d.nrew, os.O_RDONLY)
    try:
        busy = deck(d, "eject", ok=False)
        assert busy.returncode != 0 and b"busy" in busy.stderr
    finally:
        os.close(fd)
    deck(d, "eject")
    said = deck(d, "insert", str(d.tmp / "vol1.img")).stdout.decode()
    assert "blank" in said  # vol1 was never written
    deck(d, "eject")
    said = deck(d, "insert", str(other)).stdout.decode()
    assert "1 recording" in said


def test_mt_offline_ejects(changer: Daemon) -> None:
    d = changer
    d.mt(d.nrew, "offline")
    assert unit_status(d)["loaded"] is False
    with pytest.raises(OSError) as caught:
        os.open(d.nrew, os.O_RDONLY)
    assert caught.value.errno == errno.ENOMEDIUM
    deck(d, "insert", str(d.tmp / "vol2.img"), "--new")
    assert unit_status(d)["cassette"] == str(d.tmp / "vol2.img")


def next_volume(d: Daemon, *extra: str, insert: Path, ok: bool = True,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    argv = [*d.backerd("next-volume", "--unit", "0", "--socket", str(d.control_socket),
                       "--timeout", "10", "--insert", str(insert), *extra)]
    result = subprocess.run(argv, capture_output=True, timeout=120,
                            env={**d.env, "TAR_SUBCOMMAND": "-c", "TAR_VOLUME": "2",
                                 **(env or {})})
    if ok and result.returncode != 0:
        raise ToolError(f"next-volume exited {result.returncode}: {result.stderr!r}")
    return result


def test_next_volume_refuses_same_cassette_and_unexpired(changer: Daemon) -> None:
    d = changer
    vol1, vol2 = d.tmp / "vol1.img", d.tmp / "vol2.img"
    same = next_volume(d, insert=vol1, ok=False)
    assert same.returncode == 1 and b"just ejected" in same.stderr

    # vol1 gets a catalogued backup: written over, it would be lost
    d.run("tar", "-c", "-f", d.nrew, "-C", str(d.tmp), "backerd.toml")
    vol1_uuid = unit_status(d)["cassette_uuid"]
    next_volume(d, insert=vol2)
    held = next_volume(d, insert=vol1, ok=False)
    assert held.returncode == 1 and b"retention" in held.stderr
    # a refused cassette stays in the deck; --force takes it, reading never minds
    next_volume(d, insert=vol2)
    next_volume(d, "--force", insert=vol1)
    next_volume(d, insert=vol2, env={"TAR_SUBCOMMAND": "-x"})
    next_volume(d, insert=vol1, env={"TAR_SUBCOMMAND": "-x"})
    next_volume(d, insert=vol2)
    # once the catalog marks it expired, vol1 may be written again
    d.run(*d.backerd("catalog", "set", vol1_uuid, "--state", "expired",
                     "--config", str(d.config_file)))
    next_volume(d, insert=vol1)


def test_next_volume_waits_for_a_cassette_inserted_by_hand(changer: Daemon) -> None:
    d = changer
    argv = d.backerd("next-volume", "--unit", "0", "--socket", str(d.control_socket),
                     "--timeout", "60")
    waiting = subprocess.Popen(argv, env={**d.env, "TAR_SUBCOMMAND": "-c",
                                          "TAR_VOLUME": "2"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while unit_status(d)["loaded"]:  # until it has ejected vol1
            assert time.monotonic() < deadline and waiting.poll() is None
            time.sleep(0.1)
        assert waiting.poll() is None  # still waiting: nothing was inserted
        deck(d, "insert", str(d.tmp / "vol2.img"), "--new")
        _, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == 0, err
    assert b"volume 2 is an unlabelled cassette, blank" in err
    assert unit_status(d)["cassette"] == str(d.tmp / "vol2.img")

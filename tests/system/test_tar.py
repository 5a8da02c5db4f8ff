"""GNU tar against the served nodes: round trips, several archives, append, verify."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from testkit.systemtest import Daemon, parse_mt_status, same_tree


def tar_list(d: Daemon, dev: str, *extra: str) -> list[str]:
    out = d.run("tar", *extra, "-tf", dev).stdout.decode()
    return sorted(line.rstrip("/") for line in out.splitlines())


def extract(d: Daemon, dev: str, dest: Path, *extra: str) -> Path:
    dest.mkdir()
    d.run("tar", *extra, "-xf", dev, "-C", dest)
    return dest


@pytest.mark.slow
def test_tar_round_trip_byte_exact_with_a_20_mb_file(daemon: Daemon, tree: Path) -> None:
    (tree / "big.bin").write_bytes(random.Random(20).randbytes(20 * 1024 * 1024))
    daemon.run("tar", "-cf", daemon.rew, "-C", tree.parent, tree.name)
    listed = tar_list(daemon, daemon.rew)
    assert "src/big.bin" in listed and "src/link" in listed and "src/empty-dir" in listed
    out = extract(daemon, daemon.rew, daemon.tmp / "out")
    assert same_tree(tree, out / "src") == []


def test_tar_round_trip_small_tree(daemon: Daemon, tree: Path) -> None:
    daemon.run("tar", "-cf", daemon.rew, "-C", tree.parent, tree.name)
    out = extract(daemon, daemon.rew, daemon.tmp / "out")
    assert same_tree(tree, out / "src") == []


@pytest.mark.parametrize(
    "blocking", [pytest.param(1, marks=pytest.mark.slow), 20, 128, 2048]
)
def test_tar_blocking_factors(daemon: Daemon, tree: Path, blocking: int) -> None:
    # -b 2048 = 1 MiB records: several kernel chunks per record, reassembled by the daemon
    (tree / "mid.bin").write_bytes(random.Random(blocking).randbytes(1_500_000))
    b = ("-b", str(blocking))
    daemon.run("tar", *b, "-cf", daemon.rew, "-C", tree.parent, tree.name)
    assert "src/mid.bin" in tar_list(daemon, daemon.rew, *b)
    out = extract(daemon, daemon.rew, daemon.tmp / "out", *b)
    assert same_tree(tree, out / "src") == []


def test_three_archives_then_fsf_2(daemon: Daemon, tmp_path: Path) -> None:
    for i in range(3):
        part = tmp_path / f"part{i}"
        part.mkdir()
        (part / f"file{i}.txt").write_text(f"archive {i}\n" * (i + 1))
        daemon.run("tar", "-cf", daemon.nrew, "-C", tmp_path, part.name)
    status = parse_mt_status(daemon.mt(daemon.nrew, "status"))
    assert status["file"] == 3 and status["block"] == 0
    daemon.mt(daemon.nrew, "rewind")
    daemon.mt(daemon.nrew, "fsf", "2")
    assert tar_list(daemon, daemon.nrew) == ["part2", "part2/file2.txt"]
    daemon.mt(daemon.nrew, "rewind")
    assert tar_list(daemon, daemon.nrew) == ["part0", "part0/file0.txt"]
    daemon.mt(daemon.nrew, "fsf", "1")  # tar stopped inside archive 0: skip its filemark
    assert tar_list(daemon, daemon.nrew) == ["part1", "part1/file1.txt"]


def test_mt_eod_then_append(daemon: Daemon, tmp_path: Path) -> None:
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(name)
    daemon.run("tar", "-cf", daemon.rew, "-C", tmp_path, "first")  # rewinds on close
    daemon.mt(daemon.nrew, "eod")
    status = parse_mt_status(daemon.mt(daemon.nrew, "status"))
    assert status["file"] == 1 and "EOD" in status["bits"]
    daemon.run("tar", "-cf", daemon.nrew, "-C", tmp_path, "second")
    daemon.mt(daemon.nrew, "rewind")
    assert tar_list(daemon, daemon.nrew) == ["first", "first/f"]
    daemon.mt(daemon.nrew, "fsf", "1")
    assert tar_list(daemon, daemon.nrew) == ["second", "second/f"]


def test_tar_verify(daemon: Daemon, tree: Path) -> None:
    # -W: tar writes, backspaces (MTBSF) and compares what it reads back
    result = daemon.run("tar", "-W", "-cf", daemon.rew, "-C", tree.parent, tree.name)
    assert b"Verify" not in result.stderr and b"differ" not in result.stderr
    out = extract(daemon, daemon.rew, daemon.tmp / "out")
    assert same_tree(tree, out / "src") == []


def test_tar_verify_second_archive(daemon: Daemon, tree: Path, tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a").write_text("a")
    daemon.run("tar", "-cf", daemon.nrew, "-C", tmp_path, "one")
    result = daemon.run("tar", "-W", "-cf", daemon.nrew, "-C", tree.parent, tree.name)
    assert b"Verify" not in result.stderr and b"differ" not in result.stderr
    daemon.mt(daemon.nrew, "rewind")
    daemon.mt(daemon.nrew, "fsf", "1")
    out = extract(daemon, daemon.nrew, daemon.tmp / "out")
    assert same_tree(tree, out / "src") == []


def test_tar_append_r(daemon: Daemon, tree: Path, tmp_path: Path) -> None:
    daemon.run("tar", "-cf", daemon.rew, "-C", tree.parent, tree.name)
    extra = tmp_path / "later.txt"
    extra.write_text("appended with tar -r\n")
    daemon.run("tar", "-rf", daemon.rew, "-C", tmp_path, "later.txt")
    listed = tar_list(daemon, daemon.rew)
    assert "later.txt" in listed and "src/hello.txt" in listed
    out = extract(daemon, daemon.rew, daemon.tmp / "out")
    assert (out / "later.txt").read_text() == "appended with tar -r\n"
    assert same_tree(tree, out / "src") == []

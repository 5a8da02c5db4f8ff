"""Storage faults under a running daemon: a full host disk, a read-only state directory,
a truncated or bit-flipped cassette image. Each gives a clear one-line error or log line,
and nothing committed earlier is lost.

The full disk and the read-only directory are small tmpfs mounts made by the test
(root is needed anyway for the FUSE fallback); skipped when mounting is not allowed.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from backerd.vcr.image import DATA_OFFSET, SLOT_SIZE
from testkit.faults import (
    TAR_OPTIONS,
    cassette_info,
    make_tree,
    read_file,
    reference_archive,
    wait_closed,
)
from testkit.mounts import tmpfs
from testkit.systemtest import MODE, START_TIMEOUT, Daemon, new_daemon, stop_checked


@pytest.fixture
def two_files(tmp_path: Path) -> Iterator[tuple[Daemon, list[bytes]]]:
    """A stopped daemon whose cassette holds two closed archives (their bytes given)."""
    d = new_daemon(tmp_path, f'[[unit]]\nmode = "{MODE}"\n')
    archives = [reference_archive(d, make_tree(tmp_path / name, seed, size),
                                  tmp_path / f"{name}.tar")
                for name, seed, size in (("first", 1, 150_000), ("second", 2, 250_000))]
    d.start()
    try:
        for name in ("first", "second"):
            d.run("tar", *TAR_OPTIONS, "-cf", d.nrew, "-C", tmp_path, name)
        wait_closed(d)
        stop_checked(d)
        yield d, archives
    finally:
        stop_checked(d)


def log_since(d: Daemon, mark: int) -> str:
    return d.log.read_text(errors="replace")[mark:]


def test_full_host_disk_fails_the_write_and_keeps_the_closed_archive(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    with tmpfs(disk, "6m"):
        d = new_daemon(tmp_path, f'[[unit]]\nmode = "{MODE}"\ncassette = "{disk}/t.cassette"\n',
                       cassette_option=False)
        d.cassette = disk / "t.cassette"
        first = reference_archive(d, make_tree(tmp_path / "first", 1, 200_000),
                                  tmp_path / "first.tar")
        second = reference_archive(d, make_tree(tmp_path / "second", 2, 4_000_000),
                                   tmp_path / "second.tar")
        d.start()
        try:
            d.run("tar", *TAR_OPTIONS, "-cf", d.nrew, "-C", tmp_path, "first")
            mark = len(d.log.read_text())
            d.run("tar", *TAR_OPTIONS, "-cf", d.nrew, "-C", tmp_path, "second", ok=False)
            wait_closed(d)
            failed = [line for line in log_since(d, mark).splitlines() if "failed" in line]
            assert failed and all("No space left on device" in line or "ENOSPC" in line
                                  for line in failed), failed
            assert "Traceback" not in d.log.read_text()
            assert read_file(d, 0, tmp_path / "back0")[0] == first
            survived, _ = read_file(d, 1, tmp_path / "back1")
            assert survived == second[: len(survived)]
            stop_checked(d)
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
            d.start()  # with room again: what reached the image is recovered
            assert read_file(d, 0, tmp_path / "back0")[0] == first
            survived, _ = read_file(d, 1, tmp_path / "back1")
            assert survived == second[: len(survived)]
            d.mt(d.nrew, "rewind")
            d.mt(d.nrew, "eod")
            d.run("tar", *TAR_OPTIONS, "-cf", d.nrew, "-C", tmp_path, "first")
            wait_closed(d)
            files = len(cassette_info(d)["recordings"])
            back = read_file(d, files - 1, tmp_path / "again")[0]
            assert back.endswith(first) and second.startswith(back[: -len(first)])
        finally:
            stop_checked(d)


def test_full_host_disk_at_the_filemark_fails_tar(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    with tmpfs(disk, "6m"):
        d = new_daemon(tmp_path, f'[[unit]]\nmode = "{MODE}"\ncassette = "{disk}/t.cassette"\n',
                       cassette_option=False)
        make_tree(tmp_path / "first", 1, 200_000)
        make_tree(tmp_path / "second", 2, 2_700_000)  # its fields fit, not its EOR
        d.start()
        try:
            d.run("tar", *TAR_OPTIONS, "-cf", d.nrew, "-C", tmp_path, "first")
            done = d.run("tar", *TAR_OPTIONS, "-cf", d.nrew, "-C", tmp_path, "second", ok=False)
            wait_closed(d)
            assert "writing a filemark failed" in d.log.read_text()
            assert "No space left on device" in d.log.read_text()
            assert done.returncode != 0, "tar exited 0 though its archive was not committed"
            assert b"Cannot close: No space left on device" in done.stderr
        finally:
            stop_checked(d)


def test_read_only_state_directory_serves_without_the_catalog(
    two_files: tuple[Daemon, list[bytes]], tmp_path: Path
) -> None:
    d, archives = two_files
    state = Path(d.env["BACKERD_STATE_DIR"])
    with tmpfs(state, "1m"):
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
        mark = len(d.log.read_text())
        d.start()
        try:
            started = log_since(d, mark)
            assert "Traceback" not in started
            [line] = [x for x in started.splitlines() if "catalog" in x]
            assert "unavailable" in line and "serving without it" in line
            for number, want in enumerate(archives):
                assert read_file(d, number, tmp_path / f"back{number}")[0] == want
            d.mt(d.nrew, "eod")  # writing still works: the cassette is elsewhere
            d.run("tar", *TAR_OPTIONS, "-cf", d.nrew, "-C", tmp_path, "first")
            wait_closed(d)
            assert read_file(d, 2, tmp_path / "back2")[0] == archives[0]
        finally:
            stop_checked(d)


def test_read_only_cassette_directory_is_one_line_error(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with tmpfs(state, "1m"):
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
        d = new_daemon(tmp_path, f'[[unit]]\nmode = "{MODE}"\n', cassette_option=False)
        done = subprocess.run(d.backerd("serve", "--config", str(d.config_file),
                                        "--fuse-root", str(d.fuse_root)),
                              capture_output=True, env=d.env, timeout=START_TIMEOUT)
        assert done.returncode != 0
        err = done.stderr.decode().strip().splitlines()
        assert len(err) == 1 and "Read-only file system" in err[0], err


def test_truncated_image_loses_only_what_lies_past_its_end(
    two_files: tuple[Daemon, list[bytes]], tmp_path: Path
) -> None:
    d, archives = two_files
    second = cassette_info(d)["recordings"][1]
    with open(d.cassette, "r+b") as image:
        image.truncate(DATA_OFFSET + (second["start"] + 20) * SLOT_SIZE)
    mark = len(d.log.read_text())
    d.start()
    try:
        started = log_since(d, mark)
        assert "the image is truncated" in started and "recording 1 lies past its end" in started
        assert read_file(d, 0, tmp_path / "back0")[0] == archives[0]
        back, status = read_file(d, 1, tmp_path / "back1")
        assert status != 0 and archives[1].startswith(back)  # EIO where the tape ends
        assert "Traceback" not in d.log.read_text()
    finally:
        stop_checked(d)


def test_bit_flipped_superblock_is_a_one_line_error_and_changes_nothing(
    two_files: tuple[Daemon, list[bytes]]
) -> None:
    d, _ = two_files
    image = bytearray(d.cassette.read_bytes())
    image[20] ^= 0x10  # inside the superblock's JSON header
    d.cassette.write_bytes(image)
    digest = hashlib.sha256(image).hexdigest()
    done = subprocess.run(d.backerd("serve", "--config", str(d.config_file), "--cassette",
                                    str(d.cassette), "--fuse-root", str(d.fuse_root)),
                          capture_output=True, env=d.env, timeout=START_TIMEOUT)
    assert done.returncode != 0
    err = done.stderr.decode().strip().splitlines()
    assert len(err) == 1 and str(d.cassette) in err[0] and "damaged" in err[0], err
    assert hashlib.sha256(d.cassette.read_bytes()).hexdigest() == digest


def test_bit_flips_in_recorded_fields_are_corrected(
    two_files: tuple[Daemon, list[bytes]], tmp_path: Path
) -> None:
    d, archives = two_files
    if MODE.endswith("r"):
        pytest.skip(f"mode {MODE} has no error correction")
    image = bytearray(d.cassette.read_bytes())
    for slot in range(10, 400, 37):  # one flipped byte in a field of each file
        image[DATA_OFFSET + slot * SLOT_SIZE + 4 + 777] ^= 0xFF
    d.cassette.write_bytes(image)
    d.start()
    try:
        for number, want in enumerate(archives):
            assert read_file(d, number, tmp_path / f"back{number}")[0] == want
    finally:
        stop_checked(d)

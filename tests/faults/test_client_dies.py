"""The client dies: GNU tar SIGKILLed in the middle of a write or a read.

The kernel closes the dead process's descriptor, so the daemon sees a FLUSH and a
RELEASE as for a normal close: a write in progress ends with a filemark after the
records that arrived (a prefix of the archive), a read simply ends. The unit must come
back to idle, the next open must work, and what was on the tape before stays intact.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from testkit.faults import (
    TAR_OPTIONS,
    cassette_info,
    make_tree,
    read_file,
    reference_archive,
    tar_to_device,
    unit_status,
    wait_closed,
    wait_written,
)
from testkit.systemtest import MODE, TOOL_TIMEOUT, Daemon, new_daemon, stop_checked


def started(tmp_path: Path) -> tuple[Daemon, bytes, bytes]:
    d = new_daemon(tmp_path, f'[[unit]]\nmode = "{MODE}"\n')
    first = reference_archive(d, make_tree(tmp_path / "first", 11, 150_000),
                              tmp_path / "first.tar")
    second = reference_archive(d, make_tree(tmp_path / "second", 12, 6_000_000),
                               tmp_path / "second.tar")
    d.start()
    d.run("tar", *TAR_OPTIONS, "-cf", d.nrew, "-C", tmp_path, "first")
    wait_closed(d)
    return d, first, second


def test_tar_killed_mid_write(tmp_path: Path) -> None:
    d, first, second = started(tmp_path)
    try:
        with tar_to_device(d, tmp_path / "second") as writer:
            assert wait_written(d, writer, len(first) + len(second) // 3), "tar ended early"
            writer.kill()
            assert writer.wait(TOOL_TIMEOUT) == -9
        wait_closed(d)
        assert unit_status(d) is not None and d.proc is not None and d.proc.poll() is None
        assert read_file(d, 0, tmp_path / "back0")[0] == first
        cut, _ = read_file(d, 1, tmp_path / "back1")
        assert second.startswith(cut) and len(cut) >= len(second) // 3 - 10240
        # the next open: an archive after the cut one, both files intact
        d.mt(d.nrew, "eod")
        d.run("tar", *TAR_OPTIONS, "-cf", d.nrew, "-C", tmp_path, "first")
        wait_closed(d)
        info = cassette_info(d)
        assert [r["filemark"] for r in info["recordings"]] == [True, True, True]
        assert [read_file(d, n, tmp_path / f"again{n}")[0] for n in range(3)] == [
            first, cut, first]
    finally:
        stop_checked(d)


def test_tar_killed_mid_read(tmp_path: Path) -> None:
    d, first, second = started(tmp_path)
    try:
        d.run("tar", *TAR_OPTIONS, "-cf", d.nrew, "-C", tmp_path, "second")
        wait_closed(d)
        d.mt(d.nrew, "rewind")
        d.mt(d.nrew, "fsf", "1")
        out = tmp_path / "out"
        out.mkdir()
        before = unit_status(d)
        assert before is not None
        with subprocess.Popen(["tar", "-xf", d.nrew, "-C", str(out)], env=d.env,
                              stderr=subprocess.PIPE) as reader:
            base = before["totals"]["read_bytes_total"]
            while reader.poll() is None:
                status = unit_status(d)
                if status and status["totals"]["read_bytes_total"] - base > len(second) // 3:
                    break
            reader.kill()
            assert reader.wait(TOOL_TIMEOUT) == -9, "tar ended before it was killed"
        wait_closed(d)
        status = unit_status(d)
        assert status is not None and status["open"] is None
        # the next opens: both files read back whole, and writing appends after them
        assert read_file(d, 0, tmp_path / "back0")[0] == first
        assert read_file(d, 1, tmp_path / "back1")[0] == second
        d.mt(d.nrew, "eod")
        d.run("tar", *TAR_OPTIONS, "-cf", d.nrew, "-C", tmp_path, "first")
        wait_closed(d)
        assert read_file(d, 2, tmp_path / "back2")[0] == first
        assert read_file(d, 1, tmp_path / "back1")[0] == second
    finally:
        stop_checked(d)

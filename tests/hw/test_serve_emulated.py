"""``backerd serve --emulate isa|parport``: tar and mt through the real backends."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from testkit.hwtest import EmulatingDaemon
from testkit.systemtest import parse_mt_status, same_tree


def tar_list(d: EmulatingDaemon, dev: str) -> list[str]:
    out = d.run("tar", "-tf", dev).stdout.decode()
    return sorted(line.rstrip("/") for line in out.splitlines())


def test_tar_round_trip(emulated_daemon: EmulatingDaemon, tree: Path) -> None:
    d = emulated_daemon
    d.run("tar", "-cf", d.rew, "-C", tree.parent, tree.name)
    out = d.tmp / "out"
    out.mkdir()
    d.run("tar", "-xf", d.rew, "-C", out)
    assert same_tree(tree, out / "src") == []
    hardware = d.status()["units"][0]["hardware"]
    assert hardware["modem"].startswith(d.emulate)
    assert hardware["counters"]["underruns"] == 0
    assert hardware["counters"]["overruns"] == 0
    assert hardware["counters"]["bytes_sent"] > 0 and hardware["counters"]["bytes_received"] > 0


def test_three_archives_fsf_and_reading_past_eod(emulated_daemon: EmulatingDaemon,
                                                 tmp_path: Path) -> None:
    d = emulated_daemon
    for i in range(3):
        part = tmp_path / f"part{i}"
        part.mkdir()
        (part / f"file{i}.txt").write_text(f"archive {i}\n" * (i + 1))
        d.run("tar", "-cf", d.nrew, "-C", tmp_path, part.name)
    status = parse_mt_status(d.mt(d.nrew, "status"))
    assert status["file"] == 3 and status["block"] == 0
    d.mt(d.nrew, "rewind")
    d.mt(d.nrew, "fsf", "2")
    assert tar_list(d, d.nrew) == ["part2", "part2/file2.txt"]
    d.mt(d.nrew, "rewind")
    assert tar_list(d, d.nrew) == ["part0", "part0/file0.txt"]
    # past the last archive: nothing more is read, then st's EIO
    d.mt(d.nrew, "eod")
    fd = os.open(d.nrew, os.O_RDONLY)
    try:
        got = []
        with pytest.raises(OSError) as err:
            for _ in range(3):
                got.append(os.read(fd, 10240))
        assert err.value.errno == errno.EIO and all(b == b"" for b in got)
    finally:
        os.close(fd)

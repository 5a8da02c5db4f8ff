"""Restarting on the mountpoint of a crashed daemon, and refusing a live one.

After kill -9 the old FUSE mount stays in the table, dead. A restart at once (while the
kernel still answers stat of the mountpoint from its attribute cache) must detach it
rather than mount over it: otherwise it stays underneath for good, and anything that
walks the directory later (backup tools, tmp cleaners) trips over ENOTCONN.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.faults import kill9
from testkit.systemtest import DEVICE_KIND, MODE, new_daemon, stop_checked

pytestmark = pytest.mark.skipif(DEVICE_KIND != "fuse", reason="the FUSE fallback's mountpoint")


def test_restart_after_kill9_detaches_the_dead_mount(tmp_path: Path) -> None:
    d = new_daemon(tmp_path, f'[[unit]]\nmode = "{MODE}"\n')
    d.start()
    try:
        d.mt(d.nrew, "status")  # the kernel now caches the mountpoint's attributes
        kill9(d)
        assert d.mounts() == ["fuse.backerd"]  # dead, still in the table
        d.start()
        assert d.mounts() == ["fuse.backerd"], "the dead mount is still underneath"
        assert "stale FUSE mount" in d.log.read_text()
        d.mt(d.nrew, "status")
    finally:
        stop_checked(d)
    assert d.mounts() == []


def test_a_second_daemon_on_a_live_mountpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / "first").mkdir()
    first = new_daemon(tmp_path / "first", f'[[unit]]\nmode = "{MODE}"\n')
    (tmp_path / "second").mkdir()
    second = new_daemon(tmp_path / "second", f'[[unit]]\nmode = "{MODE}"\n')
    second.fuse_root = first.fuse_root
    first.start()
    try:
        with pytest.raises(AssertionError, match="exited with 7 at start"):
            second.start()
        assert "already a live FUSE mount" in second.log.read_text()
        assert first.mounts() == ["fuse.backerd"]
        first.mt(first.nrew, "status")  # the first one still serves
    finally:
        stop_checked(first)

"""Reading the mount table: which filesystems sit on a mountpoint (stacked, escaped)."""

from __future__ import annotations

from pathlib import Path

from backerd.daemon.mount import mounts_at


def _line(mount_id: int, point: bytes, fstype: bytes, optional: bytes = b"") -> bytes:
    fields = [str(mount_id).encode(), b"27", b"0:62", b"/", point, b"rw,nosuid,nodev"]
    if optional:
        fields.append(optional)
    return b" ".join([*fields, b"-", fstype, b"backerd", b"rw,user_id=0"])


def test_stacked_mounts_are_listed_bottom_first(tmp_path: Path) -> None:
    point = str(tmp_path / "dev").encode()
    table = b"\n".join([
        _line(22, b"/", b"ext4", b"shared:1"),
        _line(51, point, b"fuse.backerd"),
        _line(52, point + b"x", b"tmpfs"),  # a prefix of another path is not the path
        _line(60, point, b"tmpfs", b"master:3 propagate_from:2"),
    ])
    assert mounts_at(tmp_path / "dev", table) == ["fuse.backerd", "tmpfs"]


def test_escaped_mountpoints_match_their_real_names(tmp_path: Path) -> None:
    real = tmp_path / "a dir\\with\tescapes"
    escaped = (str(real).encode().replace(b"\\", b"\\134").replace(b" ", b"\\040")
               .replace(b"\t", b"\\011"))
    assert mounts_at(real, _line(70, escaped, b"fuse.backerd")) == ["fuse.backerd"]
    assert mounts_at(real, _line(70, str(real).encode(), b"fuse.backerd")) == []


def test_short_or_garbled_lines_are_skipped(tmp_path: Path) -> None:
    point = str(tmp_path).encode()
    table = b"\n".join([b"", b"garbage", b"1 2 3 4 " + point + b" 6 7 8 9 10",
                        _line(9, point, b"fuse.backerd")])
    assert mounts_at(tmp_path, table) == ["fuse.backerd"]

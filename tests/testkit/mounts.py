"""Mounts the tests make themselves: a small tmpfs (a full disk, a read-only directory,
a directory nothing can delete), and their removal."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` on ``where`` (created if missing) for the block; skips the test
    when mounting is not allowed."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                           str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False,
                       stderr=subprocess.DEVNULL)


def detach_under(root: Path) -> None:
    """Lazily unmount every mount below ``root``, the topmost first: for a mount point
    that was moved (its directory renamed) while mounted."""
    prefix = str(root) + "/"
    for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
        point = line.split()[1]
        if point.startswith(prefix):
            subprocess.run(["umount", "-l", point], check=False)

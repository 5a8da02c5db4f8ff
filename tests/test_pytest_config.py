"""The suite's own pytest configuration, run against a temp root an earlier, interrupted
session left dirty.

pytest deletes the run directories of older sessions when a session ends. A mount left
inside one (a daemon killed before it unmounted, a tmpfs a killed test made) cannot be
deleted; with every warning an error, that used to fail a session whose tests had all
passed, with no summary line. The configuration reports it as a warning instead.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.mounts import detach_under, tmpfs

PROJECT = Path(__file__).resolve().parent.parent

TINY_TEST = """
def test_uses_a_temp_directory(tmp_path):
    (tmp_path / "x").write_text("x")
"""


@pytest.fixture
def busy_old_run(tmp_path: Path) -> Iterator[Path]:
    """A temp root holding five earlier run directories; the oldest has a tmpfs mounted
    inside it, so it cannot be deleted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    root = tmp_path / "temproot"
    runs = root / f"pytest-of-{getpass.getuser()}"
    for number in range(5):
        (runs / f"pytest-{number}").mkdir(parents=True)
    runs.chmod(0o700)
    try:
        with tmpfs(runs / "pytest-0" / "busy", "1m"):
            yield root
    finally:
        detach_under(root)  # pytest renamed the old run directory around the mount


def test_an_undeletable_earlier_run_is_a_warning_not_a_failure(
        tmp_path: Path, busy_old_run: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_tiny.py").write_text(TINY_TEST)
    env = {**os.environ, "PYTEST_DEBUG_TEMPROOT": str(busy_old_run)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(PROJECT / "pyproject.toml"),
         "--rootdir", str(suite), "-p", "no:cacheprovider", str(suite / "test_tiny.py")],
        capture_output=True, text=True, env=env, cwd=suite, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout
    assert "(rm_rf) error removing" in done.stdout

"""Shared test configuration."""

import errno
import getpass
import os
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

DATA = Path(__file__).resolve().parent / "data"

# CI runs the property tests with a fixed seed so a landing is reproducible; developers'
# runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def pytest_configure(config: pytest.Config) -> None:
    """Detach dead FUSE mounts that an earlier, interrupted run left in pytest's temp
    root. pytest deletes old run directories when a session ends; a dead mount inside
    one makes that fail, and the failure would end this session with an error."""
    from backerd.daemon.mount import FS_TYPE, mount_table, probe, read_mountinfo

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        return
    root = os.fsencode(os.path.realpath(Path(tempfile.gettempdir()) / f"pytest-of-{user}"))
    for point, kind in reversed(mount_table(read_mountinfo())):  # the topmost layer first
        if kind == FS_TYPE and point.startswith(root + b"/"):
            path = Path(os.fsdecode(point))
            if _probe_briefly(probe, path) == errno.ENOTCONN:
                subprocess.run(["umount", "-l", str(path)], check=False,
                               stderr=subprocess.DEVNULL)


def _probe_briefly(probe: Callable[[Path], int], path: Path) -> int | None:
    """``probe(path)``, or None when the server behind the mount does not answer within
    a few seconds (a stopped process): such a mount is left alone, never waited for."""
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(probe(path)), daemon=True)
    worker.start()
    worker.join(3.0)
    return result[0] if result else None

"""Real tools against a real daemon: fixtures that run ``backerd serve`` as a subprocess.

The device kind is a parameter: BACKERD_TEST_DEVICE=fuse (default: the FUSE fallback,
nodes are files on a mount under the test's tmp dir) or =cuse (real char devices
/dev/backer0 and /dev/nbacker0; tests/vm runs this suite that way inside a QEMU guest).
Skipped, with the reason, when mt-st, GNU tar, cpio or the device kind's kernel
interface is missing.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the tests import systemtest

from systemtest import DEVICE_KIND, MISSING, MODE, Daemon  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.system)
            if MISSING:
                item.add_marker(pytest.mark.skip(reason="needs " + ", ".join(MISSING)))


def _daemon(tmp_path: Path, units: str, cassette_option: bool = True) -> Iterator[Daemon]:
    state, run = tmp_path / "state", tmp_path / "run"
    state.mkdir()
    config_file = tmp_path / "backerd.toml"
    config_file.write_text(f'transport = "{DEVICE_KIND}"\n{units}')
    env = dict(os.environ, BACKERD_STATE_DIR=str(state), BACKERD_RUNTIME_DIR=str(run))
    env.pop("NOTIFY_SOCKET", None)
    d = Daemon(tmp=tmp_path, cassette=tmp_path / "tape.cassette", fuse_root=tmp_path / "dev",
               config_file=config_file, env=env, log=tmp_path / "backerd.log",
               cassette_option=cassette_option)
    d.start()
    try:
        yield d
    finally:
        if d.proc is not None:
            rc = d.stop()
            assert rc == 0, f"backerd exited {rc} on SIGTERM:\n{d.log_tail()}"
        d.unmount()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A running daemon on a fresh cassette; stopped (must exit 0) and unmounted after."""
    yield from _daemon(tmp_path, f'[[unit]]\nmode = "{MODE}"\n')


@pytest.fixture
def two_units(tmp_path: Path) -> Iterator[Daemon]:
    """Units 0 (paced at real tape speed) and 1 (as fast as the machine goes)."""
    yield from _daemon(
        tmp_path,
        f'[[unit]]\nmode = "{MODE}"\nrealtime = true\ncassette = "{tmp_path}/tape.cassette"\n'
        f'[[unit]]\nnumber = 1\nmode = "{MODE}"\ncassette = "{tmp_path}/one.cassette"\n',
        cassette_option=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small directory tree to archive: text, binary, empty file, symlink, subdir."""
    rng = random.Random(1234)
    root = tmp_path / "src"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "hello.txt").write_text("hello, tape\n")
    (root / "sub" / "odd.bin").write_bytes(rng.randbytes(123_457))
    (root / "sub" / "deeper" / "zeros.bin").write_bytes(bytes(70_000))
    (root / "empty").write_bytes(b"")
    (root / "link").symlink_to("hello.txt")
    return root



"""Real tools against a real daemon: fixtures that run ``backerd serve`` as a subprocess.

The device kind is a parameter: BACKERD_TEST_DEVICE=fuse (default: the FUSE fallback,
nodes are files on a mount under the test's tmp dir) or =cuse (real char devices
/dev/backer0 and /dev/nbacker0; tests/vm runs this suite that way inside a QEMU guest).
Skipped, with the reason, when mt-st, GNU tar, cpio or the device kind's kernel
interface is missing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.systemtest import (
    MODE,
    Daemon,
    mark_system_tests,
    new_daemon,
    parse_mt_status,
    stop_checked,
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_system_tests(Path(__file__).parent, items)


@pytest.fixture(scope="session")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon for the session: starting one costs ~1 s here but ~30 s in a TCG guest."""
    d = new_daemon(tmp_path_factory.mktemp("backerd"), f'[[unit]]\nmode = "{MODE}"\n')
    try:
        yield d
    finally:
        stop_checked(d)


def _reset(d: Daemon) -> None:
    """Bring the shared daemon to a blank cassette at BOT (restarting it if need be)."""
    if d.proc is not None and d.proc.poll() is None:
        try:
            d.mt(d.nrew, "rewind")
            d.mt(d.nrew, "erase")  # st: erase from the head (BOT) to the end
            status = parse_mt_status(d.mt(d.nrew, "status"))
            if (status["file"], status["block"]) == (0, 0):
                return
        except AssertionError:
            pass
        d.kill()  # a previous test left it unusable: start afresh
    elif d.proc is not None:
        d.proc = None
        d.unmount()
    d.cassette.unlink(missing_ok=True)
    d.start()


@pytest.fixture
def daemon(shared_daemon: Daemon, tmp_path: Path) -> Iterator[Daemon]:
    """The running daemon on a blank cassette at BOT; ``daemon.tmp`` is the test's scratch.

    Tests may stop and restart it; one left stopped is started again for the next test.
    """
    _reset(shared_daemon)
    shared_daemon.tmp = tmp_path
    yield shared_daemon
    if shared_daemon.proc is None:
        shared_daemon.start()


@pytest.fixture
def no_shared_daemon(shared_daemon: Daemon) -> None:
    """Stop the shared daemon (CUSE node names are machine-wide); the next test restarts it."""
    stop_checked(shared_daemon)


@pytest.fixture
def two_units(no_shared_daemon: None, tmp_path: Path) -> Iterator[Daemon]:
    """Units 0 (paced at real tape speed) and 1 (as fast as the machine goes)."""
    d = new_daemon(
        tmp_path,
        f'[[unit]]\nmode = "{MODE}"\nrealtime = true\ncassette = "{tmp_path}/tape.cassette"\n'
        f'[[unit]]\nnumber = 1\nmode = "{MODE}"\ncassette = "{tmp_path}/one.cassette"\n',
        cassette_option=False,
    )
    d.start()
    try:
        yield d
    finally:
        stop_checked(d)


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



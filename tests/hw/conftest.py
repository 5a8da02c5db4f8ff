"""Fixtures of the hardware tests: emulated units in-process and ``serve --emulate``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.hwtest import EmulatingDaemon, new_daemon
from testkit.systemtest import MISSING


@pytest.fixture(params=["isa", "parport"])
def emulated_daemon(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmulatingDaemon]:
    if MISSING:
        pytest.skip("needs " + ", ".join(MISSING))
    d = new_daemon(tmp_path, request.param)
    d.start()
    try:
        yield d
    finally:
        if d.proc is not None:
            rc = d.stop()
            assert rc == 0, f"backerd exited {rc}:\n{d.log_tail()}"
        d.unmount()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small tree to archive: text, binary, empty file, symlink, subdirectories."""
    import random

    rng = random.Random(99)
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_text("hello, card\n")
    (root / "sub" / "odd.bin").write_bytes(rng.randbytes(123_457))
    (root / "empty").write_bytes(b"")
    (root / "link").symlink_to("hello.txt")
    return root

"""Fixtures of the hardware tests: emulated units in-process and ``serve --emulate``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.hwtest import EmulatingDaemon, running_daemon


@pytest.fixture(params=["isa", "parport"])
def emulated_daemon(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmulatingDaemon]:
    yield from running_daemon(tmp_path, request.param)


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

"""Reads and writes the Drive says will not wait are served on the loop, others off it."""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Any

import pytest
import trio

from backerd.daemon import config as cfg
from backerd.daemon.node import Unit
from backerd.errors import TapeError


class BufferingDrive:
    """A drive that answers ``would_wait`` from a flag and notes each call's thread."""

    def __init__(self) -> None:
        self.waits = True
        self.threads: list[tuple[str, int]] = []
        self.asked: list[tuple[bool, int]] = []

    def would_wait(self, writing: bool, size: int) -> bool:
        self.asked.append((writing, size))
        return self.waits

    def open(self, rewind_on_close: bool, flags: int) -> None:
        self.threads.append(("open", threading.get_ident()))

    def read(self, size: int, exact: bool = True) -> bytes:
        self.threads.append(("read", threading.get_ident()))
        return b"r" * size

    def write(self, data: bytes) -> int:
        self.threads.append(("write", threading.get_ident()))
        if data == b"fail":
            raise TapeError("a deferred write error", errno=errno.ENOSPC)
        return len(data)

    def ioctl(self, cmd: int, arg: bytes, out_size: int, *, privileged: bool = False) -> bytes:
        return b""

    def close(self) -> None:
        self.threads.append(("close", threading.get_ident()))

    def status(self) -> dict[str, Any]:
        return {}


def test_calls_that_do_not_wait_run_on_the_loop() -> None:
    drive = BufferingDrive()
    unit = Unit(cfg.UnitConfig(number=0, cassette=Path("/nonexistent/0.img")), drive)
    node = unit.nodes["nbacker0"]
    loop_thread = threading.get_ident()

    async def main() -> None:
        await node.open(0)
        assert await node.write(b"slow") == 4  # the drive says it may wait
        drive.waits = False
        assert await node.write(b"fast") == 4
        assert await node.read(3, True) == b"rrr"
        with pytest.raises(TapeError) as e:  # an error served inline keeps its errno
            await node.write(b"fail")
        assert e.value.errno == errno.ENOSPC
        await node.release()  # close always asks a worker thread

    trio.run(main)
    on_loop = [name for name, thread in drive.threads if thread == loop_thread]
    assert on_loop == ["write", "read", "write"]
    assert [name for name, _ in drive.threads] == [
        "open", "write", "write", "read", "write", "close"]
    assert drive.asked == [(True, 4), (True, 4), (False, 3), (True, 4)]


def test_calls_at_once_do_nothing_when_they_may_wait_or_the_drive_is_busy() -> None:
    drive = BufferingDrive()
    unit = Unit(cfg.UnitConfig(number=0, cassette=Path("/nonexistent/0.img")), drive)
    node = unit.nodes["nbacker0"]

    async def main() -> None:
        await node.open(0)
        assert node.write_now(b"slow") is None  # the drive says it may wait
        drive.waits = False
        assert node.write_now(b"fast") == 4
        assert node.read_now(2, True) == b"rr"
        with pytest.raises(TapeError) as e:
            node.write_now(b"fail")
        assert e.value.errno == errno.ENOSPC
        async with unit.lock:  # another call holds the drive: not even asked
            assert node.write_now(b"held") is None
            assert node.read_now(2, True) is None
        assert not unit.lock.locked()

    trio.run(main)
    assert [name for name, _ in drive.threads] == ["open", "write", "read", "write"]
    assert drive.asked == [(True, 4), (True, 4), (False, 2), (True, 4)]

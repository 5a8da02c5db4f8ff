"""An open right after another program's close(2): FUSE sends RELEASE only after close(2)
has returned, so the next open may arrive first. It waits for that RELEASE, as st's
close would have finished first; a drive still in use stays EBUSY."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import trio

from backerd.daemon import config as cfg
from backerd.daemon import node as node_module
from backerd.daemon.node import Unit
from backerd.errors import TapeError
from backerd.tape.drive import Drive
from backerd.tape.medium import MemoryMedium


def _unit() -> Unit:
    return Unit(cfg.UnitConfig(number=0, cassette=Path("/nonexistent/0.img")),
                Drive(MemoryMedium()))


def test_open_after_a_close_waits_for_the_release_of_the_other_node() -> None:
    unit = _unit()
    rewinding, other = unit.nodes["backer0"], unit.nodes["nbacker0"]

    async def main() -> None:
        await rewinding.open(os.O_WRONLY)
        assert await rewinding.write(b"x" * 10240) == 10240
        await rewinding.flush()  # close(2) returned; RELEASE still to come

        async def late_release() -> None:
            await trio.sleep(0.2)
            await rewinding.release()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(late_release)
            before = trio.current_time()
            await other.open(os.O_RDONLY)
            assert trio.current_time() - before >= 0.2
        assert unit.open_node == "nbacker0"
        assert await other.read(10240, True) == b"x" * 10240  # rewound at the close
        await other.release()

    trio.run(main)


def test_a_drive_still_in_use_is_ebusy_at_once() -> None:
    unit = _unit()

    async def main() -> None:
        await unit.nodes["backer0"].open(os.O_RDWR)
        before = trio.current_time()
        with pytest.raises(TapeError) as err:
            await unit.nodes["nbacker0"].open(os.O_RDONLY)
        assert err.value.errno == errno.EBUSY
        assert trio.current_time() - before < node_module.CLOSE_GRACE / 2

    trio.run(main)


def test_a_release_that_never_comes_ends_in_ebusy_after_the_grace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_module, "CLOSE_GRACE", 0.3)
    unit = _unit()

    async def main() -> None:
        await unit.nodes["backer0"].open(os.O_RDWR)
        await unit.nodes["backer0"].flush()  # a dup of the fd may still hold it open
        before = trio.current_time()
        with pytest.raises(TapeError) as err:
            await unit.nodes["nbacker0"].open(os.O_RDONLY)
        assert err.value.errno == errno.EBUSY
        assert trio.current_time() - before >= 0.3

    trio.run(main)

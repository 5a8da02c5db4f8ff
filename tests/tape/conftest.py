"""Helpers for the tape tests: a Drive over a MemoryMedium, and st's ioctls as tools
issue them (argument bytes packed by testkit.stwire, written from the st-semantics notes,
not with our own mtio module)."""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from typing import Any

import pytest

from backerd.errors import TapeError
from backerd.tape.drive import Drive
from backerd.tape.medium import MemoryMedium
from testkit.stwire import MTIOCGET, MTIOCPOS, MTIOCTOP, MTPOS, mtop, parse_mtget


def mt(drive: Drive, op: str, count: int = 1, *, privileged: bool = False) -> None:
    """ioctl(fd, MTIOCTOP, {op, count}) as mt/tar issue it."""
    drive.ioctl(MTIOCTOP, mtop(op, count), 0, privileged=privileged)


def mtget(drive: Drive) -> dict[str, Any]:
    """ioctl(fd, MTIOCGET) decoded with the notes' layout."""
    return parse_mtget(drive.ioctl(MTIOCGET, b"", 48))


def mtpos(drive: Drive) -> int:
    return struct.unpack(MTPOS, drive.ioctl(MTIOCPOS, b"", 8))[0]


def errno_of(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int | None:
    """The errno fn fails with, or None when it succeeds."""
    try:
        fn(*args, **kwargs)
    except TapeError as exc:
        return exc.errno
    return None


def where(drive: Drive) -> tuple[int, int]:
    g = mtget(drive)
    return g["file"], g["block"]


@pytest.fixture
def tape() -> Callable[..., tuple[Drive, MemoryMedium]]:
    """make(files=None, **medium_kwargs) -> (drive, medium); files are lists of blocks."""

    def make(files: list[list[bytes]] | None = None, **kwargs: Any) -> tuple[Drive, MemoryMedium]:
        drive_kwargs = {k: kwargs.pop(k) for k in ("default_block_size", "options") if k in kwargs}
        medium = MemoryMedium.from_files(files, **kwargs) if files is not None else (
            MemoryMedium(**kwargs)
        )
        return Drive(medium, **drive_kwargs), medium

    return make


@pytest.fixture
def st() -> Any:
    """This module's helpers (mt, mtget, mtpos, errno_of, where) for tests."""
    return sys.modules[__name__]

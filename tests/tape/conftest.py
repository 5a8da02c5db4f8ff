"""Helpers for the tape tests: a Drive over a MemoryMedium, and st's ioctls as tools
issue them (argument bytes packed with formats written from the st-semantics notes,
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

# x86-64 ioctl numbers and struct layouts as the notes give them.
MTIOCTOP = 0x40086D01
MTIOCGET = 0x80306D02
MTIOCPOS = 0x80086D03
MTOP = "<hxxi"  # short mt_op @0, int mt_count @4 -> 8 bytes
MTGET = "<qqqqqii"  # 5 longs, then int mt_fileno @40, int mt_blkno @44 -> 48 bytes
MTPOS = "<q"

OPS = dict(
    MTRESET=0, MTFSF=1, MTBSF=2, MTFSR=3, MTBSR=4, MTWEOF=5, MTREW=6, MTOFFL=7, MTNOP=8,
    MTRETEN=9, MTBSFM=10, MTFSFM=11, MTEOM=12, MTERASE=13, MTRAS1=14, MTRAS2=15, MTRAS3=16,
    MTSETBLK=20, MTSETDENSITY=21, MTSEEK=22, MTTELL=23, MTSETDRVBUFFER=24, MTFSS=25,
    MTBSS=26, MTWSM=27, MTLOCK=28, MTUNLOCK=29, MTLOAD=30, MTUNLOAD=31, MTCOMPRESSION=32,
    MTSETPART=33, MTMKPART=34, MTWEOFI=35,
)
GMT = dict(
    EOF=0x80000000, BOT=0x40000000, EOT=0x20000000, SM=0x10000000, EOD=0x08000000,
    WR_PROT=0x04000000, ONLINE=0x01000000, D_6250=0x00800000, D_1600=0x00400000,
    D_800=0x00200000, DR_OPEN=0x00040000, IM_REP_EN=0x00010000, CLN=0x00008000,
)


def mt(drive: Drive, op: str, count: int = 1, *, privileged: bool = False) -> None:
    """ioctl(fd, MTIOCTOP, {op, count}) as mt/tar issue it."""
    drive.ioctl(MTIOCTOP, struct.pack(MTOP, OPS[op], count), 0, privileged=privileged)


def mtget(drive: Drive) -> dict[str, Any]:
    """ioctl(fd, MTIOCGET) decoded with the notes' layout."""
    raw = drive.ioctl(MTIOCGET, b"", 48)
    assert len(raw) == 48
    t, resid, dsreg, gstat, erreg, fileno, blkno = struct.unpack(MTGET, raw)
    return dict(
        type=t, resid=resid, dsreg=dsreg, gstat=gstat, erreg=erreg, file=fileno, block=blkno,
        bits={name for name, bit in GMT.items() if gstat & bit},
        block_size=dsreg & 0xFFFFFF, density=(dsreg >> 24) & 0xFF,
    )


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
    """This module's helpers (mt, mtget, mtpos, errno_of, where, OPS, GMT) for tests."""
    return sys.modules[__name__]

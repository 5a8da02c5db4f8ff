"""The st ABI against independent references: ctypes structs (the platform C ABI) and
the numbers written in the st-semantics notes."""

from __future__ import annotations

import ctypes
import struct
import sys

import pytest

from backerd.tape import mtio

x86_64_only = pytest.mark.skipif(
    ctypes.sizeof(ctypes.c_long) != 8 or sys.byteorder != "little",
    reason="ctypes reference needs an LP64 little-endian host",
)


class CMtop(ctypes.Structure):
    _fields_ = [("mt_op", ctypes.c_short), ("mt_count", ctypes.c_int)]


class CMtget(ctypes.Structure):
    _fields_ = [
        ("mt_type", ctypes.c_long), ("mt_resid", ctypes.c_long), ("mt_dsreg", ctypes.c_long),
        ("mt_gstat", ctypes.c_long), ("mt_erreg", ctypes.c_long),
        ("mt_fileno", ctypes.c_int), ("mt_blkno", ctypes.c_int),
    ]


class CMtpos(ctypes.Structure):
    _fields_ = [("mt_blkno", ctypes.c_long)]


class CMtget32(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in
                ("type", "resid", "dsreg", "gstat", "erreg", "fileno", "blkno")]


def _ioc(direction: int, nr: int, size: int) -> int:
    # asm-generic/ioctl.h: dir<<30 | size<<16 | type<<8 | nr
    return (direction << 30) | (size << 16) | (ord("m") << 8) | nr


def test_ioctl_numbers_match_the_notes() -> None:
    assert mtio.MTIOCTOP == 0x40086D01
    assert mtio.MTIOCGET == 0x80306D02
    assert mtio.MTIOCPOS == 0x80086D03
    assert mtio.MTIOCGET32 == 0x801C6D02
    assert mtio.MTIOCPOS32 == 0x80046D03


@x86_64_only
def test_ioctl_numbers_match_ctypes_sizes() -> None:
    assert _ioc(1, 1, ctypes.sizeof(CMtop)) == mtio.MTIOCTOP
    assert _ioc(2, 2, ctypes.sizeof(CMtget)) == mtio.MTIOCGET
    assert _ioc(2, 3, ctypes.sizeof(CMtpos)) == mtio.MTIOCPOS


@x86_64_only
def test_struct_sizes_and_offsets() -> None:
    assert (mtio.MTOP_SIZE, mtio.MTGET_SIZE, mtio.MTPOS_SIZE) == (8, 48, 8)
    assert ctypes.sizeof(CMtop) == 8 and ctypes.sizeof(CMtget) == 48
    assert CMtop.mt_count.offset == 4
    assert (CMtget.mt_fileno.offset, CMtget.mt_blkno.offset) == (40, 44)
    assert mtio.MTGET32_SIZE == ctypes.sizeof(CMtget32) == 28


@x86_64_only
@pytest.mark.parametrize("op,count", [(1, 3), (2, -1), (24, 0x10000010), (35, 0x7FFFFFFF)])
def test_mtop_pack_matches_ctypes(op: int, count: int) -> None:
    assert mtio.MtOp(op, count).pack() == bytes(CMtop(op, count))
    assert mtio.MtOp.unpack(bytes(CMtop(op, count))) == mtio.MtOp(op, count)


@x86_64_only
def test_mtget_pack_matches_ctypes() -> None:
    values = (0x72, 0, 0x19000000 | 10240, 0x41010000, 3, -1, -1)
    got = mtio.MtGet(*values)
    assert got.pack() == bytes(CMtget(*values))
    assert mtio.MtGet.unpack(bytes(CMtget(*values))) == got
    assert got.block_size == 10240 and got.density == 0x19


@x86_64_only
def test_mtget32_keeps_bit_patterns() -> None:
    got = mtio.MtGet(0x72, 0, 0x29000200, 0xC1010000, 0, 2, -1)
    ref = CMtget32.from_buffer_copy(got.pack32())
    assert ref.type == 0x72 and ref.fileno == 2 and ref.blkno == -1
    assert ref.gstat & 0xFFFFFFFF == 0xC1010000
    assert ref.dsreg & 0xFFFFFFFF == 0x29000200


@x86_64_only
def test_mtpos_pack_matches_ctypes() -> None:
    assert mtio.MtPos(123456789).pack() == bytes(CMtpos(123456789))
    assert mtio.MtPos(7).pack32() == struct.pack("<i", 7)


def test_op_numbers_match_mtio_h() -> None:
    expected = {
        "MTRESET": 0, "MTFSF": 1, "MTBSF": 2, "MTFSR": 3, "MTBSR": 4, "MTWEOF": 5, "MTREW": 6,
        "MTOFFL": 7, "MTNOP": 8, "MTRETEN": 9, "MTBSFM": 10, "MTFSFM": 11, "MTEOM": 12,
        "MTERASE": 13, "MTRAS1": 14, "MTRAS2": 15, "MTRAS3": 16, "MTSETBLK": 20,
        "MTSETDENSITY": 21, "MTSEEK": 22, "MTTELL": 23, "MTSETDRVBUFFER": 24, "MTFSS": 25,
        "MTBSS": 26, "MTWSM": 27, "MTLOCK": 28, "MTUNLOCK": 29, "MTLOAD": 30, "MTUNLOAD": 31,
        "MTCOMPRESSION": 32, "MTSETPART": 33, "MTMKPART": 34, "MTWEOFI": 35,
    }
    assert {name: getattr(mtio, name) for name in expected} == expected
    assert {v: k for k, v in expected.items()} == mtio.OP_NAMES


def test_gstat_bits_match_mtio_h() -> None:
    expected = {
        "EOF": 0x80000000, "BOT": 0x40000000, "EOT": 0x20000000, "SM": 0x10000000,
        "EOD": 0x08000000, "WR_PROT": 0x04000000, "ONLINE": 0x01000000, "D_6250": 0x00800000,
        "D_1600": 0x00400000, "D_800": 0x00200000, "DR_OPEN": 0x00040000,
        "IM_REP_EN": 0x00010000, "CLN": 0x00008000,
    }
    assert {name: getattr(mtio, "GMT_" + name) for name in expected} == expected
    assert mtio.gstat_names(0x41010000) == ["BOT", "ONLINE", "IM_REP_EN"]


def test_option_bits_match_mtio_h() -> None:
    expected = {
        "BUFFER_WRITES": 0x1, "ASYNC_WRITES": 0x2, "READ_AHEAD": 0x4, "DEBUGGING": 0x8,
        "TWO_FM": 0x10, "FAST_MTEOM": 0x20, "AUTO_LOCK": 0x40, "DEF_WRITES": 0x80,
        "CAN_BSR": 0x100, "NO_BLKLIMS": 0x200, "CAN_PARTITIONS": 0x400, "SCSI2LOGICAL": 0x800,
        "SYSV": 0x1000, "NOWAIT": 0x2000, "SILI": 0x4000, "NOWAIT_EOF": 0x8000,
    }
    assert {name: getattr(mtio, "MT_ST_" + name) for name in expected} == expected
    assert mtio.MT_ISSCSI2 == 0x72 and mtio.MT_ISSCSI1 == 0x71


def test_ioc_field_decoding() -> None:
    assert mtio.ioc_type(0x80306D02) == ord("m")
    assert mtio.ioc_nr(0x80306D02) == 2
    assert mtio.ioc_size(0x80306D02) == 48
    assert mtio.ioc_dir(0x40086D01) == mtio.IOC_WRITE

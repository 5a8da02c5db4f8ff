"""st's ioctls as mt and tar issue them: numbers and struct layouts of x86-64 Linux, written
from the st-semantics notes (not with backerd.tape.mtio, which they check)."""

from __future__ import annotations

import struct
from typing import Any

MTIOCTOP = 0x40086D01  # _IOW('m', 1, struct mtop)
MTIOCGET = 0x80306D02  # _IOR('m', 2, struct mtget)
MTIOCPOS = 0x80086D03  # _IOR('m', 3, struct mtpos)
MTOP = "<hxxi"  # short mt_op @0, int mt_count @4 -> 8 bytes
MTGET = "<qqqqqii"  # 5 longs, then int mt_fileno @40, int mt_blkno @44 -> 48 bytes
MTGET_SIZE = struct.calcsize(MTGET)
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
MT_ISSCSI2 = 0x72  # mt_type of a SCSI-2 tape


def mtop(op: str | int, count: int = 1) -> bytes:
    """The struct mtop argument of MTIOCTOP: an op by name (``"MTREW"``) or number."""
    return struct.pack(MTOP, OPS[op] if isinstance(op, str) else op, count)


def parse_mtop(arg: bytes) -> tuple[int, int]:
    """(mt_op, mt_count) of an MTIOCTOP argument."""
    op, count = struct.unpack(MTOP, arg)
    return op, count


def mtget(*, type: int = MT_ISSCSI2, resid: int = 0, dsreg: int = 0, gstat: int = 0,
          erreg: int = 0, fileno: int = 0, blkno: int = 0) -> bytes:
    """A struct mtget as a driver answers MTIOCGET (for fake drives)."""
    return struct.pack(MTGET, type, resid, dsreg, gstat, erreg, fileno, blkno)


def parse_mtget(raw: bytes) -> dict[str, Any]:
    """MTIOCGET's answer decoded with the notes' layout."""
    assert len(raw) == MTGET_SIZE, f"MTIOCGET answered {len(raw)} bytes"
    t, resid, dsreg, gstat, erreg, fileno, blkno = struct.unpack(MTGET, raw)
    return dict(
        type=t, resid=resid, dsreg=dsreg, gstat=gstat, erreg=erreg, file=fileno, block=blkno,
        bits={name for name, bit in GMT.items() if gstat & bit},
        block_size=dsreg & 0xFFFFFF, density=(dsreg >> 24) & 0xFF,
    )

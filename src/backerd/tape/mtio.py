"""The st ioctl ABI (linux/mtio.h), x86-64 layout.

Theory of operation: constants are copied from mtio.h; the three structs are packed
and unpacked with fixed little-endian formats so the daemon can hand raw ioctl
argument bytes straight to the Drive and send its reply bytes back unchanged. The
32-bit compat forms of MTIOCGET/MTIOCPOS are included because a 32-bit process on a
64-bit kernel sends those numbers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# -- _IOC encoding (asm-generic/ioctl.h) -------------------------------------------------

IOC_NONE, IOC_WRITE, IOC_READ = 0, 1, 2
_NRSHIFT, _TYPESHIFT, _SIZESHIFT, _DIRSHIFT = 0, 8, 16, 30


def ioc(direction: int, type_: int, nr: int, size: int) -> int:
    return (direction << _DIRSHIFT) | (type_ << _TYPESHIFT) | (nr << _NRSHIFT) | (
        size << _SIZESHIFT
    )


def ioc_type(cmd: int) -> int:
    return (cmd >> _TYPESHIFT) & 0xFF


def ioc_nr(cmd: int) -> int:
    return (cmd >> _NRSHIFT) & 0xFF


def ioc_size(cmd: int) -> int:
    return (cmd >> _SIZESHIFT) & 0x3FFF


def ioc_dir(cmd: int) -> int:
    return (cmd >> _DIRSHIFT) & 0x3


MTIO_TYPE = ord("m")

# -- structs ----------------------------------------------------------------------------

MTOP_FORMAT = "<h2xi"  # short mt_op; int mt_count
MTGET_FORMAT = "<qqqqqii"  # long type, resid, dsreg, gstat, erreg; int fileno, blkno
MTPOS_FORMAT = "<q"  # long mt_blkno
MTGET32_FORMAT = "<iiiiiii"
MTPOS32_FORMAT = "<i"

MTOP_SIZE = struct.calcsize(MTOP_FORMAT)
MTGET_SIZE = struct.calcsize(MTGET_FORMAT)
MTPOS_SIZE = struct.calcsize(MTPOS_FORMAT)
MTGET32_SIZE = struct.calcsize(MTGET32_FORMAT)
MTPOS32_SIZE = struct.calcsize(MTPOS32_FORMAT)

MTIOCTOP = ioc(IOC_WRITE, MTIO_TYPE, 1, MTOP_SIZE)  # 0x40086d01
MTIOCGET = ioc(IOC_READ, MTIO_TYPE, 2, MTGET_SIZE)  # 0x80306d02
MTIOCPOS = ioc(IOC_READ, MTIO_TYPE, 3, MTPOS_SIZE)  # 0x80086d03
MTIOCGET32 = ioc(IOC_READ, MTIO_TYPE, 2, MTGET32_SIZE)  # 0x801c6d02
MTIOCPOS32 = ioc(IOC_READ, MTIO_TYPE, 3, MTPOS32_SIZE)  # 0x80046d03

# -- MTIOCTOP operations ----------------------------------------------------------------

MTRESET, MTFSF, MTBSF, MTFSR, MTBSR, MTWEOF, MTREW, MTOFFL = range(8)
MTNOP, MTRETEN, MTBSFM, MTFSFM, MTEOM, MTERASE, MTRAS1, MTRAS2, MTRAS3 = range(8, 17)
MTSETBLK, MTSETDENSITY, MTSEEK, MTTELL, MTSETDRVBUFFER = range(20, 25)
MTFSS, MTBSS, MTWSM, MTLOCK, MTUNLOCK, MTLOAD, MTUNLOAD = range(25, 32)
MTCOMPRESSION, MTSETPART, MTMKPART, MTWEOFI = range(32, 36)

_OPS = (
    "MTRESET MTFSF MTBSF MTFSR MTBSR MTWEOF MTREW MTOFFL MTNOP MTRETEN MTBSFM MTFSFM MTEOM "
    "MTERASE MTRAS1 MTRAS2 MTRAS3 MTSETBLK MTSETDENSITY MTSEEK MTTELL MTSETDRVBUFFER MTFSS "
    "MTBSS MTWSM MTLOCK MTUNLOCK MTLOAD MTUNLOAD MTCOMPRESSION MTSETPART MTMKPART MTWEOFI"
)
OP_NAMES: dict[int, str] = {globals()[name]: name for name in _OPS.split()}

# -- mt_type ----------------------------------------------------------------------------

MT_ISUNKNOWN = 0x01
MT_ISSCSI1 = 0x71
MT_ISSCSI2 = 0x72

# -- mt_gstat bits ----------------------------------------------------------------------

GMT_EOF = 0x80000000
GMT_BOT = 0x40000000
GMT_EOT = 0x20000000
GMT_SM = 0x10000000
GMT_EOD = 0x08000000
GMT_WR_PROT = 0x04000000
GMT_ONLINE = 0x01000000
GMT_D_6250 = 0x00800000
GMT_D_1600 = 0x00400000
GMT_D_800 = 0x00200000
GMT_DR_OPEN = 0x00040000
GMT_IM_REP_EN = 0x00010000
GMT_CLN = 0x00008000

# Names in the order mt-st prints them.
GMT_NAMES = (
    ("EOF", GMT_EOF), ("BOT", GMT_BOT), ("EOT", GMT_EOT), ("SM", GMT_SM), ("EOD", GMT_EOD),
    ("WR_PROT", GMT_WR_PROT), ("ONLINE", GMT_ONLINE), ("D_6250", GMT_D_6250),
    ("D_1600", GMT_D_1600), ("D_800", GMT_D_800), ("DR_OPEN", GMT_DR_OPEN),
    ("IM_REP_EN", GMT_IM_REP_EN), ("CLN", GMT_CLN),
)


def gstat_names(gstat: int) -> list[str]:
    return [name for name, bit in GMT_NAMES if gstat & bit]


# -- mt_dsreg / mt_erreg ----------------------------------------------------------------

MT_ST_BLKSIZE_SHIFT = 0
MT_ST_BLKSIZE_MASK = 0xFFFFFF
MT_ST_DENSITY_SHIFT = 24
MT_ST_DENSITY_MASK = 0xFF000000
MT_ST_SOFTERR_SHIFT = 0
MT_ST_SOFTERR_MASK = 0xFFFF

# -- MTSETDRVBUFFER options -------------------------------------------------------------

MT_ST_OPTIONS = 0xF0000000
MT_ST_BOOLEANS = 0x10000000
MT_ST_SETBOOLEANS = 0x30000000
MT_ST_CLEARBOOLEANS = 0x40000000
MT_ST_WRITE_THRESHOLD = 0x20000000
MT_ST_DEF_BLKSIZE = 0x50000000
MT_ST_DEF_OPTIONS = 0x60000000
MT_ST_TIMEOUTS = 0x70000000
MT_ST_SET_TIMEOUT = MT_ST_TIMEOUTS | 0x000000
MT_ST_SET_LONG_TIMEOUT = MT_ST_TIMEOUTS | 0x100000
MT_ST_SET_CLN = 0x80000000

MT_ST_BUFFER_WRITES = 0x1
MT_ST_ASYNC_WRITES = 0x2
MT_ST_READ_AHEAD = 0x4
MT_ST_DEBUGGING = 0x8
MT_ST_TWO_FM = 0x10
MT_ST_FAST_MTEOM = 0x20
MT_ST_AUTO_LOCK = 0x40
MT_ST_DEF_WRITES = 0x80
MT_ST_CAN_BSR = 0x100
MT_ST_NO_BLKLIMS = 0x200
MT_ST_CAN_PARTITIONS = 0x400
MT_ST_SCSI2LOGICAL = 0x800
MT_ST_SYSV = 0x1000
MT_ST_NOWAIT = 0x2000
MT_ST_SILI = 0x4000
MT_ST_NOWAIT_EOF = 0x8000

# st's compiled-in defaults (st_options.h): buffered + async writes, read-ahead, BSD close.
MT_ST_DEFAULT_OPTIONS = MT_ST_BUFFER_WRITES | MT_ST_ASYNC_WRITES | MT_ST_READ_AHEAD

# -- structs as values ------------------------------------------------------------------


@dataclass(frozen=True)
class MtOp:
    op: int
    count: int

    def pack(self) -> bytes:
        return struct.pack(MTOP_FORMAT, self.op, self.count)

    @classmethod
    def unpack(cls, data: bytes) -> MtOp:
        op, count = struct.unpack(MTOP_FORMAT, data)
        return cls(op, count)


@dataclass(frozen=True)
class MtGet:
    type: int
    resid: int
    dsreg: int
    gstat: int
    erreg: int
    fileno: int
    blkno: int

    def pack(self) -> bytes:
        return struct.pack(MTGET_FORMAT, self.type, self.resid, self.dsreg, self.gstat,
                           self.erreg, self.fileno, self.blkno)

    def pack32(self) -> bytes:
        # 32-bit longs: dsreg/gstat are unsigned in the kernel; keep their bit patterns
        def s32(v: int) -> int:
            v &= 0xFFFFFFFF
            return v - (1 << 32) if v & 0x80000000 else v

        return struct.pack(MTGET32_FORMAT, s32(self.type), s32(self.resid), s32(self.dsreg),
                           s32(self.gstat), s32(self.erreg), self.fileno, self.blkno)

    @classmethod
    def unpack(cls, data: bytes) -> MtGet:
        return cls(*struct.unpack(MTGET_FORMAT, data))

    @property
    def block_size(self) -> int:
        return (self.dsreg & MT_ST_BLKSIZE_MASK) >> MT_ST_BLKSIZE_SHIFT

    @property
    def density(self) -> int:
        return (self.dsreg & MT_ST_DENSITY_MASK) >> MT_ST_DENSITY_SHIFT


@dataclass(frozen=True)
class MtPos:
    blkno: int

    def pack(self) -> bytes:
        return struct.pack(MTPOS_FORMAT, self.blkno)

    def pack32(self) -> bytes:
        return struct.pack(MTPOS32_FORMAT, self.blkno)

    @classmethod
    def unpack(cls, data: bytes) -> MtPos:
        return cls(*struct.unpack(MTPOS_FORMAT, data))

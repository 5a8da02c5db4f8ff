"""The tape ioctl wire: which tape ioctl a request is, and the status words st reports.

Theory of operation: an ioctl(2) reaches the Drive as a number and argument bytes. The
number alone says which of the three tape ioctls it is (MTIOCTOP, MTIOCGET, MTIOCPOS,
by ``_IOC`` type and nr) and, by its size field, whether the caller uses the 64-bit or
the 32-bit compat layout; ``decode`` checks that and unpacks MTIOCTOP's ``struct mtop``,
``pack_get``/``pack_pos`` pack the reply in the caller's layout. ``gstat_bits`` and
``dsreg`` turn the drive's reported state into MTIOCGET's ``mt_gstat`` and ``mt_dsreg``
words the way st.c does; ``apply_options`` reads MTSETDRVBUFFER's option words. All of
it is pure: values in, bytes or words out, with ``TapeError(ENOTTY/EINVAL)`` for
requests that are not well-formed tape ioctls. The Drive
keeps the semantics (what an op does, what the state is); this module keeps the wire.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import Enum

from backerd.errors import TapeError
from backerd.tape import mtio
from backerd.tape.state import EOD_STATES, EOM_STATES, Eof


class TapeIoctl(Enum):
    OP = 1  # MTIOCTOP
    GET = 2  # MTIOCGET
    POS = 3  # MTIOCPOS


@dataclass(frozen=True)
class IoctlRequest:
    kind: TapeIoctl
    wide: bool  # the 64-bit layout (False: a 32-bit process's compat struct)
    op: mtio.MtOp | None = None  # MTIOCTOP's argument


_SIZES = {
    TapeIoctl.GET: (mtio.MTGET_SIZE, mtio.MTGET32_SIZE, "bad struct mtget size"),
    TapeIoctl.POS: (mtio.MTPOS_SIZE, mtio.MTPOS32_SIZE, "bad struct mtpos size"),
}

# st's density codes with a gstat bit of their own
_DENSITY_BITS = {1: mtio.GMT_D_800, 2: mtio.GMT_D_1600, 3: mtio.GMT_D_6250}


def decode(cmd: int, arg: bytes) -> IoctlRequest:
    """Which tape ioctl ``cmd`` is, with MTIOCTOP's unpacked argument."""
    if mtio.ioc_type(cmd) != mtio.MTIO_TYPE or mtio.ioc_nr(cmd) not in (1, 2, 3):
        raise TapeError(f"ioctl {cmd:#x} is not a tape ioctl", errno=errno.ENOTTY)
    kind, size = TapeIoctl(mtio.ioc_nr(cmd)), mtio.ioc_size(cmd)
    if kind is TapeIoctl.OP:
        if size != mtio.MTOP_SIZE or len(arg) < mtio.MTOP_SIZE:
            raise TapeError("bad struct mtop size", errno=errno.EINVAL)
        return IoctlRequest(kind, True, mtio.MtOp.unpack(bytes(arg[: mtio.MTOP_SIZE])))
    wide_size, narrow_size, message = _SIZES[kind]
    if size not in (wide_size, narrow_size):
        raise TapeError(message, errno=errno.EINVAL)
    return IoctlRequest(kind, size == wide_size)


def pack_get(got: mtio.MtGet, wide: bool) -> bytes:
    return got.pack() if wide else got.pack32()


def pack_pos(pos: mtio.MtPos, wide: bool) -> bytes:
    return pos.pack() if wide else pos.pack32()


def dsreg(block_size: int, density: int) -> int:
    """mt_dsreg: the block size in the low bits, the density code in the top byte."""
    return (block_size & mtio.MT_ST_BLKSIZE_MASK) | ((density & 0xFF) << mtio.MT_ST_DENSITY_SHIFT)


@dataclass(frozen=True)
class GstatFacts:
    """What st's mt_gstat is made of (st.c's st_ioctl MTIOCGET)."""

    options: int
    block_size: int
    loaded: bool
    write_protected: bool
    fileno: int
    blkno: int  # the reported block number (read-ahead subtracted)
    eof: Eof
    early_warning: bool
    density: int


def gstat_bits(facts: GstatFacts) -> int:
    g = 0
    if facts.options & mtio.MT_ST_ASYNC_WRITES or (
        facts.options & mtio.MT_ST_BUFFER_WRITES and facts.block_size
    ):
        g |= mtio.GMT_IM_REP_EN
    if not facts.loaded:
        return g | mtio.GMT_DR_OPEN
    g |= mtio.GMT_ONLINE
    if facts.write_protected:
        g |= mtio.GMT_WR_PROT
    if facts.blkno == 0:
        g |= mtio.GMT_BOT if facts.fileno == 0 else mtio.GMT_EOF
    if facts.eof in EOM_STATES or facts.early_warning:
        g |= mtio.GMT_EOT
    elif facts.eof in EOD_STATES:
        g |= mtio.GMT_EOD
    return g | _DENSITY_BITS.get(facts.density, 0)


def apply_options(
    options: int, default_block_size: int, value: int
) -> tuple[int, int, tuple[int, int] | None]:
    """MTSETDRVBUFFER with an option word (``value & MT_ST_OPTIONS`` set): the new
    options and default block size, and any other (kind, value) setting only kept."""
    kind = value & mtio.MT_ST_OPTIONS
    bits = value & ~mtio.MT_ST_OPTIONS
    if kind == mtio.MT_ST_BOOLEANS:
        return bits, default_block_size, None
    if kind == mtio.MT_ST_SETBOOLEANS:
        return options | bits, default_block_size, None
    if kind == mtio.MT_ST_CLEARBOOLEANS:
        return options & ~bits, default_block_size, None
    if kind == mtio.MT_ST_DEF_BLKSIZE:
        size = bits & mtio.MT_ST_BLKSIZE_MASK
        return options, 0 if size == mtio.MT_ST_BLKSIZE_MASK else size, None
    return options, default_block_size, (kind, bits)

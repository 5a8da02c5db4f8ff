"""The tape ioctl wire: request decoding and the gstat word, against mtio.h's numbers."""

from __future__ import annotations

import errno
import struct

import pytest

from backerd.errors import TapeError
from backerd.tape import ioctlwire, mtio
from backerd.tape.state import Eof

# linux/mtio.h, x86-64: the numbers a caller's ioctl(2) carries
MTIOCTOP, MTIOCGET, MTIOCPOS = 0x40086D01, 0x80306D02, 0x80086D03
MTIOCGET32, MTIOCPOS32 = 0x801C6D02, 0x80046D03


def test_mtioctop_is_unpacked() -> None:
    request = ioctlwire.decode(MTIOCTOP, struct.pack("<h2xi", mtio.MTFSF, 3))
    assert request.kind is ioctlwire.TapeIoctl.OP
    assert request.op is not None and (request.op.op, request.op.count) == (mtio.MTFSF, 3)


@pytest.mark.parametrize(
    ("cmd", "kind", "wide"),
    [
        (MTIOCGET, ioctlwire.TapeIoctl.GET, True),
        (MTIOCGET32, ioctlwire.TapeIoctl.GET, False),
        (MTIOCPOS, ioctlwire.TapeIoctl.POS, True),
        (MTIOCPOS32, ioctlwire.TapeIoctl.POS, False),
    ],
)
def test_get_and_pos_layouts(cmd: int, kind: ioctlwire.TapeIoctl, wide: bool) -> None:
    request = ioctlwire.decode(cmd, b"")
    assert (request.kind, request.wide, request.op) == (kind, wide, None)


@pytest.mark.parametrize(
    ("cmd", "arg", "code"),
    [
        (0x5401, b"", errno.ENOTTY),  # TCGETS
        (0x80086D04, b"", errno.ENOTTY),  # an 'm' ioctl that is not a tape one
        (MTIOCTOP, b"\0" * 4, errno.EINVAL),  # short mtop
        (0x80286D02, b"", errno.EINVAL),  # mtget of a size neither layout has
    ],
)
def test_malformed_requests(cmd: int, arg: bytes, code: int) -> None:
    with pytest.raises(TapeError) as caught:
        ioctlwire.decode(cmd, arg)
    assert caught.value.errno == code


def facts(**changes: object) -> ioctlwire.GstatFacts:
    base = {
        "options": 0, "block_size": 0, "loaded": True, "write_protected": False,
        "fileno": 0, "blkno": 0, "eof": Eof.NOEOF, "early_warning": False, "density": 0,
    }
    return ioctlwire.GstatFacts(**(base | changes))  # type: ignore[arg-type]


def test_gstat_words() -> None:
    assert ioctlwire.gstat_bits(facts(loaded=False)) == 0x00040000  # GMT_DR_OPEN only
    assert ioctlwire.gstat_bits(facts()) == 0x01000000 | 0x40000000  # ONLINE, BOT
    assert ioctlwire.gstat_bits(facts(fileno=2)) == 0x01000000 | 0x80000000  # ONLINE, EOF
    at_eod = ioctlwire.gstat_bits(facts(blkno=5, eof=Eof.EOD))
    assert at_eod == 0x01000000 | 0x08000000
    warned = ioctlwire.gstat_bits(facts(blkno=5, eof=Eof.EOD, early_warning=True))
    assert warned == 0x01000000 | 0x20000000  # EOT wins over EOD
    assert ioctlwire.gstat_bits(facts(blkno=5, write_protected=True, density=2)) == (
        0x01000000 | 0x04000000 | 0x00400000  # ONLINE, WR_PROT, GMT_D_1600
    )


def test_dsreg_packs_block_size_and_density() -> None:
    assert ioctlwire.dsreg(10240, 0x42) == 0x42002800

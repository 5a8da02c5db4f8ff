"""ioctl number decoding and struct sizes against the documented x86-64 ABI."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backerd.kernel import abi


@pytest.mark.parametrize(
    ("cmd", "direction", "type_", "nr", "size"),
    [
        (0x40086D01, abi.IOC_WRITE, ord("m"), 1, 8),  # MTIOCTOP: _IOW('m', 1, struct mtop)
        (0x80306D02, abi.IOC_READ, ord("m"), 2, 48),  # MTIOCGET: _IOR('m', 2, struct mtget)
        (0x80086D03, abi.IOC_READ, ord("m"), 3, 8),  # MTIOCPOS: _IOR('m', 3, struct mtpos)
        (0x0000024B, abi.IOC_NONE, 2, 0x4B, 0),  # FDFLUSH: _IO(2, 0x4b)
        (0xC0105500, abi.IOC_READ | abi.IOC_WRITE, ord("U"), 0, 16),  # an _IOWR
    ],
)
def test_decode_known_commands(cmd: int, direction: int, type_: int, nr: int, size: int) -> None:
    decoded = abi.decode_ioctl(cmd)
    assert (decoded.direction, decoded.type, decoded.nr, decoded.size) == (
        direction, type_, nr, size)


def test_copy_directions() -> None:
    assert abi.decode_ioctl(0x40086D01).copies_in
    assert not abi.decode_ioctl(0x40086D01).copies_out
    assert abi.decode_ioctl(0x80306D02).copies_out
    assert not abi.decode_ioctl(0x24B).copies_in
    assert not abi.decode_ioctl(0x24B).copies_out


@given(st.integers(0, 3), st.integers(0, 255), st.integers(0, 255), st.integers(0, 16383))
def test_encode_decode_round_trip(direction: int, type_: int, nr: int, size: int) -> None:
    decoded = abi.decode_ioctl(abi.encode_ioctl(direction, type_, nr, size))
    assert (decoded.direction, decoded.type, decoded.nr, decoded.size) == (
        direction, type_, nr, size)


def test_encode_rejects_oversized_argument() -> None:
    with pytest.raises(ValueError):
        abi.encode_ioctl(abi.IOC_READ, 0x6D, 2, 1 << 14)


@pytest.mark.parametrize(
    ("layout", "size"),
    [
        (abi.IN_HEADER, 40), (abi.OUT_HEADER, 16), (abi.INIT_OUT, 64), (abi.CUSE_INIT_OUT, 72),
        (abi.ATTR, 88), (abi.ENTRY_OUT, 40), (abi.RW_IN, 40), (abi.IOCTL_IN, 32),
        (abi.IOCTL_OUT, 16), (abi.IOCTL_IOVEC, 16), (abi.STATFS_OUT, 80), (abi.SETATTR_IN, 88),
        (abi.OPEN_OUT, 16), (abi.POLL_IN, 24), (abi.DIRENT, 24),
    ],
)
def test_struct_sizes_match_the_kernel(layout, size: int) -> None:
    assert layout.size == size

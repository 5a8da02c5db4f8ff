"""MemoryMedium: files, filemarks, EOD, spacing (SCSI rules), addresses, capacity."""

from __future__ import annotations

import errno

import pytest

from backerd.errors import TapeError
from backerd.tape.density import DENSITY_MODES, MODE_DENSITIES
from backerd.tape.medium import (
    END_OF_DATA,
    FILEMARK,
    Medium,
    MemoryMedium,
    TapePosition,
)


def _errno(fn, *args):
    try:
        fn(*args)
    except TapeError as exc:
        return exc.errno
    return None


def three_files() -> MemoryMedium:
    return MemoryMedium.from_files([[b"a1", b"a22"], [], [b"c1", b"c22", b"c333"]])


def test_memory_medium_satisfies_the_protocol() -> None:
    assert isinstance(MemoryMedium(), Medium)


def test_blank_tape() -> None:
    m = MemoryMedium()
    assert m.at_bot() and m.tell() == 0 and m.position() == TapePosition(0, 0)
    assert m.read_block(100) is END_OF_DATA
    assert m.position() == (0, 0)
    assert m.files() == []


def test_write_then_read_back() -> None:
    m = MemoryMedium()
    for block in (b"one", b"two!"):
        m.write_block(block)
    m.write_filemarks(1)
    m.write_block(b"x")
    m.write_filemarks(2)
    assert m.position() == (3, 0)
    assert m.files() == [[b"one", b"two!"], [b"x"], []]
    m.rewind()
    got = [m.read_block(1) for _ in range(7)]
    assert got == [b"one", b"two!", FILEMARK, b"x", FILEMARK, FILEMARK, END_OF_DATA]
    assert m.position() == (3, 0)


def test_boundaries_return_whole_blocks_whatever_max_size() -> None:
    m = MemoryMedium.from_files([[b"0123456789"]])
    assert m.read_block(3) == b"0123456789"


def test_write_in_the_middle_discards_the_rest() -> None:
    m = three_files()
    m.space_blocks(1)
    m.write_block(b"new")
    assert m.files() == [[b"a1", b"new"]]
    assert m.read_block(10) is END_OF_DATA


def test_filemark_in_the_middle_discards_the_rest() -> None:
    m = three_files()
    m.space_filemarks(1)
    m.write_filemarks(1)
    assert m.files() == [[b"a1", b"a22"], []]


def test_space_blocks_crosses_a_filemark_forwards() -> None:
    m = three_files()
    assert m.space_blocks(5) == 2
    assert m.position() == (1, 0)
    assert m.space_blocks(1) == 0  # file 1 is empty: crosses its filemark
    assert m.position() == (2, 0)
    assert m.space_blocks(10) == 3
    assert m.position() == (3, 0)
    assert m.space_blocks(1) == 0  # end of data: nothing to cross
    assert m.position() == (3, 0)
    assert m.read_block(9) is END_OF_DATA


def test_space_blocks_crosses_a_filemark_backwards() -> None:
    m = three_files()
    m.seek_eod()
    assert m.position() == (3, 0)
    assert m.space_blocks(-1) == 0  # crosses the last filemark
    assert m.position() == (2, 3)
    assert m.space_blocks(-2) == -2
    assert m.position() == (2, 1)
    assert m.space_blocks(-5) == -1
    assert m.position() == (1, 0)
    assert m.space_blocks(-1) == 0  # crosses the filemark that ends file 0
    assert m.position() == (0, 2)
    assert m.space_blocks(-9) == -2
    assert m.at_bot()
    assert m.space_blocks(-1) == 0 and m.at_bot()


def test_space_filemarks() -> None:
    m = three_files()
    assert m.space_filemarks(2) == 2 and m.position() == (2, 0)
    assert m.space_filemarks(2) == 1 and m.position() == (3, 0)  # EOD: no filemark left
    assert m.space_filemarks(-1) == -1 and m.position() == (2, 3)  # BOT side of FM 2
    assert m.space_filemarks(-1) == -1 and m.position() == (1, 0)
    assert m.space_filemarks(-1) == -1 and m.position() == (0, 2)
    assert m.space_filemarks(-1) == 0 and m.at_bot()


def test_tell_and_locate_count_blocks_and_filemarks() -> None:
    m = three_files()
    positions = []
    while True:
        positions.append((m.position(), m.tell()))
        if m.read_block(100) is END_OF_DATA:
            break
    # a1 a22 FM FM c1 c22 c333 FM: addresses 0..8
    assert [t for _, t in positions] == list(range(9))
    for pos, address in positions:
        m.locate(address)
        assert m.position() == pos
    assert m.position() == (3, 0)
    m.rewind()
    assert _errno(m.locate, 9) == errno.EIO
    assert m.position() == (3, 0)


def test_seek_eod_of_unterminated_file() -> None:
    m = MemoryMedium()
    m.write_block(b"a")
    m.write_block(b"b")
    m.rewind()
    m.seek_eod()
    assert m.position() == (0, 2)
    assert m.files() == [[b"a", b"b"]]


def test_erase_from_the_head() -> None:
    m = three_files()
    m.space_filemarks(1)
    m.erase()
    assert m.files() == [[b"a1", b"a22"]]
    m.rewind()
    m.erase()
    assert m.files() == []


def test_write_protect_and_no_cassette() -> None:
    m = three_files()
    m.write_protected = True
    assert _errno(m.write_block, b"x") == errno.EACCES
    assert _errno(m.write_filemarks, 1) == errno.EACCES
    assert _errno(m.erase) == errno.EACCES
    m.unload()
    assert not m.loaded
    assert _errno(m.read_block, 10) == errno.ENOMEDIUM
    assert _errno(m.rewind) == errno.ENOMEDIUM
    m.load()
    assert m.loaded and m.at_bot() and m.read_block(10) == b"a1"


def test_early_warning_and_physical_end() -> None:
    m = MemoryMedium(capacity=100, early_warning_size=30)
    m.write_block(b"x" * 60)
    assert not m.early_warning()
    m.write_block(b"x" * 10)  # 70 used: the zone starts at 100 - 30
    assert m.early_warning()
    m.write_block(b"x" * 30)
    assert _errno(m.write_block, b"x") == errno.ENOSPC
    assert m.files() == [[b"x" * 60, b"x" * 10, b"x" * 30]]
    m.rewind()
    assert not m.early_warning()


def test_filemarks_use_tape() -> None:
    m = MemoryMedium(capacity=10, early_warning_size=0, filemark_size=4)
    m.write_filemarks(2)
    assert _errno(m.write_block, b"abc") == errno.ENOSPC


def test_density_codes_are_the_original_mode_bits() -> None:
    # backer-format.md 12.1
    spec = {"nls": 0x15, "nle": 0x25, "nlr": 0x05, "nhs": 0x19, "nhe": 0x29,
            "pls": 0x16, "ple": 0x26, "phs": 0x1A, "phe": 0x2A}
    for name, code in spec.items():
        assert MODE_DENSITIES[name] == code
    assert len(DENSITY_MODES) == 12
    m = MemoryMedium()
    m.set_density(0x19)
    assert m.density() == 0x19
    assert _errno(m.set_density, 0x13) == errno.EINVAL
    assert m.density() == 0x19


# -- a foreign tape: no block boundaries ---------------------------------------------


def test_stream_reads_return_the_sizes_asked_for() -> None:
    m = MemoryMedium.from_streams([b"0123456789", b"abc"])
    assert [m.read_block(4) for _ in range(4)] == [b"0123", b"4567", b"89", FILEMARK]
    assert m.read_block(100) == b"abc"
    assert m.read_block(100) is FILEMARK
    assert m.read_block(100) is END_OF_DATA
    assert m.streams() == [b"0123456789", b"abc"]


def test_stream_space_back_over_reads() -> None:
    m = MemoryMedium.from_streams([b"0123456789"])
    m.read_block(3)
    m.read_block(5)
    assert m.space_blocks(-1) == -1
    assert m.read_block(100) == b"34567" + b"89"  # the reread defines a new block
    assert m.space_blocks(-1) == -1
    assert m.read_block(2) == b"34"


def test_stream_forward_spacing_uses_stream_block() -> None:
    m = MemoryMedium.from_streams([bytes(range(100))], stream_block=30)
    assert m.space_blocks(2) == 2
    assert m.read_block(5) == bytes(range(60, 65))
    assert m.space_blocks(10) == 2  # 65..95, 95..100, then the filemark
    assert m.position() == (1, 0)


def test_stream_write_after_partial_read() -> None:
    m = MemoryMedium.from_streams([b"0123456789", b"abc"])
    m.read_block(4)
    m.write_block(b"XY")
    m.write_filemarks(1)
    assert m.streams() == [b"0123XY"]


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        MemoryMedium().write_filemarks(0)
    with pytest.raises(ValueError):
        MemoryMedium(stream_block=0)

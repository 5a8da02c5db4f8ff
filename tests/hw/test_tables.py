"""Pure modules: 8237 plans and residues, control bytes, ring arithmetic, /proc parsers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backerd.format.params import GEOMETRIES
from backerd.hw import dma8237 as d
from backerd.hw.card import (
    GUARD,
    PROBE_BASES,
    control_byte,
    decode_control,
    geometry_for_field,
    start_sequence,
    start_window,
)
from backerd.hw.procfs import dma_channels, port_owner, reserved_region
from backerd.hw.ring import ReceiveRing, TransmitRing, advance_position, spans, transmit_size

NTSC_LOW, NTSC_HIGH = GEOMETRIES[("n", "l")], GEOMETRIES[("n", "h")]
PAL_LOW, PAL_HIGH = GEOMETRIES[("p", "l")], GEOMETRIES[("p", "h")]


def test_transmit_sizes_are_the_specs_frame_multiples() -> None:
    # spec 13: 64896, 60840, 63440, 61000 bytes for NTSC low, NTSC high, PAL low, PAL high
    got = [transmit_size(g.frame_size) for g in (NTSC_LOW, NTSC_HIGH, PAL_LOW, PAL_HIGH)]
    assert got == [64896, 60840, 63440, 61000]


def test_control_bytes_of_the_spec_example() -> None:
    # spec 13: "NTSC low write = 0x82 then 0xA2"
    assert start_sequence(NTSC_LOW, "transmit") == (0x82, 0xA2)
    assert control_byte(PAL_HIGH, "receive") == 0x43
    assert control_byte(NTSC_HIGH, None) == 0x83


@pytest.mark.parametrize("geometry", list(GEOMETRIES.values()))
@pytest.mark.parametrize("direction", ["transmit", "receive", None])
def test_control_byte_round_trips(geometry, direction) -> None:  # noqa: ANN001
    assert decode_control(control_byte(geometry, direction)) == (geometry, direction)


def test_stop_byte_decodes_as_off() -> None:
    assert decode_control(0) == (None, None)


def test_start_window_is_the_observed_ntsc_range() -> None:
    w = start_window("ntsc")
    assert (w.nominal, w.low, w.high) == (576_000, 546_000, 608_000)
    assert start_window("pal").nominal == 5 * 64_000


def test_probe_bases_are_0x300_to_0x33c_in_steps_of_4() -> None:
    assert PROBE_BASES[0] == 0x300 and PROBE_BASES[-1] == 0x33C and len(PROBE_BASES) == 16


def test_geometry_for_field_lengths() -> None:
    assert geometry_for_field(1016) == NTSC_LOW and geometry_for_field(1012) == NTSC_LOW
    assert geometry_for_field(3050) == PAL_HIGH
    assert geometry_for_field(1000) is None


def test_program_plan_channel_3() -> None:
    plan = d.program_plan(d.Block(3, d.ISA_TRANSMIT, 0xE00000, 60840))
    count = 60840 - 1
    assert plan == [
        (0x0A, 0x07), (0x0C, 0), (0x0B, 0x1B), (0x06, 0x00), (0x06, 0x00), (0x82, 0xE0),
        (0x0C, 0), (0x07, count & 0xFF), (0x07, count >> 8), (0x0A, 0x03),
    ]


def test_program_plan_channel_1_receive_uses_page_0x83() -> None:
    plan = d.program_plan(d.Block(1, d.ISA_RECEIVE, 0x230000, 65536))
    assert (0x0B, 0x15) in plan and (0x83, 0x23) in plan and (0x03, 0xFF) in plan


@pytest.mark.parametrize("address,count", [(0xE08000, 0x9000), (0x1000000, 16), (0, 0)])
def test_program_plan_refuses_bad_blocks(address: int, count: int) -> None:
    with pytest.raises(ValueError):
        d.program_plan(d.Block(3, d.ISA_RECEIVE, address, count))


@given(st.integers(1, 65536), st.integers(0, 65535))
def test_residue_and_position(block: int, moved: int) -> None:
    moved %= block
    register = (block - 1 - moved) & 0xFFFF  # the count register after `moved` bytes
    residue = d.decode_residue(register & 0xFF, register >> 8)
    assert residue == (block - moved) & 0xFFFF  # a full 64 KiB block reads as 0
    assert d.position(block, residue) == moved


def test_residue_after_terminal_count_is_zero() -> None:
    assert d.decode_residue(0xFF, 0xFF) == 0 and d.position(1000, 0) == 0


@given(st.integers(0, 10**7), st.integers(0, 5 * 65536),
       st.sampled_from([60840, 64896, 65536]), st.floats(-0.45, 0.45))
def test_advance_position_finds_the_true_position(previous: int, moved: int, size: int,
                                                 error: float) -> None:
    true = previous + moved
    wrapped = true // size > previous // size  # the channel passed terminal count
    estimate = true + int(error * size)  # elapsed time x rate, off by under half a ring
    if not wrapped and moved >= size:
        return  # impossible: a whole lap always passes terminal count
    assert advance_position(previous, true % size, size, wrapped, estimate) == true


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(512, 70000))
def test_spans_cover_the_range_in_order(start: int, length: int, size: int) -> None:
    pieces = spans(start, start + length, size)
    assert sum(n for _, n in pieces) == length
    pos = start
    for at, n in pieces:
        assert at == pos % size and at + n <= size
        pos += n


def test_transmit_ring_keeps_the_guard() -> None:
    ring = TransmitRing(60840)
    assert ring.room() == 60840 - GUARD
    ring.write_spans(ring.room())
    assert ring.room() == 0
    assert ring.advance(10_000) == 0 and ring.room() == 10_000
    assert ring.advance(ring.filled + 5) == 5 and ring.underruns == 1


def test_receive_ring_overrun_loses_the_oldest_bytes() -> None:
    ring = ReceiveRing(65536)
    ring.advance(1000)
    assert ring.available() == 1000 - GUARD
    lost = ring.advance(65536 + 4000)
    assert lost == 65536 + 4000 - 65536 + GUARD and ring.overruns == 1


IOPORTS = """\
0000-001f : dma1
0300-031f : ne2000
0330-0331 : MPU401 UART
0378-037a : parport0
"""


def test_ioports_owner() -> None:
    assert port_owner(IOPORTS, 0x300, 0x300) == "ne2000"
    assert port_owner(IOPORTS, 0x31C, 0x31C) == "ne2000"
    assert port_owner(IOPORTS, 0x320, 0x320) is None
    assert port_owner(IOPORTS, 0x330, 0x330) == "MPU401 UART"


def test_dma_channels_and_garbage() -> None:
    assert dma_channels(" 1: SoundBlaster8\n 4: cascade\nnonsense\n") == {
        1: "SoundBlaster8", 4: "cascade"}
    assert dma_channels("") == {}


def test_reserved_region_from_iomem() -> None:
    iomem = "00100000-00dfffff : System RAM\n00e00000-00e0ffff : reserved\n"
    assert reserved_region(iomem, 0xE00000, 65536) == "reserved"
    assert reserved_region(iomem, 0xE10000, 65536) is None
    assert reserved_region("00000000-00000000 : reserved\n", 0, 16) is None

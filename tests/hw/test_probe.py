"""Finding the card (and refusing ports that cannot work), on emulated machines."""

from __future__ import annotations

from pathlib import Path

import pytest

from backerd.errors import HardwareUnavailable
from backerd.hw.emu.isacard import IsaCard
from backerd.hw.emu.machine import EmuMachine
from backerd.hw.emu.setup import EmuSetup, emulated_unit
from backerd.hw.emu.vcr import EmuVcr
from backerd.hw.probe import CardLocation, probe_isa
from backerd.vcr.sim import Cassette


@pytest.fixture
def cassette(tmp_path: Path) -> Cassette:
    c = Cassette.create(tmp_path / "t.cassette", "ntsc", "E-30", sync=False)
    yield c
    c.close()


def machine_with_card(cassette: Cassette, base: int | None, channel: int) -> EmuMachine:
    m = EmuMachine()
    vcr = EmuVcr(cassette, m.lock, m.clock.now_ns)
    if base is not None:
        m.add(IsaCard(base, channel, m.dma, vcr))
    return m


@pytest.mark.parametrize("base", [0x300, 0x31C, 0x33C])
@pytest.mark.parametrize("channel", [1, 3])
def test_probe_finds_the_card_and_its_channel(cassette: Cassette, base: int,
                                              channel: int) -> None:
    m = machine_with_card(cassette, base, channel)
    assert probe_isa(m, m.ioports, m.dma_text) == CardLocation(base, channel)


def test_no_card(cassette: Cassette) -> None:
    m = machine_with_card(cassette, None, 3)
    with pytest.raises(HardwareUnavailable, match="no Backer card found at ports 0x300-0x33C"):
        probe_isa(m, m.ioports, m.dma_text)


def test_claimed_ports_are_not_touched(cassette: Cassette) -> None:
    m = machine_with_card(cassette, 0x300, 3)
    ioports = m.ioports + "0300-031f : ne2000\n"
    writes: list[int] = []
    outb = m.outb
    m.outb = lambda port, value: (writes.append(port), outb(port, value))  # type: ignore
    with pytest.raises(HardwareUnavailable, match="0x300 claimed by ne2000"):
        probe_isa(m, ioports, m.dma_text)
    assert not any(0x300 <= p < 0x320 for p in writes)


def test_card_beside_a_claimed_range_is_found(cassette: Cassette) -> None:
    m = machine_with_card(cassette, 0x320, 1)
    ioports = m.ioports + "0300-031f : ne2000\n"
    assert probe_isa(m, ioports, m.dma_text) == CardLocation(0x320, 1)


def test_pinned_port_claimed_names_the_fix(cassette: Cassette) -> None:
    m = machine_with_card(cassette, 0x330, 3)
    with pytest.raises(HardwareUnavailable, match="claimed by MPU401.*port jumper"):
        probe_isa(m, m.ioports + "0330-0331 : MPU401\n", m.dma_text, base=0x330, channel=3)


def test_pinned_port_and_channel_skip_the_scan(cassette: Cassette) -> None:
    m = machine_with_card(cassette, 0x308, 3)
    before = m.accesses
    assert probe_isa(m, m.ioports, m.dma_text, base=0x308, channel=3) == CardLocation(0x308, 3)
    scan = machine_with_card(cassette, 0x308, 3)
    probe_isa(scan, scan.ioports, scan.dma_text)
    assert m.accesses - before < scan.accesses  # the scan also tried 0x300 and 0x304


def test_wrong_dma_channel_is_named(cassette: Cassette) -> None:
    m = machine_with_card(cassette, 0x300, 3)
    with pytest.raises(HardwareUnavailable, match="channel 3, not the configured 1"):
        probe_isa(m, m.ioports, m.dma_text, base=0x300, channel=1)


def test_channel_held_by_another_driver(cassette: Cassette) -> None:
    m = machine_with_card(cassette, 0x300, 1)
    with pytest.raises(HardwareUnavailable, match="SoundBlaster8 holds"):
        probe_isa(m, m.ioports, " 1: SoundBlaster8\n 4: cascade\n")


def test_channel_not_1_or_3(cassette: Cassette) -> None:
    m = machine_with_card(cassette, 0x300, 3)
    with pytest.raises(HardwareUnavailable, match="jumper 1 or 3"):
        probe_isa(m, m.ioports, m.dma_text, base=0x300, channel=2)


def test_emulated_unit_without_card_refuses(cassette: Cassette) -> None:
    with pytest.raises(HardwareUnavailable, match="no Backer card"):
        emulated_unit(cassette, "isa", setup=EmuSetup(card=False))


def test_parport_not_ecp(cassette: Cassette) -> None:
    with pytest.raises(HardwareUnavailable, match="not an ECP port.*BIOS"):
        emulated_unit(cassette, "parport", setup=EmuSetup(ecp=False))


def test_parport_without_isa_dma(cassette: Cassette) -> None:
    with pytest.raises(HardwareUnavailable, match="no ISA DMA channel.*PCI.*USB"):
        emulated_unit(cassette, "parport", setup=EmuSetup(extra={"dma": -1}))


def test_parport_held_by_lp(cassette: Cassette) -> None:
    with pytest.raises(HardwareUnavailable, match="held by the lp driver.*modprobe -r lp"):
        emulated_unit(cassette, "parport", setup=EmuSetup(extra={"claimed_by": "lp"}))

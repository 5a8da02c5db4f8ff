"""Assembling an emulated unit: machine, card, VCR, backend and deck, ready to serve.

``emulated_unit`` runs the *real* backend against the emulator: the ISA card is found
by the same probe (on the emulated /proc texts) and driven by the same ``IsaModem``;
the parallel unit is claimed and driven by the same ``ParportModem``. Faults are set
up here: no card, a card on another DMA channel, a claimed port, a port without ECP.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from backerd.hw.deck import CardDeck, TapeInfo
from backerd.hw.emu.isacard import IsaCard
from backerd.hw.emu.machine import EmuMachine
from backerd.hw.emu.vcr import EmuVcr
from backerd.hw.modem import Modem
from backerd.hw.probe import probe_isa
from backerd.vcr.sim import Cassette

KINDS = ("isa", "parport")


@dataclass
class EmuSetup:
    """The emulated hardware of one unit (what a real machine would have)."""

    card: bool = True
    base: int = 0x300
    channel: int = 3
    ioports: str = ""  # extra /proc/ioports lines
    dma_text: str = ""  # extra /proc/dma lines
    ecp: bool = True
    parport_base: int = 0x378
    pinned_base: int | None = None
    pinned_channel: int | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class EmulatedUnit:
    machine: EmuMachine
    vcr: EmuVcr
    modem: Modem
    deck: CardDeck

    @property
    def clock(self):  # noqa: ANN201 - the ServiceClock of the machine
        return self.machine.clock


def tape_info(cassette: Cassette, lock: threading.RLock) -> TapeInfo:
    def signal_end() -> int:
        with lock:
            return cassette.signal_end()

    return TapeInfo(cassette.standard, cassette.fps, cassette.slots, cassette,
                    lambda: cassette.write_protected, signal_end)


def emulated_unit(cassette: Cassette, kind: str = "isa", *, realtime: bool = False,
                  mode: str = "nhs", setup: EmuSetup | None = None) -> EmulatedUnit:
    setup = setup or EmuSetup()
    machine = EmuMachine(realtime=realtime)
    machine.ioports += setup.ioports
    machine.dma_text += setup.dma_text
    vcr = EmuVcr(cassette, machine.lock, machine.clock.now_ns, realtime=realtime)
    modem: Modem
    if kind == "isa":
        from backerd.hw.isa import IsaModem

        if setup.card:
            machine.add(IsaCard(setup.base, setup.channel, machine.dma, vcr))
        location = probe_isa(machine, machine.ioports, machine.dma_text,
                             base=setup.pinned_base, channel=setup.pinned_channel)
        modem = IsaModem(machine, machine.dma_buffer(), location, label=" (emulated)")
    elif kind == "parport":
        from backerd.hw.emu.ecp import EcpPort, EmuPpdev
        from backerd.hw.parport import ParportModem, PortInfo

        port = EcpPort(setup.parport_base, setup.channel, machine.dma, vcr, ecp=setup.ecp,
                       unit=setup.card)
        port.claimed_by = setup.extra.get("claimed_by")
        machine.add(port)
        info = PortInfo("parport0", setup.parport_base, setup.parport_base + 0x400,
                        setup.extra.get("dma", setup.channel), "PCSPP,TRISTATE,COMPAT,ECP,DMA")
        modem = ParportModem(machine, machine.dma_buffer(), EmuPpdev(machine, port), info,
                             label=" (emulated)")
    else:
        raise ValueError(f"unknown emulated unit {kind!r} (known: {', '.join(KINDS)})")
    deck = CardDeck(vcr, modem, tape_info(cassette, machine.lock), default_mode=mode,
                    lock=machine.lock, confirm=False)  # the emulated VCR winds exactly
    return EmulatedUnit(machine, vcr, modem, deck)

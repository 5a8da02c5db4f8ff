"""Opening a unit on a real card: ports, DMA memory, the VCR's control, the medium.

Theory of operation: ``open_card_unit`` is the daemon's opener for ``deck = "isa"``
and ``deck = "parport"``. It acquires everything that needs privilege first, in an
order where each refusal names its fix: the port bus (/dev/port: CAP_SYS_RAWIO, no
kernel lockdown), the card (the probe over /proc/ioports and /proc/dma, or the port
and channel pinned in the configuration), the DMA buffer (the boot-reserved region
from /dev/mem, or a u-dma-buf device) and, for the parallel unit, the ppdev port.
Then the VCR control of ``[unit.vcr]`` (an operator, or lircd, whose key map is
checked at once), the recording catalog in a sidecar file of the state directory,
and the ``CardDeck`` + ``BackerMedium`` + ``Drive`` stack the daemon serves.

Privileges are not dropped here: the daemon still needs them to load cuse and to
open the nodes of every unit, so ``daemon.service`` drops them once all are served.

What touches the machine is the ``CardHost``: ``system_host()`` is the real one, and
tests pass a host whose bus is the emulator's ``EmuMachine`` (a "real" unit over an
emulated bus), with /proc texts of their choice. Anything opened before a refusal is
closed again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from backerd.daemon.config import UnitConfig
from backerd.daemon.node import Unit, WorkProbe
from backerd.errors import ConfigError
from backerd.format.params import mode as mode_params
from backerd.hw.bus import DmaBuffer, PortBus, ServiceClock, WallClock
from backerd.hw.catalog import SidecarCatalog
from backerd.hw.deck import CardDeck, TapeInfo
from backerd.hw.modem import Modem
from backerd.hw.parport import PortInfo, SppPort
from backerd.hw.settings import CardSettings
from backerd.vcr.image import parse_length
from backerd.vcr.operator import open_operator

log = logging.getLogger("backerd")

Notify = Callable[[str], None]


@runtime_checkable
class Closable(Protocol):
    def close(self) -> None: ...


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""  # the probe then knows of no other driver; the port scan still runs


def _system_bus() -> PortBus:
    from backerd.hw.host import DevPortBus

    return DevPortBus()


def _system_buffer(card: CardSettings) -> DmaBuffer:
    from backerd.hw.host import MemDmaBuffer, UdmaBuffer

    if card.udmabuf is not None:
        return UdmaBuffer(card.udmabuf)
    return MemDmaBuffer(card.dma_address, card.dma_size)


def _system_ppdev(name: str) -> SppPort:
    from backerd.hw.host import Ppdev

    return Ppdev(Path("/dev") / name)


def _system_port_info(name: str) -> PortInfo:
    from backerd.hw.host import port_info

    return port_info(name)


@dataclass
class CardHost:
    """What a card unit takes from the machine (each a call, so nothing opens early)."""

    bus: Callable[[], PortBus] = _system_bus
    buffer: Callable[[CardSettings], DmaBuffer] = _system_buffer
    read_proc: Callable[[str], str] = _read  # "/proc/ioports", "/proc/dma"
    ppdev: Callable[[str], SppPort] = _system_ppdev
    port_info: Callable[[str], PortInfo] = _system_port_info
    clock: ServiceClock = field(default_factory=WallClock)


def system_host() -> CardHost:
    return CardHost()


def _modem(config: UnitConfig, card: CardSettings, host: CardHost,
           opened: list[Callable[[], None]]) -> Modem:
    bus = host.bus()
    if isinstance(bus, Closable):  # /dev/port is a file; an emulator's bus is not
        opened.append(bus.close)
    if config.deck == "isa":
        from backerd.hw.isa import IsaModem
        from backerd.hw.probe import probe_isa

        location = probe_isa(bus, host.read_proc("/proc/ioports"), host.read_proc("/proc/dma"),
                             base=card.port, channel=card.dma)
        buffer = host.buffer(card)
        opened.append(buffer.close)
        return IsaModem(bus, buffer, location)
    from backerd.hw.parport import ParportModem

    info = host.port_info(card.parport)
    buffer = host.buffer(card)
    opened.append(buffer.close)
    spp = host.ppdev(card.parport)
    opened.append(spp.close)
    return ParportModem(bus, buffer, spp, info)


def open_card_unit(config: UnitConfig, *, notify: Notify = lambda text: None,
                   host: CardHost | None = None) -> Unit:
    """The unit of ``config`` on its real card; a refusal is a ``HardwareUnavailable``."""
    from backerd.hw.changer import CardChanger, SidecarSlot
    from backerd.hw.unit import HardwareUnit, prompter_for
    from backerd.medium import BackerMedium
    from backerd.tape.drive import Drive

    card = config.card
    if card is None:
        raise ConfigError(f"unit {config.number}: deck {config.deck!r} is not a real card")
    host = host or system_host()
    geometry = mode_params(config.mode).geometry
    fps, standard = geometry.fps, str(geometry.standard)
    length = parse_length(config.length)[1] * 60 * fps
    opened: list[Callable[[], None]] = []
    try:
        modem = _modem(config, card, host, opened)
        opened.insert(0, modem.close)
        control = open_operator(config.number, config.vcr, mode=config.mode,
                                notify=notify, length=length, fps=fps, standard=standard)
        try:
            card.sidecar.parent.mkdir(parents=True, exist_ok=True)
            catalog = SidecarCatalog(card.sidecar)
        except BaseException:
            if isinstance(control, Closable):
                control.close()
            raise
    except BaseException:
        for close in opened:
            with contextlib.suppress(Exception):
                close()
        raise
    # The card cannot see the cassette's write-protect tab: the VCR refuses REC itself.
    info = TapeInfo(standard, fps, length, catalog, lambda: False, catalog.signal_end)
    deck = CardDeck(control, modem, info, default_mode=config.mode)
    number = config.number
    log.info("unit %d: %s, VCR control %s, catalog %s", number, modem.name, control.name,
             card.sidecar)
    def note(message: str) -> None:
        log.info("unit %d: %s", number, message)

    medium = BackerMedium(deck, mode=config.mode, log=note)
    drive = Drive(medium)
    changer = CardChanger(number, deck, medium, drive,
                          SidecarSlot(card.sidecar.parent, card.label, info),
                          prompter=prompter_for(number, config, control, notify), log=note)

    def release_hardware() -> None:  # after the unit closed the modem
        for close in opened[1:]:
            with contextlib.suppress(Exception):
                close()

    return HardwareUnit(config, drive, deck=deck, modem=modem, clock=host.clock,
                        on_shutdown=medium.close, on_closed=release_hardware,
                        operator=control, changer=changer,
                        probe=WorkProbe(deck.position, lambda: medium.lane.busy))


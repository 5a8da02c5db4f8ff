"""Finding the ISA card: the port scan and DMA channel test of spec section 13.

Theory of operation: ``probe_isa`` walks the candidate bases 0x300-0x33C, skipping every
base another driver claims in /proc/ioports (NE2000 at 0x300, MPU-401 or SCSI at
0x330 are common). At each base it writes 0x80 and reads back: an empty ISA port reads
0xFF and any other card shows bits a Backer never sets, so only DATA, SYNC and FIELD
BUSY may be set. A candidate is then started (0x02, a pause of five lines, 0x22) with
DMA channels 1 and 3 masked, and the 8237 status register is watched for one frame
time (1/20 s): the channel whose DREQ rises is the card's. A channel that /proc/dma
shows in use by another driver is refused (the kernel's DMA lock is out of reach from
userspace, so sharing controller 1 is unsafe). A port and channel pinned in the
configuration skip the scan; the DREQ test still runs once, so a wrong jumper is named.

Every failure is one ``HardwareUnavailable`` whose message lists what was tried and
why each base was passed over, and names the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from backerd.errors import HardwareUnavailable
from backerd.hw import dma8237 as d
from backerd.hw.bus import PortBus
from backerd.hw.card import CARD_DMA_CHANNELS, LINE_NS, PROBE_ALLOWED, PROBE_BASES
from backerd.hw.procfs import dma_channels, port_owner

DREQ_WATCH_NS = 50_000_000  # one frame time (1/20 s)


@dataclass(frozen=True)
class CardLocation:
    base: int
    channel: int


def _looks_like_card(bus: PortBus, base: int) -> bool:
    bus.outb(base, 0x80)
    value = bus.inb(base)
    return value & ~PROBE_ALLOWED & 0xFF == 0


def _dreq_channel(bus: PortBus, base: int, channels: tuple[int, ...]) -> int | None:
    for ch in CARD_DMA_CHANNELS:
        bus.outb(d.SINGLE_MASK, 0x04 | ch)
    bus.inb(d.STATUS)  # clears terminal-count bits
    bus.outb(base, 0x02)
    bus.delay_ns(5 * LINE_NS)
    bus.outb(base, 0x22)
    deadline = bus.now_ns() + DREQ_WATCH_NS
    found = None
    try:
        while bus.now_ns() < deadline:
            status = bus.inb(d.STATUS)
            hits = [ch for ch in channels if d.status_dreq(status, ch)]
            if hits:
                found = hits[0]
                break
    finally:
        bus.outb(base, 0x00)
    return found


def probe_isa(
    bus: PortBus, ioports: str, dma: str, *, base: int | None = None,
    channel: int | None = None,
) -> CardLocation:
    """Find the card (or check the pinned one); ``ioports``/``dma`` are /proc texts."""
    in_use = dma_channels(dma)
    if channel is not None and channel not in CARD_DMA_CHANNELS:
        raise HardwareUnavailable(
            f"DMA channel {channel} is not one a Backer card can use (jumper 1 or 3)")
    bases = (base,) if base is not None else PROBE_BASES
    notes: list[str] = []
    for b in bases:
        owner = port_owner(ioports, b, b)
        if owner is not None:
            notes.append(f"{b:#x} claimed by {owner}")
            if base is not None:
                raise HardwareUnavailable(
                    f"port {b:#x} is claimed by {owner} (/proc/ioports): unload that driver "
                    "or move the card's port jumper and set 'port' in the unit config")
            continue
        if not _looks_like_card(bus, b):
            notes.append(f"{b:#x} no card")
            continue
        got = _dreq_channel(bus, b, CARD_DMA_CHANNELS)
        if got is None:
            notes.append(f"{b:#x} answers but raises no DMA request on channel 1 or 3")
            continue
        if channel is not None and got != channel:
            raise HardwareUnavailable(
                f"the card at {b:#x} requests DMA on channel {got}, not the configured "
                f"{channel}: set dma = {got} in the unit config or move the DMA jumper")
        if got in in_use:
            raise HardwareUnavailable(
                f"the card at {b:#x} uses DMA channel {got}, which {in_use[got]} holds "
                "(/proc/dma): unload that driver or move the card's jumper to the other "
                "channel")
        return CardLocation(b, got)
    where = "the configured port" if base is not None else "ports 0x300-0x33C"
    raise HardwareUnavailable(
        f"no Backer card found at {where} ({'; '.join(notes) or 'nothing to probe'}): check "
        "that the card is seated, its port jumper, and that no other driver claims the port")

"""An emulated 8237 DMA controller (channels 0-3) and the physical memory it moves.

Theory of operation: registers behave as the data sheet says: 16-bit address and
count registers written and read through the byte flip-flop, a page register per
channel, mode and mask registers, a status register whose terminal-count bits clear
on read and whose high nibble shows the DREQ lines. Devices move bytes in bulk with
``to_memory``/``from_memory``: the controller walks the block, and at terminal count
either reloads the base registers (auto-initialise) or masks the channel. A device's
EOP (the Backer's "DMA enable off") reloads an auto-init channel too.

A count read while a transfer is active returns a *stale low byte*: the card's FIFO
has fetched four bytes ahead, and the low byte comes from that earlier count. Backends
must therefore sample while DREQ is low, as the original driver did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backerd.hw import dma8237 as d


class PhysMemory:
    """Physical memory regions an emulated DMA controller can reach."""

    def __init__(self) -> None:
        self.regions: dict[int, np.ndarray] = {}

    def add(self, phys: int, size: int) -> np.ndarray:
        array = np.zeros(size, dtype=np.uint8)
        self.regions[phys] = array
        return array

    def view(self, phys: int, size: int) -> np.ndarray:
        for base, array in self.regions.items():
            if base <= phys and phys + size <= base + array.size:
                return array[phys - base : phys - base + size]
        raise ValueError(f"DMA to unmapped physical memory {phys:#x}+{size}")


class EmuDmaBuffer:
    """``DmaBuffer`` over emulated physical memory."""

    def __init__(self, memory: PhysMemory, phys: int = 0xE00000, size: int = 65536) -> None:
        self._phys = phys
        self._array = memory.add(phys, size)

    @property
    def phys(self) -> int:
        return self._phys

    @property
    def array(self) -> np.ndarray:
        return self._array

    def close(self) -> None:
        return None


@dataclass
class Channel:
    base_address: int = 0
    base_count: int = 0
    address: int = 0
    count: int = 0xFFFF
    page: int = 0
    mode: int = 0
    masked: bool = True
    dreq: bool = False
    stale_low: int | None = None

    @property
    def auto_init(self) -> bool:
        return bool(self.mode & d.MODE_AUTO_INIT)

    @property
    def to_memory(self) -> bool:
        return self.mode & 0x0C == d.MODE_WRITE

    def reload(self) -> None:
        self.address, self.count = self.base_address, self.base_count


class I8237:
    PORTS = frozenset(range(0x00, 0x10)) | frozenset(d.PAGE_PORT.values())

    def __init__(self, memory: PhysMemory) -> None:
        self.memory = memory
        self.channels = [Channel() for _ in range(4)]
        self.flip_flop = False
        self.tc_bits = 0
        self.claimed: set[int] = set()  # channels other (emulated) drivers use

    # -- port interface --------------------------------------------------------------

    def _byte(self, register: int, value: int | None) -> int:
        high = self.flip_flop
        self.flip_flop = not self.flip_flop
        if value is None:
            return (register >> 8) & 0xFF if high else register & 0xFF
        return (register & 0x00FF) | (value << 8) if high else (register & 0xFF00) | value

    def outb(self, port: int, value: int) -> None:
        page_of = {p: c for c, p in d.PAGE_PORT.items()}
        if port in page_of:
            self.channels[page_of[port]].page = value
        elif port < 8:
            ch = self.channels[port // 2]
            if port % 2 == 0:
                ch.base_address = ch.address = self._byte(ch.base_address, value)
            else:
                ch.base_count = ch.count = self._byte(ch.base_count, value)
        elif port == d.SINGLE_MASK:
            self.channels[value & 3].masked = bool(value & 4)
        elif port == d.MODE:
            self.channels[value & 3].mode = value & 0xFC
        elif port == d.CLEAR_FLIP_FLOP:
            self.flip_flop = False
        elif port == d.MASTER_CLEAR:
            self.flip_flop = False
            self.tc_bits = 0
            for ch in self.channels:
                ch.masked = True
        elif port == d.CLEAR_MASKS:
            for ch in self.channels:
                ch.masked = False
        elif port == d.ALL_MASK:
            for i, ch in enumerate(self.channels):
                ch.masked = bool(value & (1 << i))

    def inb(self, port: int) -> int:
        page_of = {p: c for c, p in d.PAGE_PORT.items()}
        if port in page_of:
            return self.channels[page_of[port]].page
        if port < 8:
            ch = self.channels[port // 2]
            if port % 2 == 0:
                return self._byte(ch.address, None)
            if not self.flip_flop and ch.dreq and not ch.masked:
                # low byte while the card's FIFO fetches ahead: an earlier count
                self.flip_flop = True
                return (ch.count + 4) & 0xFF
            return self._byte(ch.count, None)
        if port == d.STATUS:
            value = self.tc_bits | sum(
                0x10 << i for i, ch in enumerate(self.channels) if ch.dreq
            )
            self.tc_bits = 0
            return value
        return 0xFF

    # -- device side -----------------------------------------------------------------

    def active(self, channel: int, *, to_memory: bool) -> bool:
        ch = self.channels[channel]
        return not ch.masked and ch.to_memory == to_memory and channel not in self.claimed

    def _walk(self, channel: int, n: int, data: np.ndarray | None) -> np.ndarray:
        ch = self.channels[channel]
        out = []
        done = 0
        while done < n and not ch.masked:
            left = ch.count + 1 if ch.count != 0xFFFF else 0x10000
            step = min(n - done, left)
            phys = ch.page << 16 | ch.address
            view = self.memory.view(phys, step)
            if data is None:
                out.append(view.copy())
            else:
                view[:] = data[done : done + step]
            done += step
            ch.address = (ch.address + step) & 0xFFFF
            ch.count = (ch.count - step) & 0xFFFF
            if step == left:
                self.tc_bits |= 1 << channel
                if ch.auto_init:
                    ch.reload()
                else:
                    ch.masked = True
        return np.concatenate(out) if out else np.zeros(0, np.uint8)

    def to_memory(self, channel: int, data: np.ndarray) -> int:
        """Device -> memory; returns the bytes moved (fewer when the channel masks)."""
        before = self.channels[channel].count
        self._walk(channel, len(data), data)
        return len(data) if not self.channels[channel].masked else (before + 1) & 0xFFFF

    def from_memory(self, channel: int, n: int) -> np.ndarray:
        """Memory -> device: up to ``n`` bytes (fewer when the channel masks)."""
        return self._walk(channel, n, None)

    def eop(self, channel: int) -> None:
        ch = self.channels[channel]
        if ch.auto_init:
            ch.reload()

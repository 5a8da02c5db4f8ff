"""An emulated ECP parallel port with an external Backer unit on it.

Theory of operation: the port has the SPP registers (data at base, status at base+1,
control at base+2) and, when it is an ECP port, the extended registers at base+0x400
(FIFO, cnfgB, and the ECR at +2). The unit listens to the SPP sequence of spec
section 14: strobe asserted (control 1), data 0xD4, 0xD5, the control byte, control 0.
A control byte with a direction restarts the unit's video timing; the transfer itself
starts when the ECR is set to ECP FIFO mode with DMA enabled, and the time between the
two is checked against the start window (the unit shares the ISA card's video logic,
``IsaCard``, with the settle time added). Bytes pass through a 16-byte FIFO that the
port fills from (or empties to) the 8237 while DMA is enabled; at terminal count the
port sets the ECR's service-interrupt bit and stops moving bytes until software writes
the ECR again. An empty FIFO on transmit sends black lines; a full one on receive
drops bytes. A port without ECP reads 0xFF at the extended registers.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import numpy as np

from backerd.errors import HardwareUnavailable
from backerd.hw.card import (
    ECP_FIFO_DEPTH,
    ECR_DMA_EN,
    ECR_FIFO_EMPTY,
    ECR_FIFO_FULL,
    ECR_MODE_MASK,
    ECR_SERVICE,
    PARPORT_SETTLE_US,
    Ctl,
    decode_control,
)
from backerd.hw.emu.i8237 import I8237
from backerd.hw.emu.isacard import IsaCard
from backerd.hw.emu.vcr import EmuVcr

if TYPE_CHECKING:
    from backerd.hw.emu.machine import EmuMachine

ECP_OFFSET = 0x400


class EcpUnit(IsaCard):
    """The external unit: the ISA card's video logic, bytes through the port's FIFO."""

    def __init__(self, port: EcpPort, channel: int, dma: I8237, vcr: EmuVcr) -> None:
        super().__init__(-1, channel, dma, vcr)
        self.port = port
        self.dropped = 0

    @property
    def ports(self) -> range:
        return range(0)

    def _pull(self, n: int) -> np.ndarray:
        port = self.port
        out = np.zeros(n, np.uint8)
        if self.direction != "transmit":
            return out
        done = 0
        while done < n:  # a catch-up over many lines streams through the FIFO
            port.refill()
            take = min(n - done, len(port.fifo))
            if take == 0:
                break  # FIFO empty: black for the rest
            out[done : done + take] = np.frombuffer(bytes(port.fifo[:take]), np.uint8)
            del port.fifo[:take]
            done += take
        return out

    def _store(self, chunk: np.ndarray) -> None:
        port = self.port
        port.fifo.extend(chunk.tobytes())
        port.drain()
        if len(port.fifo) > ECP_FIFO_DEPTH:
            self.dropped += len(port.fifo) - ECP_FIFO_DEPTH
            del port.fifo[ECP_FIFO_DEPTH:]


class EcpPort:
    def __init__(self, base: int, channel: int, dma: I8237, vcr: EmuVcr, *,
                 ecp: bool = True, unit: bool = True) -> None:
        self.base = base
        self.channel = channel
        self.dma = dma
        self.ecp = ecp
        self.unit = EcpUnit(self, channel, dma, vcr) if unit else None
        self.data = 0
        self.control = 0
        self.ecr = 0x15  # PS/2-compatible reset value (mode 000, FIFO empty)
        self.fifo = bytearray()
        self.sequence: list[int] = []
        self.pending: int | None = None  # control byte waiting for ECR DMA enable
        self.claimed_by: str | None = None  # a kernel driver holding the port (lp)
        self.now = 0
        self.terminal_counts = 0

    @property
    def ports(self) -> range:
        return range(self.base, self.base + ECP_OFFSET + 3)

    # -- DMA through the FIFO --------------------------------------------------------

    def _dma_on(self) -> bool:
        return (self.ecr & ECR_MODE_MASK) == 0x60 and bool(self.ecr & ECR_DMA_EN) \
            and not self.ecr & ECR_SERVICE

    def _terminal_count(self) -> None:
        self.ecr |= ECR_SERVICE  # the port stops until software writes the ECR again
        self.terminal_counts += 1

    def refill(self) -> None:
        if self._dma_on() and self.dma.active(self.channel, to_memory=False):
            room = ECP_FIFO_DEPTH - len(self.fifo)
            ch = self.dma.channels[self.channel]
            left = ch.count + 1 if ch.count != 0xFFFF else 0x10000
            data = self.dma.from_memory(self.channel, min(room, left))
            self.fifo.extend(data.tobytes())
            if len(data) == left:
                self._terminal_count()

    def drain(self) -> None:
        if self._dma_on() and self.dma.active(self.channel, to_memory=True) and self.fifo:
            ch = self.dma.channels[self.channel]
            left = ch.count + 1 if ch.count != 0xFFFF else 0x10000
            n = min(len(self.fifo), left)
            self.dma.to_memory(self.channel, np.frombuffer(bytes(self.fifo[:n]), np.uint8))
            del self.fifo[:n]
            if n == left:
                self._terminal_count()

    # -- registers --------------------------------------------------------------------

    def outb(self, port: int, value: int, now: int) -> None:
        self.now = now
        off = port - self.base
        if off == 0:
            self.data = value
            if self.control & 0x01:
                self.sequence.append(value)
        elif off == 2:
            before, self.control = self.control, value
            if value & 0x01 and not before & 0x01:
                self.sequence = []
            if not value & 0x01 and before & 0x01 and len(self.sequence) >= 3:
                head, byte = self.sequence[-3:-1], self.sequence[-1]
                self.sequence = []
                if head == [0xD4, 0xD5]:
                    self._control_byte(byte, now)
        elif off == ECP_OFFSET + 2 and self.ecp:
            self.ecr = value & 0xFC
            if self.unit is not None and self.pending is not None and self._dma_on():
                self.unit.outb(-1, self.pending, now)
                self.pending = None
            if not self._dma_on():
                self.fifo.clear()
        elif off == ECP_OFFSET + 1 and self.ecp:
            pass  # cnfgB: nothing to configure on this port

    def _control_byte(self, value: int, now: int) -> None:
        unit = self.unit
        if unit is None:
            return
        geometry, direction = decode_control(value)
        if geometry is None or direction is None:
            unit.outb(-1, value, now)
            self.pending = None
            return
        unit.window_extra_ns = PARPORT_SETTLE_US[geometry.density] * 1000
        unit.outb(-1, value & ~(Ctl.TRANSMIT | Ctl.RECEIVE), now)  # restarts the timing
        self.pending = value  # the transfer starts with DMA enabled in the ECR

    def inb(self, port: int, now: int) -> int:
        off = port - self.base
        if off == 0:
            return self.data
        if off == 1:
            return 0x78  # busy high, ack high, paper-out low, select high, no error
        if off == 2:
            return self.control | 0xC0
        if not self.ecp:
            return 0xFF
        if off == ECP_OFFSET + 2:
            value = self.ecr | (ECR_FIFO_EMPTY if not self.fifo else 0)
            return value | (ECR_FIFO_FULL if len(self.fifo) >= ECP_FIFO_DEPTH else 0)
        if off == ECP_OFFSET + 1:
            return 0x00
        return 0xFF

    def sync(self, now: int) -> None:
        if self.unit is not None:
            self.unit.sync(now)
            # the unit's DREQ is the port's request while the FIFO may move bytes
            self.dma.channels[self.channel].dreq = self._dma_on() and \
                self.dma.channels[self.channel].dreq


class EmuPpdev:
    """``SppPort`` of the emulated port: what ppdev's ioctls would do on it."""

    def __init__(self, bus: EmuMachine, port: EcpPort) -> None:
        self.bus = bus
        self.port = port
        self.claimed = False

    def claim(self) -> None:
        if self.port.claimed_by is not None:
            raise HardwareUnavailable(
                f"parallel port {self.port.base:#x} is held by the {self.port.claimed_by} "
                "driver (PPCLAIM: ENXIO): unload it (modprobe -r lp) or blacklist it",
                errno=errno.EBUSY)
        self.claimed = True

    def release(self) -> None:
        self.claimed = False

    def write_control(self, value: int) -> None:
        self.bus.outb(self.port.base + 2, value)

    def write_data(self, value: int) -> None:
        self.bus.outb(self.port.base, value)

    def set_reverse(self, reverse: bool) -> None:
        self.bus.outb(self.port.base + 2, (self.port.control & ~0x20) | (0x20 if reverse else 0))

    def close(self) -> None:
        self.release()

"""The external (parallel-port) Backer as a ``Modem``: ECP FIFO fed by ISA DMA.

Theory of operation (spec section 14, hardware-notes section 4): ppdev claims the port
(PPEXCL before PPCLAIM, so ``lp`` cannot share it) and carries the SPP control-byte
sequence. The stream itself cannot go through ppdev (no ECR, no DMA, gaps between its
1024-byte chunks), so the ECR and the 8237 are programmed directly on the port bus,
sharing the DMA ring with the ISA backend.

A start saves the ECR, sends control byte 0, programs the channel in single auto-init
mode over the whole ring (ppdev gives userspace no interrupt handler fast enough to
re-point the channel every frame, so the ring is one block of whole frames, in both
directions, so that terminal count falls in a vertical retrace), sets the
port direction, sends the control byte with the direction bit, waits the pause (first
line - 1 lines plus 25 us at high or 60 us at low density, plus adjust) and writes
ECR = 0x68. At terminal count (once per ring lap, at a frame end) the port sets the
ECR's service bit and stops; ``service`` re-arms it, and when a lap ends before the
next tick it spins on the ECR until then so the re-arm lands in the vertical retrace.
A stop sends control byte 0, masks the channel, restores the saved ECR through mode
001 and releases the port.

Refusals, each naming the fix: a port without an ECR (not ECP), no ISA DMA channel
(PCI and USB adapters), and a port another driver holds.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from backerd.errors import HardwareUnavailable
from backerd.format.params import Geometry
from backerd.hw import dma8237 as d
from backerd.hw.bus import DmaBuffer, PortBus, play_bus, timing_critical
from backerd.hw.card import (
    ECR_FIFO_FULL,
    ECR_PS2,
    ECR_RUN,
    ECR_SERVICE,
    LINE_NS,
    PARPORT_SEND,
    PARPORT_SETTLE_US,
    STOP_BYTE,
    control_byte,
    start_window,
)
from backerd.hw.ring import transmit_size
from backerd.hw.stream import DmaModem

START_ATTEMPTS = 100  # ~1 ms each; a busy machine preempts the spin now and then
LAP_SPIN_NS = 80_000_000  # spin for a lap end closer than this (ticks can come late)
# A tick that finds the port stopped knows the lap end only from the average byte rate,
# which is off by up to a field (no bytes move in the retrace): only a re-arm later than
# that is certainly inside the data lines and counted.
ECR_TEST = 0x34  # parport_pc's probe value: reads back 0x35 on an ECP port


@runtime_checkable
class SppPort(Protocol):
    """What ppdev does for the unit: claim, release, SPP registers, direction."""

    def claim(self) -> None: ...

    def release(self) -> None: ...

    def write_control(self, value: int) -> None: ...

    def write_data(self, value: int) -> None: ...

    def set_reverse(self, reverse: bool) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PortInfo:
    """/proc/sys/dev/parport/parportN: base-addr (base, base_hi), dma, modes."""

    name: str
    base: int
    base_hi: int
    dma: int  # -1: none
    modes: str


def check_port(info: PortInfo) -> None:
    if info.dma < 0 or info.dma > 3:
        raise HardwareUnavailable(
            f"{info.name} has no ISA DMA channel (dma {info.dma}): PCI, PCIe and USB parallel "
            "adapters cannot drive the unit; use a mainboard (Super I/O) port with DMA set in "
            "the BIOS and parport_pc loaded with dma=auto (or dma=1/3)")
    if "ECP" not in info.modes or "DMA" not in info.modes:
        raise HardwareUnavailable(
            f"{info.name} offers modes {info.modes}, not ECP with DMA: set the port to ECP "
            "(or ECP+EPP) in the BIOS and load parport_pc with dma=auto")


def send_control(spp: SppPort, value: int) -> None:
    for register, byte in PARPORT_SEND:
        out = spp.write_control if register == "ctl" else spp.write_data
        out(value if byte is None else byte)


class ParportModem(DmaModem):
    def __init__(self, bus: PortBus, buffer: DmaBuffer, spp: SppPort, info: PortInfo, *,
                 adjust_ns: int = 0, label: str = "") -> None:
        check_port(info)
        super().__init__(bus, buffer, f"{info.name}@{info.base:#x}/dma{info.dma}{label}")
        self.spp = spp
        self.info = info
        self.channel = info.dma
        self.adjust_ns = adjust_ns
        self.ecr_port = info.base_hi + 2
        self.saved_ecr = bus.inb(self.ecr_port)
        bus.outb(self.ecr_port, ECR_TEST)
        if bus.inb(self.ecr_port) & 0xFD != ECR_TEST | 0x01:
            raise HardwareUnavailable(
                f"{info.name} at {info.base:#x} is not an ECP port (no ECR at "
                f"{self.ecr_port:#x}): set the port to ECP in the BIOS setup", errno=errno.ENODEV)
        bus.outb(self.ecr_port, self.saved_ecr)
        spp.claim()
        self.rearms = 0
        self._tc = False
        self.last_gap_ns = 0

    def _program(self, geometry: Geometry, direction: str) -> None:
        mode = d.ECP_TRANSMIT if direction == "transmit" else d.ECP_RECEIVE
        block = d.Block(self.channel, mode, self.buffer.phys, self.block)
        settle = PARPORT_SETTLE_US[geometry.density] * 1000
        window = start_window(geometry.standard, settle + self.adjust_ns)
        for _ in range(START_ATTEMPTS):
            self._to_ps2()
            send_control(self.spp, STOP_BYTE)
            play_bus(self.bus, d.program_plan(block))
            self.spp.set_reverse(direction == "receive")
            with timing_critical():
                send_control(self.spp, control_byte(geometry, direction))
                began = self.bus.now_ns()
                self.bus.delay_ns(window.nominal)
                self.bus.outb(self.ecr_port, ECR_RUN)
                self.last_gap_ns = self.bus.now_ns() - began
            if window.contains(self.last_gap_ns):
                self._tc = False
                self.bus.inb(d.STATUS)
                return
            self.counters.framing_errors += 1
        self._halt()
        raise HardwareUnavailable(
            f"{self.name}: the start pause missed its window {START_ATTEMPTS} times")

    def _to_ps2(self) -> None:
        # ECR mode changes pass through mode 000/001
        self.bus.outb(self.ecr_port, ECR_PS2)

    def _halt(self) -> None:
        send_control(self.spp, STOP_BYTE)
        play_bus(self.bus, d.mask_plan(self.channel))
        self._to_ps2()
        self.bus.outb(self.ecr_port, self.saved_ecr & 0xE0 or ECR_PS2)
        self.spp.set_reverse(False)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.spp.close()

    def _status(self) -> int:
        status = self.bus.inb(d.STATUS)
        self._tc |= d.status_tc(status, self.channel)
        return status

    def _wrapped(self) -> bool:
        self._status()
        tc, self._tc = self._tc, False
        return tc

    def _field_busy(self) -> bool:
        return True  # no status bit: the blank frame after the data covers the stop

    def _hw_offset(self) -> int:
        deadline = self.bus.now_ns() + 2 * LINE_NS
        while d.status_dreq(self._status(), self.channel) and self.bus.now_ns() < deadline:
            self.bus.delay_ns(2_000)
        port = d.COUNT_PORT[self.channel]
        self.bus.outb(d.CLEAR_FLIP_FLOP, 0)
        low = self.bus.inb(port)
        high = self.bus.inb(port)
        return d.position(self.block, d.decode_residue(low, high))

    # -- re-arming at terminal count ----------------------------------------------------

    def _receive_block(self, geometry: Geometry) -> int:
        # the port stops at terminal count: on whole frames that is a vertical retrace
        return transmit_size(geometry.frame_size, self.buffer.array.size)

    def _rearm(self) -> bool:
        ecr = self.bus.inb(self.ecr_port)
        if ecr & ECR_SERVICE:
            if self.direction == "receive" and ecr & ECR_FIFO_FULL:
                self.counters.overruns += 1  # the unit had bytes and nowhere to put them
            self.bus.outb(self.ecr_port, ECR_RUN)
            self.rearms += 1
            return True
        return False

    def _ns_to_lap_end(self) -> float:
        ring = self.tx if self.direction == "transmit" else self.rx
        if ring is None or not self._rate:
            return float("inf")
        return (self.block - ring.hw % self.block) / self._rate

    def service(self) -> None:
        with self.lock:
            if self.direction is not None and self._rearm():
                self._late_rearm(self.bus.now_ns())
        super().service()
        with self.lock:
            if self.direction is None or self._ns_to_lap_end() > LAP_SPIN_NS:
                return
            # the lap ends before the next tick: wait for it and re-arm at once
            with timing_critical():
                deadline = self.bus.now_ns() + 2 * LAP_SPIN_NS
                while self.bus.now_ns() < deadline and not self._rearm():
                    self.bus.delay_ns(LINE_NS)

    def _late_rearm(self, now: int) -> None:
        """A tick found the port stopped: the lap ended before it, bytes were missed."""
        ring = self.tx if self.direction == "transmit" else self.rx
        if ring is None or not self._rate:
            return
        late = now - self._last_time - (self.block - ring.hw % self.block) / self._rate
        assert self.geometry is not None
        if late <= 1_000_000_000 // self.geometry.fps:
            return
        missed = int(late * self._rate)
        if self.direction == "transmit":
            self.counters.underruns += 1
            self.counters.stale_bytes += missed
        else:
            self.counters.overruns += 1
            self.counters.lost_bytes += missed

    def time_wanted(self, tick_ns: int) -> int:
        step = super().time_wanted(tick_ns)
        with self.lock:
            ahead = self._ns_to_lap_end() - 2_000_000
        return max(min(step, int(ahead)), 1) if step else 0

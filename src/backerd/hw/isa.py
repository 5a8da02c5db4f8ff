"""The ISA Backer card (Backer 16/32) as a ``Modem``: 8237 auto-init demand DMA.

Theory of operation (spec section 13): the card owns one I/O port and one 8-bit DMA
channel (1 or 3). A start programs the channel over the whole ring (transmit: the
largest whole number of frames that fits 64 KiB, so the loop stays frame-aligned),
writes the control byte without the direction bit, spins the start pause on the bus
clock, and writes it with the direction bit. The pause actually spent is measured; if
it fell outside the window the card is stopped and the start repeated (a framing
error). The DMA position is read while DREQ is low (waiting up to two line periods),
twice, because the card's FIFO reads four bytes ahead and a count read during a burst
can carry a stale low byte. A stop writes 0 (an EOP, so the auto-init channel rewinds)
and masks the channel.
"""

from __future__ import annotations

from backerd.errors import HardwareUnavailable
from backerd.format.params import Geometry
from backerd.hw import dma8237 as d
from backerd.hw.bus import DmaBuffer, PortBus, play_bus, timing_critical
from backerd.hw.card import LINE_NS, STOP_BYTE, Status, start_sequence, start_window
from backerd.hw.probe import CardLocation
from backerd.hw.stream import DmaModem

START_ATTEMPTS = 100  # ~1 ms each; a busy machine preempts the spin now and then
RESIDUE_AGREE = 16  # bytes two consecutive residue reads may differ by


class IsaModem(DmaModem):
    def __init__(self, bus: PortBus, buffer: DmaBuffer, location: CardLocation, *,
                 adjust_ns: int = 0, label: str = "") -> None:
        name = f"isa@{location.base:#x}/dma{location.channel}{label}"
        super().__init__(bus, buffer, name)
        self.location = location
        self.adjust_ns = adjust_ns
        self.last_gap_ns = 0

    def _program(self, geometry: Geometry, direction: str) -> None:
        ch, base = self.location.channel, self.location.base
        mode = d.ISA_TRANSMIT if direction == "transmit" else d.ISA_RECEIVE
        block = d.Block(ch, mode, self.buffer.phys, self.block)
        first, second = start_sequence(geometry, direction)
        window = start_window(geometry.standard, self.adjust_ns)
        for _ in range(START_ATTEMPTS):
            self.bus.outb(base, STOP_BYTE)
            play_bus(self.bus, d.program_plan(block))
            with timing_critical():
                self.bus.outb(base, first)
                began = self.bus.now_ns()
                self.bus.delay_ns(window.nominal)
                self.bus.outb(base, second)
                self.last_gap_ns = self.bus.now_ns() - began
            if window.contains(self.last_gap_ns):
                self.bus.inb(d.STATUS)  # forget terminal counts of earlier runs
                return
            self.counters.framing_errors += 1
        self._halt()
        raise HardwareUnavailable(
            f"{self.name}: the start pause missed its window {START_ATTEMPTS} times "
            f"(last {self.last_gap_ns / 1000:.0f} us, wanted {window.low // 1000}-"
            f"{window.high // 1000} us): the machine is too busy; try realtime scheduling")

    def _halt(self) -> None:
        self.bus.outb(self.location.base, STOP_BYTE)
        play_bus(self.bus, d.mask_plan(self.location.channel))

    def _status(self) -> int:
        return self.bus.inb(self.location.base)

    def _field_busy(self) -> bool:
        return bool(self._status() & Status.FIELD_BUSY)

    def _wrapped(self) -> bool:
        return d.status_tc(self.bus.inb(d.STATUS), self.location.channel)

    def _read_residue(self) -> int:
        port = d.COUNT_PORT[self.location.channel]
        self.bus.outb(d.CLEAR_FLIP_FLOP, 0)
        low = self.bus.inb(port)
        high = self.bus.inb(port)
        return d.decode_residue(low, high)

    def _hw_offset(self) -> int:
        deadline = self.bus.now_ns() + 2 * LINE_NS
        while self._status() & Status.DREQ and self.bus.now_ns() < deadline:
            self.bus.delay_ns(2_000)
        first = self._read_residue()
        for _ in range(3):
            second = self._read_residue()
            if abs(second - first) <= RESIDUE_AGREE:
                break
            first = second
        return d.position(self.block, second)

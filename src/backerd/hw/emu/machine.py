"""The emulated PC: a port bus routing to devices, DMA memory, and the shared clock.

Theory of operation: ``EmuMachine`` implements ``PortBus``. Every access costs bus
time, then brings all devices up to the clock (``sync``) before the register access
itself, so whatever a backend reads reflects the time it reads at. Unclaimed ports read
0xFF, like a floating ISA bus. One re-entrant lock serialises the service task, the
VCR buttons pressed from worker threads and the devices. ``ioports`` and ``dma_text``
are what /proc/ioports and /proc/dma would show on this machine, for the probe.
"""

from __future__ import annotations

import threading
from typing import Protocol

from backerd.hw.emu.clock import EmuClock
from backerd.hw.emu.i8237 import I8237, EmuDmaBuffer, PhysMemory


class Device(Protocol):
    @property
    def ports(self) -> range: ...

    def inb(self, port: int, now: int) -> int: ...

    def outb(self, port: int, value: int, now: int) -> None: ...

    def sync(self, now: int) -> None: ...


class EmuMachine:
    def __init__(self, *, realtime: bool = False) -> None:
        self.clock = EmuClock(realtime=realtime)
        self.lock = threading.RLock()
        self.memory = PhysMemory()
        self.dma = I8237(self.memory)
        self.devices: list[Device] = []
        self.ioports = "0000-001f : dma1\n0080-008f : dma page reg\n"
        self.dma_text = " 4: cascade\n"
        self.accesses = 0

    def add(self, device: Device) -> None:
        self.devices.append(device)

    def dma_buffer(self, phys: int = 0xE00000, size: int = 65536) -> EmuDmaBuffer:
        return EmuDmaBuffer(self.memory, phys, size)

    def _device(self, port: int) -> Device | None:
        for dev in self.devices:
            if port in dev.ports:
                return dev
        return None

    def sync(self) -> None:
        with self.lock:
            now = self.clock.now_ns()
            for dev in self.devices:
                dev.sync(now)

    # -- PortBus ------------------------------------------------------------------------

    def inb(self, port: int) -> int:
        with self.lock:
            self.clock.access()
            self.accesses += 1
            self.sync()
            if port in I8237.PORTS:
                return self.dma.inb(port)
            dev = self._device(port)
            return 0xFF if dev is None else dev.inb(port, self.clock.now_ns()) & 0xFF

    def outb(self, port: int, value: int) -> None:
        with self.lock:
            self.clock.access()
            self.accesses += 1
            self.sync()
            if port in I8237.PORTS:
                self.dma.outb(port, value & 0xFF)
                return
            dev = self._device(port)
            if dev is not None:
                dev.outb(port, value & 0xFF, self.clock.now_ns())

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def delay_ns(self, ns: int) -> None:
        self.clock.delay(ns)

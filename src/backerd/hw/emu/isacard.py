"""An emulated Backer ISA card: control and status register, DREQ, video in and out.

Theory of operation: the card is one I/O port. Writing a control byte with DMA enable
after a stop restarts its video timing (``hw.card`` lists the decisions this follows).
The direction bit arms the transfer: transmit pulls ``bytes_per_line`` bytes from the
8237 on every data line and hands each finished field to the VCR's record head;
receive clocks the played field's bytes into memory, line by line, on the VCR's field
clock. A direction write outside the start window shifts the data by whole lines, so a
badly timed start really damages the recording (the backend must notice and retry).
Clearing the enable bit is an EOP for the 8237 (an auto-init channel rewinds).

The status byte shows DREQ (only while a data line's burst is on), sync, field busy and
the inverted standard bit; with no video on receive, the card sees no sync at all.
"""

from __future__ import annotations

import numpy as np

from backerd.hw.card import Ctl, Status, decode_control, start_window
from backerd.hw.emu.i8237 import I8237
from backerd.hw.emu.vcr import EmuVcr
from backerd.hw.emu.video import FieldTiming


class IsaCard:
    def __init__(self, base: int, channel: int, dma: I8237, vcr: EmuVcr) -> None:
        self.base = base
        self.channel = channel
        self.dma = dma
        self.vcr = vcr
        self.ctl = 0
        self.t0 = 0
        self.timing: FieldTiming | None = None
        self.direction: str | None = None
        self.shift_lines = 0  # > 0: data starts late by lines; < 0: early
        self.tx_field = 0
        self.tx_done = 0
        self.tx_buf: list[np.ndarray] = []
        self.rx_origin = -1
        self.rx_index = 0
        self.rx_data: bytes | None = None
        self.rx_done = 0
        self.misaligned_starts = 0
        self.window_extra_ns = 0  # the parallel unit's settle time after the control byte
        self.fields_sent = 0

    @property
    def ports(self) -> range:
        return range(self.base, self.base + 1)

    # -- registers --------------------------------------------------------------------

    def outb(self, port: int, value: int, now: int) -> None:
        geometry, direction = decode_control(value)
        if geometry is None:
            if self.ctl & Ctl.DMA:
                self.dma.eop(self.channel)
            self.ctl, self.timing, self.direction = value, None, None
            self._dreq(False)
            return
        if not self.ctl & Ctl.DMA or self.timing is None or self.timing.geometry != geometry:
            self.t0, self.timing = now, FieldTiming(geometry)
            self.tx_field, self.tx_done, self.tx_buf = 0, 0, []
        if direction is not None and self.direction is None:
            window = start_window(geometry.standard, self.window_extra_ns)
            gap = now - self.t0
            if window.contains(gap):
                self.shift_lines = 0
            else:
                lines = round((gap - window.nominal) / self.timing.line_ns)
                self.shift_lines = lines or (1 if gap > window.high else -1)
                self.misaligned_starts += 1
            if direction == "transmit" and self.shift_lines < 0:
                self._pull(-self.shift_lines * geometry.bytes_per_line)  # sent too early
            if direction == "transmit" and self.shift_lines > 0:
                self.tx_buf.append(np.zeros(self.shift_lines * geometry.bytes_per_line,
                                            np.uint8))
        self.ctl, self.direction = value, direction

    def inb(self, port: int, now: int) -> int:
        value = 0  # the raw serial data bit (Status.DATA) is not modelled: reads 0
        std_bit = 0 if self.ctl & Ctl.NTSC else Status.PAL
        dreq, sync, idle = self._lines(now)
        if self.ctl & Ctl.DMA and dreq and self.direction is not None:
            value |= Status.DREQ
        if sync:
            value |= Status.SYNC
        if idle:
            value |= Status.FIELD_BUSY
        return value | std_bit

    def _lines(self, now: int) -> tuple[bool, bool, bool]:
        if self.timing is None:
            return False, True, True
        if self.direction == "receive":
            if self.rx_data is None or self.rx_origin < 0:
                return False, True, True  # no video: no sync, no data
            t = now - self.rx_origin - self.rx_index * self.timing.field_ns
            return self.timing.status_at(t, self.timing.lines_for(len(self.rx_data)))
        t = (now - self.t0) % self.timing.field_ns
        n = self.timing.geometry.field_length(self.tx_field)
        return self.timing.status_at(t, self.timing.lines_for(n))

    def _dreq(self, on: bool) -> None:
        self.dma.channels[self.channel].dreq = on

    # -- moving data --------------------------------------------------------------------

    def _pull(self, n: int) -> np.ndarray:
        if self.direction == "transmit" and self.dma.active(self.channel, to_memory=False):
            data = self.dma.from_memory(self.channel, n)
            if len(data) == n:
                return data
            return np.concatenate([data, np.zeros(n - len(data), np.uint8)])
        return np.zeros(n, np.uint8)  # nothing fetched: a black line

    def sync(self, now: int) -> None:
        if self.timing is not None and self.direction == "transmit":
            self._sync_transmit(now)
        self._sync_receive(now)
        dreq = self._lines(now)[0]
        self._dreq(bool(self.ctl & Ctl.DMA) and dreq and self.direction is not None)

    def _sync_transmit(self, now: int) -> None:
        timing = self.timing
        assert timing is not None
        while True:
            t = now - self.t0 - self.tx_field * timing.field_ns
            if t < 0:
                return
            n = timing.geometry.field_length(self.tx_field)
            have = sum(len(b) for b in self.tx_buf)
            target = max(timing.bytes_before(t, n), min(have, n))
            if target > have:
                self.tx_buf.append(self._pull(target - have))
            if t < timing.data_end(timing.lines_for(n)):
                return
            field = np.concatenate(self.tx_buf) if self.tx_buf else np.zeros(0, np.uint8)
            self.vcr.record_field(field[:n].tobytes())
            self.fields_sent += 1
            self.tx_buf = [field[n:]] if len(field) > n else []
            self.tx_field += 1

    def _sync_receive(self, now: int) -> None:
        """Follow the VCR's playback clock; clock the field into memory when receiving."""
        vcr = self.vcr
        if vcr.motion != "play":
            self.rx_origin, self.rx_data = -1, None
            return
        if self.rx_origin != vcr.play_origin:
            self.rx_origin, self.rx_index, self.rx_data, self.rx_done = vcr.play_origin, -1, None, 0
        field_ns = 1_000_000_000 // vcr.cassette.fps
        while True:
            start = self.rx_origin + (self.rx_index + 1) * field_ns
            if self.rx_index < 0 or now >= start:
                if self.rx_index >= 0:
                    self._clock_in(field_ns)
                if now < start:
                    return
                self.rx_index += 1
                self.rx_data, self.rx_done = vcr.play_field(), 0
                continue
            t = now - self.rx_origin - self.rx_index * field_ns
            self._clock_in(t)
            return

    def _clock_in(self, t: float) -> None:
        data = self.rx_data
        if data is None:
            return
        timing = self.timing
        if timing is None or self.direction != "receive":
            self.rx_done = len(data)  # the card is not listening: the field goes by
            return
        target = timing.bytes_before(t, len(data))
        if target > self.rx_done:
            self._store(np.frombuffer(data, np.uint8, target - self.rx_done, self.rx_done))
            self.rx_done = target

    def _store(self, chunk: np.ndarray) -> None:
        if self.dma.active(self.channel, to_memory=True):
            self.dma.to_memory(self.channel, chunk)

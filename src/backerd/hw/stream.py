"""The part of a DMA-ring modem both Backer units share: queues, ring, waits.

Theory of operation: ``DmaModem`` keeps one direction running at a time over a ring of
whole frames in the DMA buffer. On transmit, worker threads ``submit`` bytes into a
bounded byte queue and ``service`` copies from it into the ring as far as the guard
allows; after ``finish`` it pads with blank (zero) bytes to the end of the frame and one
blank frame more, and once the card has sent the last data it stops between fields. On
receive, ``service`` copies everything before the guard out of the ring, with a mark of
(bus time, stream bytes so far) taken when the position was read, and ``collect`` waits
until a mark at or after the requested bus time exists.

An underrun (the card passed what software wrote) costs whole frames: software skips
forward to the next position with the same frame phase at least a guard ahead, so
the stale bytes the card sends are old frames (which decoders skip as duplicates) and
field boundaries stay where they were. An overrun loses bytes; the receive stream keeps
its offsets, and what was lost shows as a gap between ``Received`` offsets.

Subclasses implement the register work: ``_program`` (DMA and the start sequence),
``_halt`` (the stop sequence), ``_hw_offset`` (the hardware position in the block) and
``_field_busy``. Every wait has a deadline and ends early on ``abort()``. A transmit
wait's deadline is the tape time of the bytes the card must still send before it can
end (the queue and the ring ahead of it; for ``finish`` up to the padding's end and a
field to stop in), grown by the tape time of any stale frames an underrun adds
meanwhile, plus the caller's slack for scheduling: a card that stops sending is found
out within seconds, and one that keeps sending is never cut short, however much is left.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from backerd.errors import HardwareUnavailable, TapeError
from backerd.format.params import Geometry
from backerd.hw.bus import DmaBuffer, PortBus
from backerd.hw.card import GUARD, LINE_NS
from backerd.hw.modem import ModemCounters, Received
from backerd.hw.ring import ReceiveRing, TransmitRing, advance_position, spans, transmit_size

log = logging.getLogger("backerd")

QUEUE_BYTES = 256 << 10  # hand-over queue between worker threads and the service task


class DmaModem:
    def __init__(self, bus: PortBus, buffer: DmaBuffer, name: str) -> None:
        self.bus = bus
        self.buffer = buffer
        self._name = name
        self._counters = ModemCounters()
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._aborted = False
        self.geometry: Geometry | None = None
        self._direction: str | None = None
        self.block = 0
        self.tx: TransmitRing | None = None
        self.rx: ReceiveRing | None = None
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._finishing = False
        self._data_end = 0  # transmit: stream end of real data once finishing
        self._rx_buf = bytearray()
        self._rx_base = 0  # stream offset of _rx_buf[0]
        self._rx_last_hw = -1
        self._rx_marks: deque[tuple[int, int]] = deque()
        self._wanted = 0
        self._last_time = 0
        self._rate = 0.0  # bytes per ns while running
        self.fault: Exception | None = None

    # -- Modem properties ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def counters(self) -> ModemCounters:
        return self._counters

    @property
    def direction(self) -> str | None:
        return self._direction

    def now_ns(self) -> int:
        return self.bus.now_ns()

    # -- hooks ----------------------------------------------------------------------------

    def _program(self, geometry: Geometry, direction: str) -> None:
        raise NotImplementedError

    def _halt(self) -> None:
        raise NotImplementedError

    def _hw_offset(self) -> int:
        raise NotImplementedError

    def _field_busy(self) -> bool:
        raise NotImplementedError

    def _receive_block(self, geometry: Geometry) -> int:
        """Ring size on receive: the whole buffer (an auto-init channel never stops)."""
        return self.buffer.array.size

    def _wrapped(self) -> bool:
        """Whether the channel reached terminal count since the last call."""
        raise NotImplementedError

    # -- control --------------------------------------------------------------------------

    def start(self, geometry: Geometry, direction: str, preload: bytes = b"") -> None:
        with self.lock:
            if self._direction is not None:
                self._stop_locked()
            self.geometry = geometry
            self._aborted = False
            self.fault = None
            if direction == "transmit":
                self.block = transmit_size(geometry.frame_size, self.buffer.array.size)
                self.tx = TransmitRing(self.block)
                self._finishing = False
                if preload:
                    self._queue.append(bytes(preload))
                    self._queued += len(preload)
                self._fill()  # the first bytes go in before the card starts
            else:
                self.block = self._receive_block(geometry)
                self.rx = ReceiveRing(self.block)
                self._rx_buf.clear()
                self._rx_base = 0
                self._rx_last_hw = -1
                self._rx_marks.clear()
                self._wanted = 0
            self._rate = geometry.frame_size * geometry.fps / 2 / 1e9
            self._program(geometry, direction)
            self._direction = direction
            self._last_time = self.bus.now_ns()
            self._counters.starts += 1
            self.changed.notify_all()

    def stop(self) -> None:
        with self.lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        if self._direction is not None:
            self._halt()
        self._direction = None
        self._finishing = False
        self._queue.clear()
        self._queued = 0
        self.changed.notify_all()

    def abort(self) -> None:
        with self.lock:
            self._aborted = True
            self.changed.notify_all()

    def close(self) -> None:
        self.stop()

    def _tape_seconds(self, nbytes: int) -> float:
        """Seconds the card takes to send ``nbytes`` at tape speed (0 before a start)."""
        return nbytes / self._rate / 1e9 if self._rate else 0.0

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str,
              ahead: int = 0) -> None:
        """Wait on the condition (lock held) until ``ready()``; deadline and abort.

        The deadline is ``timeout`` seconds plus the tape time of ``ahead`` bytes (what
        the card must send first) and of the stale bytes underruns add meanwhile.
        """
        start = time.monotonic()
        stale_before = self._counters.stale_bytes
        while not ready():
            if self.fault is not None:
                fault, self.fault = self.fault, None
                raise fault
            if self._aborted:
                self._aborted = False
                raise TapeError(f"{self._name}: {what} interrupted", errno=errno.EINTR)
            stale = self._counters.stale_bytes - stale_before
            allowed = timeout + self._tape_seconds(ahead + stale)
            left = start + allowed - time.monotonic()
            if left <= 0:
                sending = f" ({ahead + stale} bytes at tape speed)" if ahead else ""
                raise TapeError(
                    f"{self._name}: {what} timed out after {allowed:.1f} s{sending}: no "
                    "progress from the card (is the service task running, the video "
                    "connected?)",
                    errno=errno.ETIMEDOUT,
                )
            self.changed.wait(left)

    # -- transmit ------------------------------------------------------------------------

    def submit(self, data: bytes, timeout: float) -> None:
        with self.lock:
            if self._direction != "transmit":
                raise HardwareUnavailable(f"{self._name}: not transmitting", errno=errno.EIO)
            view = memoryview(data)
            while view:
                # room comes at the latest once the card sent everything ahead of it
                self._wait(lambda: self._queued < QUEUE_BYTES, timeout, "transmit",
                           self._ahead_of_queue())
                take = min(len(view), QUEUE_BYTES - self._queued)
                self._queue.append(bytes(view[:take]))
                self._queued += take
                view = view[take:]
                self.changed.notify_all()

    def finish(self, timeout: float) -> None:
        with self.lock:
            if self._direction != "transmit" or self.tx is None:
                return
            self._finishing = True
            self._data_end = self.tx.filled + self._queued
            self.changed.notify_all()
            assert self.geometry is not None
            # to the end of the padding, then at most a field until the gap it stops in
            ahead = self._pad_end() - self.tx.hw + self.geometry.frame_size // 2
            self._wait(lambda: self._direction is None, timeout, "end of recording",
                       max(ahead, 0))

    def _ahead_of_queue(self) -> int:
        """Transmit bytes the card has yet to send: the ring's and the queue's."""
        return (self.tx.pending() if self.tx is not None else 0) + self._queued

    def _pad_end(self) -> int:
        """Stream end of the blank padding: to the end of the data's frame, one frame more."""
        assert self.geometry is not None
        frame = self.geometry.frame_size
        return -(-self._data_end // frame) * frame + frame

    def _fill(self) -> None:
        tx = self.tx
        assert tx is not None
        array = self.buffer.array
        while self._queue and tx.room():
            chunk = self._queue[0]
            spans_ = tx.write_spans(len(chunk))
            done = 0
            for at, n in spans_:
                array[at : at + n] = np.frombuffer(chunk, np.uint8, n, done)
                done += n
            self._queued -= done
            self._counters.bytes_sent += done
            if done < len(chunk):
                self._queue[0] = chunk[done:]
            else:
                self._queue.popleft()
        if self._finishing and not self._queue:
            # blank to the end of the frame and one frame more: what the card sends
            # after the last field while software waits for a field gap to stop in
            for at, n in tx.write_spans(max(self._pad_end() - tx.filled, 0)):
                array[at : at + n] = 0
        self.changed.notify_all()

    def _service_transmit(self, hw: int) -> None:
        tx = self.tx
        assert tx is not None and self.geometry is not None
        frame = self.geometry.frame_size
        if hw > tx.filled and not (self._finishing and tx.filled >= self._data_end):
            stale_from = tx.filled
            tx.advance(hw)
            # keep the frame phase: resume a whole number of frames later
            frames = -(-(hw + GUARD - stale_from) // frame)
            tx.filled = stale_from + frames * frame
            tx.stale_bytes += tx.filled - hw
            self._counters.underruns += 1
            self._counters.stale_bytes += tx.filled - stale_from
            log.warning("%s: underrun: the card re-sends %d old frames (%d bytes queued, "
                        "finishing %s)", self._name, frames, self._queued, self._finishing)
            if self._finishing:
                self._data_end += tx.filled - stale_from
        else:
            tx.hw = hw
        self._fill()
        if self._finishing and hw >= self._data_end and not self._queue:
            self._wait_field_gap()
            self._halt()
            self._direction = None
            self._finishing = False

    def _wait_field_gap(self) -> None:
        """Stop between fields: wait (at most one field time) for field busy = 1."""
        assert self.geometry is not None
        deadline = self.bus.now_ns() + 1_000_000_000 // self.geometry.fps
        while not self._field_busy() and self.bus.now_ns() < deadline:
            self.bus.delay_ns(LINE_NS)

    # -- receive -------------------------------------------------------------------------

    def _service_receive(self, hw: int, now: int) -> None:
        rx = self.rx
        assert rx is not None
        lost = rx.advance(hw)
        if lost:
            log.warning("%s: overrun: %d received bytes overwritten", self._name, lost)
            self._counters.overruns += 1
            self._counters.lost_bytes += lost
            self._rx_buf += bytes(lost)  # keep stream offsets: lost bytes read as zeros
        if hw == self._rx_last_hw:
            # no progress since the last tick (a gap in the signal): the position is
            # settled, so the guard's bytes are final too
            take = hw - (self._rx_base + len(self._rx_buf))
        else:
            take = rx.available()
        self._rx_last_hw = hw
        array = self.buffer.array
        start = self._rx_base + len(self._rx_buf)
        for at, n in spans(start, start + max(take, 0), self.block):
            self._rx_buf += array[at : at + n].tobytes()
        rx.drained = max(rx.drained, start + max(take, 0))
        self._counters.bytes_received += max(take, 0)
        self._rx_marks.append((now, hw))
        self.changed.notify_all()

    def _arrived_by(self, until_ns: int) -> int | None:
        """Stream bytes that had arrived by bus time ``until_ns`` (None: not known yet)."""
        for t, pos in self._rx_marks:
            if t >= until_ns:
                return pos
        return None

    def collect(self, until_ns: int, timeout: float) -> Received:
        with self.lock:
            if self._direction != "receive":
                raise HardwareUnavailable(f"{self._name}: not receiving", errno=errno.EIO)
            self._wanted = until_ns
            self.changed.notify_all()

            def ready() -> bool:
                end = self._arrived_by(until_ns)
                return end is not None and self._rx_base + len(self._rx_buf) >= end

            self._wait(ready, timeout, "receive")
            end = self._arrived_by(until_ns)
            assert end is not None
            n = end - self._rx_base
            data = bytes(self._rx_buf[:n])
            del self._rx_buf[:n]
            offset = self._rx_base
            self._rx_base = end
            marks = tuple(self._rx_marks)
            while len(self._rx_marks) > 1 and self._rx_marks[0][0] < until_ns:
                self._rx_marks.popleft()
            return Received(offset, data, marks)

    # -- the service tick ------------------------------------------------------------------

    def time_wanted(self, tick_ns: int) -> int:
        """Bus time an emulator may let pass now without starving the ring (fast mode)."""
        with self.lock:
            if self._direction == "transmit" and self.tx is not None:
                assert self.geometry is not None
                if self._finishing or self.tx.pending() >= 2 * self.geometry.frame_size:
                    return tick_ns
                return 0
            if self._direction == "receive":
                if len(self._rx_buf) >= QUEUE_BYTES:
                    return 0
                end = self._arrived_by(self._wanted)
                if end is None:
                    return max(min(tick_ns, self._wanted - self.bus.now_ns()), 1)
                if self._rx_base + len(self._rx_buf) < end:
                    # the guard's bytes come with the next field: step to its boundary
                    # (a whole number of fields after the wanted time keeps later marks
                    # on field boundaries too)
                    assert self.geometry is not None
                    field_ns = 1_000_000_000 // self.geometry.fps
                    return field_ns - (self.bus.now_ns() - self._wanted) % field_ns
            return 0

    def service(self) -> None:
        with self.lock:
            if self._direction is None:
                return
            now = self.bus.now_ns()
            self._counters.service_ticks += 1
            slack_ns = (self.block - 2 * GUARD) / self._rate if self._rate else 0
            if now - self._last_time > slack_ns:
                self._counters.late_ticks += 1
            ring = self.tx if self._direction == "transmit" else self.rx
            assert ring is not None
            estimate = ring.hw + int((now - self._last_time) * self._rate)
            self._last_time = now
            offset = self._hw_offset()
            hw = advance_position(ring.hw, offset, self.block, self._wrapped(), estimate)
            try:
                if self._direction == "transmit":
                    self._service_transmit(hw)
                else:
                    self._service_receive(hw, self.bus.now_ns())
            except Exception as exc:  # a card fault: the waiting caller gets it
                self.fault = exc
                self._direction = None
                self.changed.notify_all()


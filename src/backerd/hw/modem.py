"""The ``Modem`` contract: what a Backer unit (card or parallel unit) does for a deck.

Theory of operation: a modem moves the host byte stream to and from the video signal.
Its data side is a pair of bounded hand-over points between the Drive's worker threads
and the unit's service task: ``submit`` (transmit; blocks while the queue is full) and
``collect`` (receive; returns what arrived with the bus time it had arrived by). Its
control side starts and stops a direction with the card's timed sequences. ``service``
is one tick of the service task (20-50 Hz on real hardware): it reads the DMA position
and moves bytes between the queues and the DMA ring. ``time_wanted`` tells an emulator's
fast clock whether letting the video run now would do useful work without starving
the ring (in fast mode the video waits for the host instead of underrunning).

Counters: ``underruns`` (the card sent stale ring bytes, transmit), ``overruns``
(received bytes were overwritten before software read them), ``framing_errors`` (a
start whose pause fell outside the window and was retried; fields on receive that
were not whole lines), plus the byte counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

from backerd.format.params import Geometry


@dataclass
class ModemCounters:
    underruns: int = 0
    overruns: int = 0
    framing_errors: int = 0
    stale_bytes: int = 0
    lost_bytes: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    starts: int = 0
    service_ticks: int = 0
    late_ticks: int = 0  # ticks that came later than the ring's slack allows

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Received:
    """Bytes collected from the ring; ``marks`` maps bus time -> stream bytes by then."""

    offset: int  # stream offset of data[0] since the receive started
    data: bytes
    marks: tuple[tuple[int, int], ...]


@runtime_checkable
class Modem(Protocol):
    @property
    def name(self) -> str:
        """``isa@0x300/dma3``, ``parport0``, with ``emulated`` where it is software."""
        ...

    @property
    def counters(self) -> ModemCounters: ...

    @property
    def direction(self) -> str | None: ...

    def now_ns(self) -> int:
        """The bus clock the marks and the card's timing are in."""
        ...

    def start(self, geometry: Geometry, direction: str, preload: bytes = b"") -> None:
        """Program DMA and run the start sequence (retried if mistimed).

        ``preload`` (transmit) goes into the ring before the card starts, so the first
        fields never underrun.
        """
        ...

    def submit(self, data: bytes, timeout: float) -> None:
        """Queue transmit bytes; blocks while the queue is full (ETIMEDOUT, EINTR).

        A wait for room ends with ETIMEDOUT after the tape time of what is ahead of the
        queue's room plus ``timeout`` seconds of slack.
        """
        ...

    def finish(self, timeout: float) -> None:
        """Transmit what is queued, pad to a frame with blank, stop between fields.

        ETIMEDOUT after the tape time of what is left to send (the queue, the padding
        and a field to stop in) plus ``timeout`` seconds of slack.
        """
        ...

    def collect(self, until_ns: int, timeout: float) -> Received:
        """Receive: everything that arrived by bus time ``until_ns`` (waits for it)."""
        ...

    def stop(self) -> None:
        """Stop at once (write 0) and mask the channel."""
        ...

    def service(self) -> None:
        """One tick of the service task; never blocks longer than a few line periods."""
        ...

    def time_wanted(self, tick_ns: int) -> int:
        """Bus time an emulator's fast clock may let pass now (0: wait for the host)."""
        ...

    def abort(self) -> None:
        """End any wait in progress (thread-safe); the waiting call raises EINTR."""
        ...

    def close(self) -> None: ...

"""Motion control of a VCR: what a person or an infrared remote can do to a deck.

Theory of operation: a real Backer setup has two halves. The card (the *modem*, in
``backerd.hw``) moves field data; the VCR (the *control*) moves the tape, and only
something outside the card can press its buttons: an operator, or an IR transmitter
driven through lircd. A deck for real hardware combines one ``VcrControl`` with one
modem and implements ``vcr.base.Deck`` on top, so the medium and everything above it
stay unchanged.

A control knows motion, not data. It cannot see where the tape is: every positioning
request carries what the deck believes (position in field time, the counter text, the
recording whose index mark lies at the target) so a control can tell an operator where
to wind, or choose between index search and timed winding. The deck then confirms the
position from what the modem decodes (sector numbers and recording headers) and asks
again with a correction when the tape is not where it should be.

Every call blocks until the deck is in the requested state, and raises
``ControlError`` (errno ETIMEDOUT or EIO, a one-line message that says what to do) when
it cannot get there: an operator who never acknowledges, lircd refusing a key, a deck
without the button. ``abort()`` may be called from another thread to end a wait early;
the interrupted call then raises ``ControlError`` with errno EINTR.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from backerd.errors import ControlError

__all__ = ["ControlError", "LearnsLanding", "Motion", "VcrControl", "WindTarget"]


class Motion(StrEnum):
    """The transport states a control can put a deck in."""

    STOP = "stop"
    PLAY = "play"
    RECORD = "record"
    PAUSE = "pause"
    FAST_FORWARD = "fast_forward"
    REWIND = "rewind"
    EJECT = "eject"


@dataclass(frozen=True)
class WindTarget:
    """Where the deck wants the tape, as everything a control might use to get there.

    ``position`` and ``origin`` are field time from BOT (the deck's belief before and
    after); ``counter`` is the VCR counter text at the target (``h:mm:ss``);
    ``recording`` is the 0-based recording whose index mark starts at the target, or
    None when the target is not a recording start (then index search cannot help).
    ``marks`` is the number of index marks from origin to target (INDEX presses,
    negative = backwards; see ``vcr.position.index_presses``), or None when unknown.
    """

    position: int
    origin: int
    counter: str
    recording: int | None = None
    marks: int | None = None


@runtime_checkable
class VcrControl(Protocol):
    """Buttons of one VCR. Implementations: simulated, manual (operator), LIRC."""

    @property
    def name(self) -> str:
        """Short name for logs and status: ``sim``, ``manual``, ``lirc:<remote>``."""
        ...

    def press(self, motion: Motion) -> None:
        """Put the deck in ``motion`` and return when it is there (or raise)."""
        ...

    def wind_to(self, target: WindTarget) -> None:
        """Wind towards ``target`` and stop there; the deck confirms from the signal."""
        ...

    def status(self) -> dict:
        """What the control is doing or waiting for, for ``backerd status``."""
        ...

    def abort(self) -> None:
        """End any wait in progress (thread-safe); the waiting call raises EINTR."""
        ...


@runtime_checkable
class LearnsLanding(Protocol):
    """A control that learns from where the signal showed its last wind ended."""

    def landed(self, observed: int) -> None: ...

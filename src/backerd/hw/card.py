"""The Backer card's registers and sequences as data (spec sections 13 and 14).

Theory of operation: both Backer units take the same control byte. Bit 0x02 enables the
DMA request, 0x01 selects high density (10 bytes a line), 0x80 NTSC, and one direction
bit (0x20 transmit, 0x40 receive) starts the transfer. Starting is a two-step sequence
with a timed pause between the steps so that byte 0 of the buffer lands on the first
data line of an odd field; stopping is a write of 0. Everything here is a value or a
table; the backends (``hw.isa``, ``hw.parport``) and the emulators read the same tables,
so the two sides cannot drift apart.

Decisions where the specification is silent (hardware-notes section 5), also followed
by the emulator:

* The first control write with 0x02 set (after a stop) restarts the card's line and
  field timing: line 0 of an odd field begins at that write.
* The start pause is measured on a monotonic nanosecond clock; the direction write must
  land inside ``StartWindow`` (NTSC was observed to work from 546 to 608 us, PAL is the
  same window scaled to its 5 lines). Outside it the backend stops and starts again.
* With no video input on receive, the card clocks nothing: DREQ stays low, the sync bit
  reads 1 (no sync pulses) and field busy reads 1.
* "Stop between frames" means: wait until field busy reads 1 (vertical retrace).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from backerd.format.params import GEOMETRIES, Geometry


class Ctl(IntEnum):
    """Control register bits (write)."""

    HIGH = 0x01
    DMA = 0x02
    TRANSMIT = 0x20
    RECEIVE = 0x40
    NTSC = 0x80


class Status(IntEnum):
    """Status register bits (read)."""

    DREQ = 0x02
    DATA = 0x04
    SYNC = 0x08  # 0 during horizontal / vertical sync of the signal
    FIELD_BUSY = 0x10  # 0 while a field is transferred
    PAL = 0x80  # the NTSC bit as written, inverted


PROBE_BASES = tuple(range(0x300, 0x340, 4))  # 0x300, 0x304, ..., 0x33C
PROBE_ALLOWED = Status.DATA | Status.SYNC | Status.FIELD_BUSY  # bits a present card may show
CARD_DMA_CHANNELS = (1, 3)
LINE_NS = 64_000  # nominal line period the start pause is counted in
FIRST_LINE = {"ntsc": 10, "pal": 6}  # video line of the first data line
GUARD = 512  # bytes of the ring never touched around the hardware position
RING_BYTES = 65536
# The parallel unit's extra settle time after the control byte, by density (us).
PARPORT_SETTLE_US = {"high": 25, "low": 60}


def geometry_of(standard: str, density: str) -> Geometry:
    return GEOMETRIES[(standard[0], density[0])]


def geometry_for_field(length: int) -> Geometry | None:
    """The geometry whose odd or even field has ``length`` bytes (None if none)."""
    for g in GEOMETRIES.values():
        if length in (g.field_size, g.field_size + g.interlace):
            return g
    return None


def control_byte(geometry: Geometry, direction: str | None) -> int:
    """The control byte for a geometry; ``direction`` is "transmit", "receive" or None."""
    value = Ctl.DMA
    if geometry.density == "high":
        value |= Ctl.HIGH
    if geometry.standard == "ntsc":
        value |= Ctl.NTSC
    if direction == "transmit":
        value |= Ctl.TRANSMIT
    elif direction == "receive":
        value |= Ctl.RECEIVE
    elif direction is not None:
        raise ValueError(f"unknown direction {direction!r}")
    return value


def decode_control(value: int) -> tuple[Geometry | None, str | None]:
    """(geometry, direction) a control byte selects; geometry None when DMA is off."""
    if not value & Ctl.DMA:
        return None, None
    std = "ntsc" if value & Ctl.NTSC else "pal"
    geometry = geometry_of(std, "high" if value & Ctl.HIGH else "low")
    if value & Ctl.TRANSMIT:
        return geometry, "transmit"
    if value & Ctl.RECEIVE:
        return geometry, "receive"
    return geometry, None


@dataclass(frozen=True)
class StartWindow:
    """Accepted gap between the two start writes, nanoseconds."""

    nominal: int
    low: int
    high: int

    def contains(self, gap_ns: int) -> bool:
        return self.low <= gap_ns <= self.high


def start_window(standard: str, adjust_ns: int = 0) -> StartWindow:
    """(first_line - 1) line periods plus the user adjust; +-30 us around it."""
    nominal = (FIRST_LINE[standard] - 1) * LINE_NS + adjust_ns
    # NTSC 576 us worked from 546 to 608 us: -30 / +32 us around the nominal pause.
    return StartWindow(nominal, nominal - 30_000, nominal + 32_000)


def start_sequence(geometry: Geometry, direction: str) -> tuple[int, int]:
    """The two control writes of a start: without, then with the direction bit."""
    return control_byte(geometry, None), control_byte(geometry, direction)


STOP_BYTE = 0x00

# The parallel unit: how one control byte is sent in SPP mode, as (register, value)
# writes; "ctl" is the control register (base + 2), "data" the data register (base),
# None in the value column stands for the control byte itself.
PARPORT_SEND: tuple[tuple[str, int | None], ...] = (
    ("ctl", 0x00),
    ("ctl", 0x01),  # strobe asserted
    ("data", 0xD4),
    ("data", 0xD5),
    ("data", None),
    ("ctl", 0x00),
)

# ECR (extended control register at base_hi + 2) values.
ECR_MODE_MASK = 0xE0
ECR_SPP = 0x00  # mode 000, standard
ECR_PS2 = 0x20  # mode 001, byte (reverse capable)
ECR_ECP_FIFO = 0x60  # mode 011
ECR_RUN = 0x68  # ECP FIFO mode, DMA enabled, service interrupt clear (spec 14)
ECR_DMA_EN = 0x08
ECR_SERVICE = 0x04
ECR_FIFO_FULL = 0x02
ECR_FIFO_EMPTY = 0x01
ECP_FIFO_DEPTH = 16

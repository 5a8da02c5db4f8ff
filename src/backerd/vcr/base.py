"""What a VCR does, as the rest of the product sees it: the ``Deck`` protocol.

Theory of operation: a deck knows nothing about data. It moves a cassette past the heads
and records or plays *fields* (one video field = the raw bytes the Backer card moves in
one field time). Position is measured in field time from the beginning of the tape
(BOT), so position ``p`` is the p-th field slot of the cassette and ``p / fps`` seconds
of tape. Playing blank tape gives "no signal" (``None`` instead of a field).

A deck may carry a ``RecordingCatalog``: what is known about the recordings on the
loaded cassette (where each starts, how long it is, its mode, and the tape-block
boundaries of the user data). The simulated deck keeps it inside the cassette image; a
real VCR would keep it in the catalog database. The catalog never changes what is on
the tape, so a cassette stays readable by the original driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

# One played field: its raw bytes, or None where the tape holds no signal.
Field = bytes | None

# Tape lengths by name -> minutes at SP. E- cassettes are PAL, T- cassettes NTSC, but a
# length is just a length: any may be used with either standard.
CASSETTE_LENGTHS: dict[str, int] = {
    **{f"E-{m}": m for m in (30, 60, 90, 120, 150, 180, 195, 200, 240, 260, 280, 300)},
    **{f"T-{m}": m for m in (15, 20, 30, 45, 60, 90, 120, 160, 180)},
}

STANDARDS: dict[str, int] = {"ntsc": 60, "pal": 50}  # nominal fields per second


def format_time(fields: int, fps: int) -> str:
    """Tape counter text ``h:mm:ss`` for a position in field time."""
    seconds = max(fields, 0) // fps
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass(frozen=True)
class Recording:
    """One recording on a cassette, as the catalog knows it.

    ``blocks`` is the run-length list of tape-block sizes ``((size, count), ...)`` of the
    user byte stream, or None when the boundaries are unknown (a foreign recording, e.g.
    a raw stream from ``backerd encode`` or a tape of the original driver).
    ``user_bytes`` is None when nobody has decoded the recording yet. ``filemark`` is
    False for a recording that was not ended by a filemark (interrupted, or the daemon
    stopped writing without one).
    """

    start: int
    fields: int
    mode: str
    fmt: str = "3.102"
    user_bytes: int | None = None
    blocks: tuple[tuple[int, int], ...] | None = None
    filemark: bool = True
    origin: str = "medium"  # medium | record | recovered

    @property
    def end(self) -> int:
        """First slot after the recording."""
        return self.start + self.fields

    @property
    def block_count(self) -> int | None:
        if self.blocks is None:
            return None
        return sum(count for _, count in self.blocks)

    def to_json(self) -> dict:
        return {
            "start": self.start, "fields": self.fields, "mode": self.mode, "fmt": self.fmt,
            "user_bytes": self.user_bytes,
            "blocks": None if self.blocks is None else [list(b) for b in self.blocks],
            "filemark": self.filemark, "origin": self.origin,
        }

    @classmethod
    def from_json(cls, d: dict) -> Recording:
        blocks = d.get("blocks")
        return cls(
            start=int(d["start"]), fields=int(d["fields"]), mode=str(d["mode"]),
            fmt=str(d.get("fmt", "3.102")),
            user_bytes=None if d.get("user_bytes") is None else int(d["user_bytes"]),
            blocks=None if blocks is None else tuple((int(s), int(c)) for s, c in blocks),
            filemark=bool(d.get("filemark", True)), origin=str(d.get("origin", "medium")),
        )

    def with_(self, **changes: object) -> Recording:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class OpenRecording:
    """A recording begun but not yet committed (the journal entry for crash recovery)."""

    start: int
    mode: str
    fmt: str = "3.102"


@dataclass(frozen=True)
class Interrupted:
    """Signal found past the last committed recording when a cassette was loaded.

    ``mode`` is known when the daemon had journaled the recording before it died.
    """

    start: int
    fields: int
    mode: str | None = None
    fmt: str | None = None


@dataclass
class BlockRuns:
    """A growing run-length list of block sizes (what a recording being written has)."""

    runs: list[list[int]] = field(default_factory=list)

    def append(self, size: int) -> None:
        if self.runs and self.runs[-1][0] == size:
            self.runs[-1][1] += 1
        else:
            self.runs.append([size, 1])

    def freeze(self) -> tuple[tuple[int, int], ...]:
        return tuple((s, c) for s, c in self.runs)


@runtime_checkable
class RecordingCatalog(Protocol):
    """What is known about the recordings of the loaded cassette; durable on commit."""

    @property
    def recordings(self) -> tuple[Recording, ...]: ...

    @property
    def interrupted(self) -> Interrupted | None: ...

    def begin_recording(
        self, start: int, mode: str, fmt: str = "3.102", *, keep: int = 0,
        index: int | None = None,
    ) -> None:
        """Journal a recording starting at ``start``; forget what lies at or after it.

        ``keep`` fields from ``start`` stay on tape: a recording resumed in its middle
        re-uses the fields it already has. ``index`` also forgets the recordings from
        that index on (empty recordings have no fields to tell them apart by).
        """
        ...

    def commit_recording(self, recording: Recording) -> None:
        """Make ``recording`` durable (replaces the journal entry and the interrupted mark)."""
        ...

    def replace_recording(self, index: int, recording: Recording) -> None:
        """Update what is known about recording ``index`` (e.g. after decoding it)."""
        ...

    def forget_interrupted(self) -> None: ...

    def flush(self) -> None:
        """Make pending changes durable (e.g. wear counters) before the cassette goes."""
        ...

    def discard_from(self, slot: int, *, index: int | None = None) -> None:
        """Forget and erase everything at or after ``slot`` (and recordings from ``index``)."""
        ...


@runtime_checkable
class Deck(Protocol):
    """A VCR: transport and heads, no knowledge of data."""

    @property
    def loaded(self) -> bool: ...

    @property
    def standard(self) -> str: ...

    @property
    def fps(self) -> int: ...

    @property
    def write_protected(self) -> bool: ...

    @property
    def length(self) -> int:
        """Fields of tape on the cassette."""
        ...

    @property
    def catalog(self) -> RecordingCatalog | None: ...

    def load(self) -> None: ...

    def eject(self) -> None: ...

    def position(self) -> int:
        """Head position in field time from BOT."""
        ...

    def counter(self) -> str:
        """The tape counter (h:mm:ss) at the head position."""
        ...

    def play(self, count: int) -> list[Field]:
        """Play up to ``count`` fields from the position (fewer at the end of the tape)."""
        ...

    def record(self, fields: Sequence[bytes]) -> None:
        """Record fields at the position; what lay after it on the tape is gone."""
        ...

    def stop(self) -> None: ...

    def rewind(self) -> None: ...

    def wind(self, fields: int) -> None:
        """Fast forward (positive) or rewind (negative) by ``fields`` of field time."""
        ...

    def seek(self, position: int) -> None:
        """Wind to an absolute position (what an operator does with the counter)."""
        ...

    def index_search(self, recording: int) -> None:
        """Search to the start of recording ``recording`` (0-based) by its index mark."""
        ...

    def signal_end(self) -> int:
        """Position just after the last recorded field (blank tape from there on)."""
        ...

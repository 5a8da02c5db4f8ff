"""Playback statistics (spec 9.3), plus what this decoder adds.

Theory of operation: the layers of the reader report facts, they do not count. The key
search puts what it saw on each `FieldBatch` (starts, key bytes matched, line slips, the
closest rejected offset); the record decoder sequences a batch and fills one
`BatchStats` with what of it belongs to the record (fields up to its end, sectors
decoded, codewords corrected, sectors lost, whether a BOR sector restarted the
counts); the Player hands that value to its one `Statistics`, whose `apply()` is the
only place the figures change while a record is read. So no layer undoes another's
counts, and a BOR sector in the middle of a batch is a fact (`restart`) instead of a
recount.

The original driver reset its error counters at every BOR sector (a recording's start);
`reset_errors()` does that here. `recently` is the worst codeword since it was last read
(`take_recently()`), as the original status file did. Counts are plain ints so
`as_dict()` is JSON-ready.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

_NO_STARTS = np.zeros(0, np.int64)
_NO_STARTS.flags.writeable = False


@dataclass
class BatchStats:
    """What one batch of fields adds to a record's statistics, in sequencing order.

    Filled by the record decoder while it sequences the batch, then applied once by
    `Statistics.apply`. `restart()` stands for a BOR sector: the error figures of
    everything before it (earlier batches and this one so far) are dropped.
    """

    restart: bool = False  # a BOR sector: error counts begin again at it
    fields: int = 0  # fields of the batch that belong to the record
    # Key search figures of the fields that count since the last restart: their starts,
    # key bytes matched and line slips; `key_base` is the start of the field just before
    # them when that field is in this batch (the BOR field), else the distance to the
    # first one is taken from the previous batch's last field.
    key_base: int | None = None
    key_starts: np.ndarray = field(default_factory=lambda: _NO_STARTS)
    key_matches: np.ndarray = field(default_factory=lambda: _NO_STARTS)
    key_slips: np.ndarray = field(default_factory=lambda: _NO_STARTS)
    closest_non_key: int = 0
    sectors_decoded: int = 0
    bad_sectors: int = 0
    bad_sector_runs: int = 0
    lost_sectors: int = 0
    underflows: int = 0
    byte_errors: int = 0
    worst_block: int = 0
    erasures_used: int = 0
    groups_decoded: int = 0
    outer_corrected: int = 0
    unrecovered_bytes: int = 0
    sector_number: int | None = None  # the last sector decoded, if any

    # Error figures a restart drops (sectors_decoded, fields, groups_decoded and the
    # sector number are counted across recordings, as the original did).
    _ERRORS = (
        "bad_sectors", "bad_sector_runs", "lost_sectors", "underflows", "byte_errors",
        "worst_block", "erasures_used", "outer_corrected", "unrecovered_bytes",
        "closest_non_key",
    )

    def begin_restart(self) -> None:
        """A BOR sector: what this batch counted so far belongs to no record."""
        self.restart = True
        for name in self._ERRORS:
            setattr(self, name, 0)

    def note_key_search(self, starts: np.ndarray, matches: np.ndarray, slips: np.ndarray,
                        first: int) -> None:
        """The key figures of fields [first, N) of the batch count (first > 0: after the
        BOR field first - 1, whose start is the base of the first distance)."""
        self.key_base = int(starts[first - 1]) if first else None
        self.key_starts = starts[first:]
        self.key_matches = matches[first:]
        self.key_slips = slips[first:]

    def note_codewords(self, corrected: int, worst: int, erasures: int) -> None:
        self.byte_errors += corrected
        self.worst_block = max(self.worst_block, worst)
        self.erasures_used += erasures


@dataclass
class Statistics:
    """Spec 9.3 status figures of one playback."""

    parity: int = 0  # parity symbols per inner codeword (the "/ y" of worst block)
    key_length: int = 0  # key bytes per field (the "/ K" of worst key)
    sector_number: int | None = None  # number of the last sector decoded (signed)
    fields: int = 0  # fields found by the key search
    sectors_decoded: int = 0  # sectors whose every codeword decoded
    bad_sectors: int = 0  # sectors with an uncorrectable codeword
    bad_sector_runs: int = 0  # runs of consecutive lost sector numbers
    lost_sectors: int = 0  # sector numbers never received intact
    byte_errors: int = 0  # symbols corrected by the inner code
    worst_block: int = 0  # most symbols corrected in one inner codeword
    recently: int = 0  # worst_block since the last take_recently()
    framing_errors: int = 0  # field distances showing a missed field
    underflows: int = 0  # runs of duplicate sectors
    worst_key: int | None = None  # fewest key bytes matched by an accepted field
    closest_non_key: int = 0  # most key bytes matched by a rejected offset
    smallest_field: int | None = None  # field start distances, bytes
    largest_field: int | None = None
    line_slips: int = 0  # dropped/repeated lines re-aligned inside fields
    erasures_used: int = 0  # symbols passed to the RS decoders as erasures
    groups_decoded: int = 0  # EP outer-code groups decoded
    outer_corrected: int = 0  # symbols corrected by the EP outer code
    unrecovered_bytes: int = 0  # user bytes reported lost

    _ERRORS = (
        "bad_sectors", "bad_sector_runs", "lost_sectors", "byte_errors", "worst_block",
        "recently", "framing_errors", "underflows", "closest_non_key", "line_slips",
        "erasures_used", "outer_corrected", "unrecovered_bytes",
    )

    def __post_init__(self) -> None:
        self._frame_size = 0  # set with the mode: a field distance above 3/4 is a gap
        self._last_field_start: int | None = None  # distances run across batches

    def reset_errors(self) -> None:
        """Forget error counts (a BOR sector: the recording starts here)."""
        for name in self._ERRORS:
            setattr(self, name, 0)
        self.worst_key = None
        self.smallest_field = None
        self.largest_field = None

    def note_codewords(self, corrected: int, worst: int) -> None:
        self.byte_errors += corrected
        if worst > self.worst_block:
            self.worst_block = worst
        if worst > self.recently:
            self.recently = worst

    # ------------------------------------------------------------------ the accumulator
    def start_stream(self, parity: int, key_length: int, frame_size: int) -> None:
        """A decoder of a known format starts on the stream: figures of the format
        search before it are dropped, the mode's sizes noted."""
        self.reset_errors()
        self.fields = 0
        self.parity, self.key_length = parity, key_length
        self._frame_size = frame_size
        self._last_field_start = None

    def note_format_search(self, fields: int, closest_non_key: int) -> None:
        """While the format is unknown: the most fields and the closest rejected offset
        any of the key layouts tried has seen."""
        self.fields = fields
        self.closest_non_key = closest_non_key

    def apply(self, batch: BatchStats) -> None:
        """Add one sequenced batch: the only place a record's figures change."""
        if batch.restart:
            self.reset_errors()
        self.fields += batch.fields
        self.closest_non_key = max(self.closest_non_key, batch.closest_non_key)
        self._apply_key_search(batch)
        self.sectors_decoded += batch.sectors_decoded
        self.bad_sectors += batch.bad_sectors
        self.bad_sector_runs += batch.bad_sector_runs
        self.lost_sectors += batch.lost_sectors
        self.underflows += batch.underflows
        if batch.byte_errors or batch.worst_block:
            self.note_codewords(batch.byte_errors, batch.worst_block)
        self.erasures_used += batch.erasures_used
        self.groups_decoded += batch.groups_decoded
        self.outer_corrected += batch.outer_corrected
        self.unrecovered_bytes += batch.unrecovered_bytes
        if batch.sector_number is not None:
            self.sector_number = batch.sector_number

    def _apply_key_search(self, batch: BatchStats) -> None:
        starts = batch.key_starts
        base = batch.key_base if batch.key_base is not None else self._last_field_start
        if starts.size:
            worst = int(batch.key_matches.min())
            self.worst_key = worst if self.worst_key is None else min(self.worst_key, worst)
            self.line_slips += int(batch.key_slips.sum())
            seq = starts if base is None else np.concatenate([[base], starts])
            if seq.size > 1:
                d = np.diff(seq)
                lo, hi = int(d.min()), int(d.max())
                self.smallest_field = lo if self.smallest_field is None else min(
                    self.smallest_field, lo)
                self.largest_field = hi if self.largest_field is None else max(
                    self.largest_field, hi)
                self.framing_errors += int(np.count_nonzero(d > (3 * self._frame_size) // 4))
            self._last_field_start = int(starts[-1])
        elif batch.key_base is not None:
            self._last_field_start = batch.key_base

    def take_recently(self) -> int:
        """The worst codeword since the last call (the original reset it on read)."""
        value, self.recently = self.recently, 0
        return value

    def as_dict(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self) -> str:
        """Human-readable lines in the order and wording of the original status file."""
        d = asdict(self)

        def opt(v: int | None) -> str:
            return "-" if v is None else str(v)

        number = d["sector_number"]
        return "\n".join([
            f"Sector Number    {'-' if number is None else format(number, '+010d')}",
            f"Sectors Decoded  {d['sectors_decoded']}",
            f"Bad Sectors      {d['bad_sectors']}",
            f"Bad Sector Runs  {d['bad_sector_runs']}",
            f"Lost Sectors     {d['lost_sectors']}",
            f"Byte Errors      {d['byte_errors']}",
            f"In Worst Block   {d['worst_block']} / {d['parity']}",
            f"Recently         {d['recently']} / {d['parity']}",
            f"Framing Errors   {d['framing_errors']}",
            f"Underflows       {d['underflows']}",
            f"Worst Key        {opt(d['worst_key'])} / {d['key_length']}",
            f"Closest Non-Key  {d['closest_non_key']}",
            f"Smallest Field   {opt(d['smallest_field'])}",
            f"Largest Field    {opt(d['largest_field'])}",
            f"Line Slips       {d['line_slips']}",
            f"Erasures Used    {d['erasures_used']}",
            f"Unrecovered      {d['unrecovered_bytes']} bytes",
        ])

"""Playback statistics (spec 9.3), plus what this decoder adds.

Theory of operation: one `Statistics` object per Player accumulates what the key search
and the sector layers observed. The original driver reset its error counters at every
BOR sector (a recording's start); `reset_errors()` does that here. `recently` is the
worst codeword since it was last read (`take_recently()`), as the original status file
did. Counts are plain ints so `as_dict()` is JSON-ready.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


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

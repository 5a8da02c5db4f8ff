"""The original driver's status counters, and the running totals behind the metrics.

Theory of operation: the original driver's status file (spec 9.3) showed, per unit, the
transfer state and a set of error counters reset at each recording's start. ``COUNTERS``
lists them as data: JSON key, the original's wording, and the ``Statistics`` field they
come from. ``driver_counters`` builds the set for one recording from a statistics
mapping plus the unit's state; the daemon keeps one set for the recording in progress
and one for the last recording. ``Totals`` are the monotonic counters the metrics export.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# (json key, original status wording, Statistics field or None for unit state)
COUNTERS: tuple[tuple[str, str, str | None], ...] = (
    ("state", "Current State", None),
    ("mode", "Current Mode", None),
    ("buffer_fill", "I/O Buffer", None),
    ("buffer_size", "I/O Buffer size", None),
    ("sector_number", "Sector Number", "sector_number"),
    ("bad_sectors", "Bad Sectors", "bad_sectors"),
    ("bad_sector_runs", "Bad Sector Runs", "bad_sector_runs"),
    ("byte_errors", "Byte Errors", "byte_errors"),
    ("worst_block", "In Worst Block", "worst_block"),
    ("recently", "Recently", "recently"),
    ("framing_errors", "Framing Errors", "framing_errors"),
    ("underflows", "Underflows", "underflows"),
    ("worst_key", "Worst Key", "worst_key"),
    ("closest_non_key", "Closest Non-Key", "closest_non_key"),
    ("smallest_field", "Smallest Field", "smallest_field"),
    ("largest_field", "Largest Field", "largest_field"),
)
STATES = ("STOPPED", "READING", "WRITING")


def driver_counters(*, state: str, mode: str, buffer_fill: int = 0, buffer_size: int = 0,
                    stats: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One recording's counters in the original's set; missing statistics read as None."""
    unit = {"state": state, "mode": mode, "buffer_fill": buffer_fill,
            "buffer_size": buffer_size}
    out: dict[str, Any] = {}
    for key, _, source in COUNTERS:
        out[key] = unit[key] if source is None else (stats or {}).get(source)
    out["parity"] = (stats or {}).get("parity")
    out["key_length"] = (stats or {}).get("key_length")
    return out


def format_counters(c: Mapping[str, Any]) -> list[str]:
    """The counters in the original status file's order and wording."""
    def v(key: str) -> str:
        value = c.get(key)
        return "-" if value is None else str(value)

    number = c.get("sector_number")
    return [
        f"Current State    {v('state')}",
        f"Current Mode     {v('mode')}",
        f"I/O Buffer       {v('buffer_fill')} / {v('buffer_size')}",
        f"Sector Number    {'-' if number is None else format(number, '+010d')}",
        f"Bad Sectors      {v('bad_sectors')}",
        f"Bad Sector Runs  {v('bad_sector_runs')}",
        f"Byte Errors      {v('byte_errors')}",
        f"In Worst Block   {v('worst_block')} / {v('parity')}",
        f"Recently         {v('recently')} / {v('parity')}",
        f"Framing Errors   {v('framing_errors')}",
        f"Underflows       {v('underflows')}",
        f"Worst Key        {v('worst_key')} / {v('key_length')}",
        f"Closest Non-Key  {v('closest_non_key')}",
        f"Smallest Field   {v('smallest_field')}",
        f"Largest Field    {v('largest_field')}",
    ]


@dataclass
class Totals:
    """Monotonic per-unit counters (the ``_total`` metrics)."""

    write_bytes_total: int = 0
    read_bytes_total: int = 0
    writes_completed_total: int = 0
    reads_completed_total: int = 0
    write_time_seconds_total: float = 0.0
    read_time_seconds_total: float = 0.0
    filemarks_written_total: int = 0
    corrected_symbols_total: int = 0
    unrecoverable_blocks_total: int = 0
    sync_losses_total: int = 0

    def note_write(self, nbytes: int, seconds: float) -> None:
        self.write_bytes_total += nbytes
        self.writes_completed_total += 1
        self.write_time_seconds_total += seconds

    def note_read(self, nbytes: int, seconds: float) -> None:
        self.read_bytes_total += nbytes
        self.reads_completed_total += 1
        self.read_time_seconds_total += seconds

    def note_recording_read(self, stats: Mapping[str, Any]) -> None:
        """Add a finished playback's errors (its Statistics as a mapping)."""
        self.corrected_symbols_total += int(stats.get("byte_errors") or 0)
        self.corrected_symbols_total += int(stats.get("outer_corrected") or 0)
        self.unrecoverable_blocks_total += int(stats.get("bad_sectors") or 0)
        self.sync_losses_total += int(stats.get("framing_errors") or 0)

    def as_dict(self) -> dict[str, int | float]:
        return asdict(self)

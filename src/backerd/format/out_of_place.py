"""Sectors out of place: a sector that would end or jump the recording, proved stray by
the sectors after it.

Theory of operation. One sector per field, numbered continuously through BOR, data and
EOR (spec 6.6, 11.1, 11.2): on tape, a sector's number minus an earlier sector's is the
count of fields between them (more when fields vanished from the capture, never less).
A damaged capture can also carry a span of fields copied or swapped from elsewhere in
the recording. Two such sectors mislead the sequencing rules (spec 9.2, 17.8) into
losing bytes without reporting them:

* a data sector inside the BOR run: taken, it reports every data sector below it lost,
  and the next BOR sector then ends the record (a BOR after data), so the recording's
  real data that follows is neither delivered nor reported;
* a BOR sector inside the data: it ends the record, and the data after it is neither
  delivered nor reported.

A sector that really ends the run it interrupts is followed by sectors of its own kind
(a later recording's BOR run is five seconds long), not by the run it interrupted. So a
suspect sector is stray when, within `window` fields after it, a good sector continues
the recording from the last sector accepted before it (the anchor): one of the kinds
that would follow the anchor, numbered above it by no more than the fields between
them. Until the window is covered the answer waits for more fields (`None`); at the
end of the stream the sectors seen are all there is. Everything here is pure: arrays
in, a verdict out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from backerd.format.sector_types import DecodedSectors
from backerd.format.sync import FieldBatch


@dataclass(frozen=True)
class Anchor:
    """The last sector accepted before a suspect one, and what may continue from it."""

    number: int
    start: int  # stream offset of its field
    kinds: frozenset[int]  # sector kinds that follow it in an undamaged recording


def stray(anchor: Anchor, starts: np.ndarray, dec: DecodedSectors, suspect: int, *,
          field_size: int, window: int, final: bool) -> bool | None:
    """Is the sector of row `suspect` out of place? True when a good sector within
    `window` fields after it continues the recording from `anchor`; None when the batch
    ends before the window does and more fields may still come."""
    at = int(starts[suspect])
    for row in range(suspect + 1, len(starts)):
        start = int(starts[row])
        if (start - at) // field_size >= window:
            return False
        if not dec.ok[row] or int(dec.kind[row]) not in anchor.kinds:
            continue
        fields = -(-(start - anchor.start) // field_size)
        if 0 < int(dec.number[row]) - anchor.number <= fields:
            return True
    return False if final else None


@dataclass(frozen=True)
class Held:
    """Fields already decoded, kept back until the fields after them are read."""

    fields: FieldBatch
    dec: DecodedSectors
    used: np.ndarray  # erasures used per sector


def hold(fields: FieldBatch, dec: DecodedSectors, used: np.ndarray, first: int) -> Held:
    """Rows `first`.. of a decoded batch, kept with their decode (never decoded twice)."""
    return Held(rows_from(fields, first), _tail(dec, first), used[first:])


def joined(held: Held, fields: FieldBatch, dec: DecodedSectors | None,
           used: np.ndarray | None) -> tuple[FieldBatch, DecodedSectors, np.ndarray]:
    """The held rows followed by a newly decoded batch (None: no new field)."""
    if dec is None or used is None:
        return held.fields, held.dec, held.used
    both = FieldBatch.concat([held.fields, fields], fields.payload.shape[1])
    return both, _concat(held.dec, dec), np.concatenate([held.used, used])


def rows_from(batch: FieldBatch, first: int) -> FieldBatch:
    """The fields of `batch` from row `first` on."""
    arrays = {f.name: getattr(batch, f.name)[first:] for f in dataclasses.fields(batch)
              if isinstance(getattr(batch, f.name), np.ndarray)}
    kept = set(batch.start[first:].tolist())
    alternatives = {at: alt for at, alt in batch.alternatives.items() if at in kept}
    return dataclasses.replace(batch, **arrays, alternatives=alternatives, closest_non_key=0)


def _tail(dec: DecodedSectors, first: int) -> DecodedSectors:
    return dataclasses.replace(dec, **{
        f.name: getattr(dec, f.name)[first:] for f in dataclasses.fields(dec)
        if getattr(dec, f.name) is not None})


def _concat(a: DecodedSectors, b: DecodedSectors) -> DecodedSectors:
    """Two decoded batches one after the other. `damaged` None means nothing damaged
    (made explicit when the other side has it); `readable` is kept only when both
    have it (the sequencing does not use it)."""
    parts: dict[str, Any] = {}
    width = a.data.shape[1]
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "damaged" and (x is not None or y is not None):
            x = np.zeros((a.ok.size, width), bool) if x is None else x
            y = np.zeros((b.ok.size, width), bool) if y is None else y
        parts[f.name] = None if x is None or y is None else np.concatenate([x, y])
    return DecodedSectors(**parts)

"""Where the tape is, from what the heads play: sector numbers mapped through the catalog.

Theory of operation. A wind of a real deck (timed FF/REW, an operator at the counter)
lands a few percent off. The played signal says where it landed: every field carries
one sector, and a sector's number says which field of its recording it is. In 3.101
and 3.102 the BOR sectors are numbered ``-N_bor .. -1`` and data and EOR sectors go on
from 0, so sector ``s`` is field ``N_bor + s`` of its recording; 3.3 numbers from 0 with
the first BOR sector, so sector ``s`` is field ``s``. With the recording's start from
the catalog, a sector played ``i`` fields after PLAY puts the first played field at

    landing = recording.start + offset(s) - i

Sector numbers repeat in every recording, so each decoded sector names one candidate
landing per recording it fits in (``0 <= offset < fields``); the landing most sectors
agree on wins, and of equally supported ones the one nearest the deck's belief. A
sector the code could not correct names nothing.

Blank tape where the catalog has recordings means the wind went past the last one:
the landing counts as ``signal_end`` once (so the next wind goes back); blank again,
or a signal none of the recordings explains, cannot be confirmed. Blank where blank is
expected (a target at or past the signal end) has nothing to correct.

``read_sectors`` is the decoding (key search, then the mode's sector codec, the same
route as the record decoder); ``landing`` is the pure mapping. Both take values and
return values; the deck (``hw.deck``) plays and winds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backerd.format.params import Format, ModeParams, mode
from backerd.format.record_decoder import decode_fields
from backerd.format.sector_codecs import codec_for
from backerd.format.sector_types import SectorKind
from backerd.format.sync import FieldBatch, FieldSync
from backerd.vcr.base import Field, Recording


@dataclass(frozen=True)
class SeenSector:
    """A sector decoded from a playback: in which played field, its number and kind."""

    field: int
    number: int
    kind: SectorKind


def sector_offset(number: int, params: ModeParams) -> int:
    """The field of its recording that sector ``number`` is (spec 6.6, 11.2)."""
    if Format(params.format) is Format.V33:
        return number
    return params.n_bor + number


def landing(recordings: Sequence[Recording], seen: Sequence[SeenSector], near: int
            ) -> int | None:
    """Where the first played field lay on the tape, or None when no sector fits.

    ``recordings`` are those the sectors may come from (the catalog's recordings of
    the mode that was decoded); ``near`` is where the deck believes the tape landed.
    """
    votes: Counter[int] = Counter()
    for rec in recordings:
        params = mode(rec.mode, rec.fmt)
        for s in seen:
            offset = sector_offset(s.number, params)
            if 0 <= offset < rec.fields:
                votes[rec.start + offset - s.field] += 1
    if not votes:
        return None
    return min(votes, key=lambda at: (-votes[at], abs(at - near), at))


def observed_landing(recordings: Sequence[Recording], seen: Sequence[SeenSector], *,
                     video: int, near: int, goal: int, signal_end: int,
                     blank_before: bool) -> int | None:
    """The landing a short playback shows, or None when it cannot be confirmed.

    ``video`` is how many played fields carried anything; ``blank_before`` is whether
    an earlier playback of this positioning was blank already.
    """
    at = landing(recordings, seen, near)
    if at is not None:
        return at
    if seen or (video and goal < signal_end):
        return None  # a signal, but not of these recordings (or not decodable)
    if goal >= signal_end:
        return goal
    return None if blank_before else signal_end


def read_sectors(played: Sequence[Field], params: ModeParams) -> list[SeenSector]:
    """The sectors that decode in ``played`` (one entry per played field time)."""
    if params.is_raw:
        return []
    chunks = [f or b"" for f in played]
    ends = np.cumsum([len(c) for c in chunks], dtype=np.int64)
    sync = FieldSync(params)
    batch = FieldBatch.concat([sync.feed(b"".join(chunks)), sync.finish()],
                              sync.payload_size)
    if not len(batch):
        return []
    dec, _ = decode_fields(codec_for(params), sync, batch)
    where = np.searchsorted(ends, batch.start, side="right")
    return [SeenSector(int(where[i]), int(dec.number[i]), SectorKind(int(dec.kind[i])))
            for i in np.flatnonzero(dec.ok)]

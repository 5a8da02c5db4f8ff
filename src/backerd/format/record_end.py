"""Where a recording's data ends when its first end-of-record sector did not survive.

Theory of operation. A recording is BOR, data sectors, then the EOR: n_eor (fps) empty
sectors whose numbers continue the data sectors' (spec 6.6, 11.1, 11.2); the first EOR
number is the count of data sectors. A reader ends the record at the first EOR sector
(spec 9.2 step 8). When that sector is lost, the first EOR sector that does arrive
carries a number `seen` above the next expected one, and the sectors in between were
either lost data or lost EOR sectors. Delivering them as data (zeros) lengthens the
output and blames user bytes that never existed; dropping them silently loses data.

The first EOR number E lies in [after + 1, seen], `after` being the last data sector
delivered. What the surviving sectors say narrows it:

* The EOR run is at most `run_max` sectors long, so the highest EOR number h of the run
  gives E >= h - run_max + 1. run_max is the spec's count (fps); 3.101/3.3 recordings
  made by the `bkrencode` utility carry one more empty sector after a data area ending
  on a sector boundary (spec 16), so after a full last data sector it is fps + 1.
* 3.102 EP data sectors come in outer-code groups of 255: E - first data number is a
  multiple of 255 (spec 7).
* HEAD writers number every EOR sector alike (spec 11.3): a repeated EOR number is E.

Of the numbers left, the smallest is taken: the reading in which every surviving
sector belongs where it is and the fewest sectors are assumed lost or truncated
(writers may drop EOR sectors, spec 17.4, so a short run is weaker evidence than a long
one). Sectors below E are lost data and reported as such; those from E on are EOR.
When more than one number is left, the sectors from E up to the highest number left
may have been data too (the run's last sectors lost as well, or a truncated run):
`ambiguous` counts them, and the end of record reports them as possibly lost rather
than silently taking them for EOR.

The run is over, and the answer final, once one number is left that no later EOR
sector can move (`final`), or once run_max fields have passed the first EOR field (one
sector per field: no later sector can belong to the run), or at a non-EOR sector, or at
the end of the stream.

An EOR sector can also be out of place: a span of the end of the stream copied or
swapped into the middle (a damaged capture). Within the run's fields, a real end is
followed only by EOR sectors, or by a later recording, which starts with its BOR run
from its lowest number. A sector that continues this recording instead (a data sector
numbered in [after + 1, seen), or a BOR sector numbered above the last BOR sector when
no data sector came yet) proves the EOR sector was not the end: `resume` names its row
and the decoder goes on from there, dropping the stray EOR sector. A sector that
continues nothing does not end the search: the swapped span may carry other sectors
out of place after the EOR one, so every sector of the run's fields is looked at. Ending at it would
lose every sector of the recording that follows without reporting them. Everything
here is pure: numbers in, a number out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backerd.format.params import GROUP_SECTORS, Format, ModeParams
from backerd.format.sector_types import DecodedSectors, SectorKind

# 3.101/3.3 `bkrencode` wrote one extra empty data sector after a data area that ended on
# a sector boundary (spec 16); 3.102 writers do not.
_EXTRA_EMPTY_SECTOR = {Format.V3102: False, Format.V3101: True, Format.V33: True}
# Data sectors per outer-code group when the format's EP data count is a whole number of
# groups (3.102 ecc2, spec 7); 1 = no such constraint.
_EP_GROUP = {Format.V3102: GROUP_SECTORS, Format.V3101: 1, Format.V33: 1}


@dataclass(frozen=True)
class EndRule:
    """What a format says about the sectors at the end of a record."""

    eor_sectors: int  # EOR sectors a complete run holds (spec: fps)
    extra_empty: bool  # one more empty sector may follow a full last data sector
    group: int  # the data sector count is a multiple of this
    first_data: int  # number of the first data sector


def end_rule(params: ModeParams, *, outer_groups: bool) -> EndRule:
    """The rule of `params`' format; `outer_groups` when the decoder runs 3.102 ecc2."""
    fmt = params.format
    return EndRule(
        eor_sectors=params.n_eor,
        extra_empty=_EXTRA_EMPTY_SECTOR[fmt],
        group=_EP_GROUP[fmt] if outer_groups else 1,
        first_data=params.n_bor if fmt is Format.V33 else 0,
    )


class OpenEnd:
    """An EOR sector numbered `seen` arrived after data sector `after` (seen > after + 1).

    Collects the EOR sectors that follow (`see`) and tells the first EOR number, or
    finds the sector that proves it out of place (`resume`).
    """

    def __init__(self, params: ModeParams, *, groups: bool, after: int, seen: int,
                 last_short: bool, at: int, consumed: int,
                 last_bor: int | None = None) -> None:
        self.rule = rule = end_rule(params, outer_groups=groups)
        self.at, self.field_size = at, params.geometry.field_size  # the `seen` sector's field
        self.consumed = consumed  # stream offset where the record ends
        self.lowest = after + 1
        self.seen = seen
        self.highest = seen
        self.repeated = False
        self.last_short = last_short  # only the last data sector is short: E = after + 1
        self.run_max = rule.eor_sectors + (1 if rule.extra_empty and not last_short else 0)
        self.last_bor = last_bor  # the BOR sector before `seen` when no data sector came
        self.resume: int | None = None  # row of a sector that continues the recording

    def follow(self, starts: np.ndarray, dec: DecodedSectors, first: int) -> bool:
        """The decoded fields from row `first` on (`starts`: their stream offsets), all
        after the `seen` sector; True once the answer is final."""
        if self.settled(0):
            return True
        rows = slice(first, None)
        eor = int(SectorKind.EOR)
        for row, (start, number, good, kind) in enumerate(
                zip(starts[rows].tolist(), dec.number[rows].tolist(), dec.ok[rows].tolist(),
                    dec.kind[rows].tolist(), strict=True), first):
            since = (start - self.at) // self.field_size
            if since >= self.run_max:
                return True  # past any sector of the run
            if not good:
                continue
            if kind != eor:
                if self.continues(kind, number):
                    self.resume = row  # the EOR sector was out of place
                    return True
                continue  # another recording's, or out of place itself: look further
            self.see(number)
            if self.settled(since):
                return True
        return False

    def continues(self, kind: int, number: int) -> bool:
        """A non-EOR sector that belongs to this recording before its end."""
        if kind == int(SectorKind.DATA):
            return not self.last_short and self.lowest <= number < self.seen
        if kind == int(SectorKind.BOR):
            return self.last_bor is not None and number > self.last_bor
        return False

    def see(self, number: int) -> None:
        """A later EOR sector of the stream."""
        if number == self.seen:
            self.repeated = True
        elif self.highest < number < self.seen + self.run_max:
            self.highest = number  # beyond that it cannot be of this run: ignored

    def candidates(self) -> range:
        """First EOR numbers consistent with every sector seen so far."""
        if self.last_short:
            return range(self.lowest, self.lowest + 1)
        if self.repeated:
            return range(self.seen, self.seen + 1)
        low = max(self.lowest, self.highest - self.run_max + 1)
        group, first = self.rule.group, self.rule.first_data
        aligned = low + (-(low - first)) % group
        if aligned <= self.seen:
            return range(aligned, self.seen + 1, group)
        return range(low, self.seen + 1)  # no whole group fits: the constraint is moot

    def first_eor(self) -> int:
        return self.candidates()[0]

    def ambiguous(self) -> int:
        """Sectors from the first EOR number taken to the highest one still possible:
        lost sectors that may have been data as well as EOR."""
        left = self.candidates()
        return left[-1] - left[0]

    def final(self) -> bool:
        """One number is left and no later EOR sector can move it: a later sector can
        only raise the lower bound, which excludes any candidate below `seen` (one the
        group rule alone left would give way to the unaligned reading)."""
        left = self.candidates()
        return len(left) <= 1 and (self.last_short or self.repeated or left[0] == self.seen)

    def settled(self, fields_since: int) -> bool:
        """No later sector can change the answer (`fields_since` the `seen` field)."""
        return self.final() or fields_since >= self.run_max

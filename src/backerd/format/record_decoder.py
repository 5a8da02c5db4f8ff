"""Decoding the fields of one recording of a known format: sectors, sequence, outer code.

Theory of operation (the stages after field synchronisation; the Player drives them):

1. EP: 8/9 GCR demodulation; invalid 9-bit words become erasures.
2. Sector decode (`inner_decode`): inner RS with the known erasures; sectors that fail
   are retried with constant-level dropout runs erased, with more erasures around
   unmatched key bytes (three tiers), then, for an unpinned line slip, with each
   candidate line of the slip, and last with an erasure window slid over a dropout too
   long for the tiers. An SP sector whose header decoded is delivered in part.
3. Sequencing (spec 9.2): BOR sectors reset the statistics, duplicates (number not
   above the last one) are dropped, a jump in numbers reports the skipped sectors as
   lost, the first EOR sector ends the record. Rules of our own (spec 17.8): EOR
   sectors before any BOR or data sector are a previous recording's tail and are
   skipped, a BOR sector after data ends a record whose EOR was lost, and a number
   further ahead than the stream can hold is a miscorrected header. A lost first EOR
   sector is never taken for data (`record_end`; the end is then `inferred`, and the
   sectors that may have been data as well are reported as `possibly_lost`). A BOR
   sector among the data, or a data sector inside the BOR run, is out of place when the
   run it interrupts goes on after it (`out_of_place`; its fields are held back until
   the fields after it tell): it is dropped instead of ending or jumping the record.
4. Output: SP and bare EP sectors deliver their bytes; 3.102 EP collects groups of 255
   sectors for the outer code (ecc2; lost sectors are erasures at their codeword
   positions); 3.101/3.3 EP may pass through the bkrenhanced outer decoder.

Lost user bytes are never skipped: the output keeps their place (filled with zeros or
with what was received) and a `SectorLost(sector, offset, length)` event names the
range, so every later byte stays at its true offset (a partial SP sector names only the
bytes of its failed codewords). Memory is bounded: the EP outer code holds one group.
`DecoderOptions` switches the decoder's strengths off for comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backerd.format.decode_options import DEFAULT, DecoderOptions
from backerd.format.inner_decode import decode_fields
from backerd.format.out_of_place import Anchor, Held, hold, joined, stray
from backerd.format.params import (
    FILL,
    GROUP_DATA_SECTORS,
    GROUP_SECTORS,
    Codec,
    Format,
    ModeParams,
)
from backerd.format.record_end import OpenEnd
from backerd.format.sector_codecs import codec_for
from backerd.format.sector_types import SectorKind
from backerd.format.stats import BatchStats
from backerd.format.sync import FieldBatch, FieldSync

# Fields that may vanish from a stream between two sectors (capture overruns): about
# ten seconds of video. A larger jump in sector numbers is taken for a bad header.
_MAX_VANISHED = 600


# ---------------------------------------------------------------------------- events
@dataclass(frozen=True)
class SectorLost:
    """User bytes [offset, offset + length) could not be recovered (best knowledge)."""

    sector: int
    offset: int
    length: int


@dataclass(frozen=True)
class EndOfRecord:
    user_bytes: int
    inferred: bool = False  # the first EOR sector was not seen: the end was deduced
    # At most this many user bytes may have followed `user_bytes`: sectors lost where
    # the end was inferred that may have been data as well as end-of-record sectors
    # (the output ends at the likeliest end; these are possibly lost, not delivered).
    possibly_lost: int = 0


# ---------------------------------------------------------------------------- decoding
@dataclass
class DecodeResult:
    data: bytes = b""
    offset: int = 0  # user offset of data[0]
    events: list = field(default_factory=list)
    lost: list = field(default_factory=list)  # SectorLost events among events
    ended: bool = False
    stats: BatchStats = field(default_factory=BatchStats)  # for Statistics.apply


class RecordDecoder:
    """Sync, sector decode, sequencing and output for one known format."""

    def __init__(self, params: ModeParams, *, bkrenhanced: bool, origin: int,
                 options: DecoderOptions = DEFAULT) -> None:
        self.params = params
        self.options = options
        self.sync = FieldSync(params)
        if origin:
            self.sync.rebase(origin)
        fmt = params.format
        self.codec = codec_for(params)
        self.kind_bor, self.kind_eor = int(SectorKind.BOR), int(SectorKind.EOR)
        self.kind_data = int(SectorKind.DATA)
        self.capacity = params.capacity
        # Number of the first data sector: 3.3 numbers BOR sectors from 0 too.
        self.first_data = params.n_bor if fmt is Format.V33 else 0
        self.last = self.first_data - 1  # last data sector delivered
        self.last_short = False  # it held fewer than C bytes: no data sector can follow
        self.open_end: OpenEnd | None = None  # an EOR seen after a gap, its run followed
        self.last_bor: int | None = None  # number of the last BOR sector seen
        self.in_duplicates = False
        self.started = False  # a BOR or data sector of this recording was seen
        self.last_start: int | None = None  # stream offset of the last accepted sector
        self.user_bytes = 0  # user bytes delivered (or reserved for lost data)
        self.ended = False
        self.consumed = 0
        # Fields kept back until later ones tell whether a sector is out of place.
        self.held: Held | None = None
        self.groups: _Groups | None = None
        self.outer = None
        if params.codec is Codec.EP and fmt is Format.V3102:
            self.groups = _Groups(params.capacity, index_positions=not options.outer_placement)
        elif params.codec is Codec.EP and bkrenhanced:
            from backerd.format.bkrenhanced import BkrEnhancedDecoder

            self.outer = BkrEnhancedDecoder(params.capacity)
            self._outer_lost_seen = 0

    # ------------------------------------------------------------------ stages
    def feed(self, raw: memoryview, *, final: bool) -> DecodeResult:
        res = DecodeResult(offset=self.user_bytes)
        fields = self.sync.feed(raw) if len(raw) else FieldBatch.empty(self.sync.payload_size)
        if final:
            fields = FieldBatch.concat([fields, self.sync.finish()], self.sync.payload_size)
        res.stats.closest_non_key = fields.closest_non_key
        pieces: list[bytes] = []
        if len(fields) or self.held is not None:
            self._sectors(fields, pieces, res, final=final)
        if final and self.open_end is not None:
            self._close_open_end(pieces, res)
        if final and not self.ended:
            self._flush_outer(pieces, res, final=True)
        res.data = b"".join(pieces)
        return res

    def _sectors(self, fields: FieldBatch, pieces: list[bytes], res: DecodeResult, *,
                 final: bool) -> None:
        dec, used = (decode_fields(self.codec, self.sync, fields, self.options)
                     if len(fields) else (None, None))
        if self.held is not None:
            held, self.held = self.held, None
            fields, dec, used = joined(held, fields, dec, used)
        self._sequence(dec, used, fields, pieces, res, final=final)

    def _sequence(self, dec, used, fields: FieldBatch, pieces: list[bytes],
                  res: DecodeResult, *, final: bool = False) -> None:
        """Apply the sequencing rules to the batch's sectors in field order."""
        ok = dec.ok
        st = res.stats
        if self.open_end is not None:  # the record's sectors ended in an earlier batch
            final = self.open_end.follow(fields.start, dec, 0)
            if self.open_end.resume is None:
                if final:  # its fields are not counted
                    self._close_open_end(pieces, res)
                return
            self.open_end = None  # out of place: this batch continues the recording
        if self._plain_run(dec, ok):
            st.fields += ok.size
            st.note_key_search(fields.start, fields.matches, fields.slips, 0)
            self._count(st, dec, used, 0, ok.size)
            self._deliver(dec, range(ok.size), dec.length, dec.number, pieces, res)
            self.last, self.last_short = int(dec.number[-1]), bool(dec.length[-1] < self.capacity)
            st.sector_number = self.last
            self.started, self.in_duplicates = True, False
            self.last_start = int(fields.start[-1])
            return
        numbers = dec.number.tolist()
        kinds = dec.kind.tolist()
        lengths = dec.length.tolist()
        run: list[int] = []  # rows to deliver, in order
        reset_at = -1  # row of the last BOR sector so far
        starts = fields.start.tolist()
        implausible = 0  # decoded sectors whose number cannot be right here
        stop = len(numbers)  # rows after this belong to no record of ours

        def flush() -> None:
            if run:
                self._deliver(dec, run, lengths, numbers, pieces, res)
                run.clear()

        def out_of_place(i: int, anchor: Anchor) -> bool | None:
            return stray(anchor, fields.start, dec, i, window=self.params.n_eor,
                         field_size=self.params.geometry.field_size, final=final)

        for i, good in enumerate(ok.tolist()):
            if not good:
                continue
            s, kind = numbers[i], kinds[i]
            if kind == self.kind_bor or (self.last_short and s > self.last
                                         and kind == self.kind_data):
                if self.last >= self.first_data:
                    if kind == self.kind_bor and self.last_start is not None:
                        # A BOR among the data: out of place if the data goes on after it.
                        verdict = out_of_place(i, Anchor(self.last, self.last_start,
                                                         self._after_data()))
                        if verdict is None:
                            self.held, stop = hold(fields, dec, used, i), i
                            break
                        if verdict:
                            implausible += 1
                            continue
                    # A BOR, or data after the short last data sector: the EOR was lost.
                    flush()
                    self._end(res, pieces, starts[i] - self.params.leader, inferred=True,
                              possibly_lost=self._between(starts[i]))
                    stop = i
                    break
                reset_at = i
                self.last_bor = s
                st.begin_restart()
                self.in_duplicates = False
                self.started = True
                self.last_start = starts[i]
                continue
            if kind == self.kind_eor and not self.started:
                continue  # the EOR tail of a previous recording: not ours to end
            self.started = True
            if s <= self.last:
                if not self.in_duplicates:
                    st.underflows += 1
                    self.in_duplicates = True
                continue
            if (kind == self.kind_data and self.last < self.first_data
                    and self.last_bor is not None and self.last_start is not None
                    and s != self.last_bor + 1):
                # Data that does not follow the BOR run: out of place if the run goes on.
                verdict = out_of_place(i, Anchor(self.last_bor, self.last_start,
                                                 frozenset({self.kind_bor})))
                if verdict is None:
                    self.held, stop = hold(fields, dec, used, i), i
                    break
                if verdict:
                    implausible += 1
                    continue
            self.in_duplicates = False
            if s > self.last + 1:
                if not self._plausible_jump(s, starts[i]):
                    implausible += 1
                    continue
                flush()
                if kind == self.kind_eor:  # lost data or lost EOR sectors in between?
                    end = OpenEnd(
                        self.params, groups=self.groups is not None, after=self.last, seen=s,
                        last_short=self.last_short, at=starts[i],
                        consumed=self._field_end(fields, i),
                        last_bor=self.last_bor if self.last < self.first_data else None)
                    final = end.follow(fields.start, dec, i + 1)
                    if end.resume is not None:  # a later sector continues the recording
                        implausible += 1
                        continue
                    self.open_end, stop = end, i + 1
                    if final:
                        self._close_open_end(pieces, res)
                    break
                self._lost(self.last + 1, s, pieces, res)
            self.last_start = starts[i]
            if kind == self.kind_eor:
                flush()
                self._end(res, pieces, self._field_end(fields, i))
                stop = i + 1
                break
            self.last, self.last_short = s, lengths[i] < self.capacity
            if lengths[i] or self.outer is None:
                run.append(i)
        flush()
        # Key figures count from the last BOR field on, to the end of the batch (or to
        # the fields held back, which are counted with the next batch).
        kept = stop if self.held is not None else len(numbers)
        st.note_key_search(fields.start[:kept], fields.matches[:kept], fields.slips[:kept],
                           reset_at + 1)
        st.fields += stop  # fields after the end are not this record's
        st.sectors_decoded += int(ok[:stop].sum()) - implausible
        taken = np.flatnonzero(ok[:stop])
        if taken.size:
            st.sector_number = numbers[int(taken[-1])]
        self._count(st, dec, used, reset_at + 1, stop, decoded=False)
        st.bad_sectors += implausible

    def _between(self, start: int) -> int:
        """User bytes that may have been lost between the last data sector and the
        field at `start`: one sector per field between them, unless that sector was
        short (no data follows it)."""
        if self.last_short or self.last_start is None:
            return 0
        size = self.params.geometry.field_size
        fields = (start - self.last_start + size // 2) // size
        return self._sectors_bytes(max(fields - 1, 0))

    def _sectors_bytes(self, sectors: int) -> int:
        """User bytes `sectors` data sectors can hold (3.102 EP: whole groups)."""
        if self.groups is not None:
            return -(-sectors // GROUP_SECTORS) * self.params.group_capacity
        return sectors * self.capacity

    def _after_data(self) -> frozenset[int]:
        """Sector kinds that may follow the last data sector delivered."""
        if self.last_short:
            return frozenset({self.kind_eor})
        return frozenset({self.kind_data, self.kind_eor})

    def _plausible_jump(self, number: int, start: int) -> bool:
        """Can sector `number` follow the last one at this place in the stream?

        One sector per field: the number runs ahead of the fields that passed since the
        last accepted sector only when fields vanished from the stream (a capture
        overrun), so a jump beyond that plus _MAX_VANISHED fields is a header the code
        miscorrected; taking it would report thousands of sectors lost.
        """
        if self.last_start is None:
            return True
        fields = -(-(start - self.last_start) // self.params.geometry.field_size)
        return number - self.last <= fields + _MAX_VANISHED

    def _plain_run(self, dec, ok) -> bool:
        """The batch is just the next data sectors in order (the common case)."""
        if not ok.all() or self.ended or not self.started or self.last_short:
            return False
        numbers = dec.number
        return bool(
            numbers[0] == self.last + 1
            and (np.diff(numbers) == 1).all()
            and (dec.kind == self.kind_data).all()
            and (dec.length[:-1] == self.capacity).all()  # only the last may be short
            and (self.outer is None or (dec.length > 0).all())
        )

    def _close_open_end(self, pieces, res) -> None:
        end, self.open_end = self.open_end, None
        if end.first_eor() > self.last + 1:  # sectors before the first EOR were data
            self._lost(self.last + 1, end.first_eor(), pieces, res)
        self._end(res, pieces, end.consumed, inferred=True,
                  possibly_lost=self._sectors_bytes(end.ambiguous()))

    @staticmethod
    def _count(st: BatchStats, dec, used, start: int, stop: int, *,
               decoded: bool = True) -> None:
        """Codeword statistics of rows [start, stop) (those after the last BOR)."""
        good = dec.ok[start:stop]
        if decoded:
            st.sectors_decoded += int(good.sum())
        st.bad_sectors += int(good.size - good.sum())
        if good.any():
            st.note_codewords(int(dec.corrected[start:stop][good].sum()),
                              int(dec.worst[start:stop][good].max()),
                              int(used[start:stop][good].sum()))

    def _field_end(self, fields: FieldBatch, i: int) -> int:
        p = self.params
        return int(fields.end[i]) + p.trailer

    # ------------------------------------------------------------------ output
    def _deliver(self, dec, rows, lengths, numbers, pieces, res) -> None:
        data = dec.data
        cap = self.capacity
        rows_a = np.asarray(rows, np.int64)
        lens = np.asarray(lengths)[rows_a]
        if self.groups is not None:
            index = np.asarray(numbers)[rows_a] - self.first_data
            for chunk in self.groups.add(index, data[rows_a, :cap]):
                self._group_out(chunk, pieces, res)
            return
        if self.outer is not None:
            for r in rows_a.tolist():
                self._outer_push(data[r, : int(lengths[r])].tobytes(), pieces, res)
            return
        whole = isinstance(rows, range) and len(rows) == data.shape[0]
        block = data[:, :cap] if whole else data[rows_a, :cap]  # no gather for a plain run
        if (lens == cap).all():
            out = block.tobytes()
        else:
            out = block[np.arange(cap)[None, :] < lens[:, None]].tobytes()
        if dec.damaged is not None:
            damaged = dec.damaged[rows_a]
            if damaged.any():
                out = self._partial(out, damaged, lens, np.asarray(numbers)[rows_a], res)
        pieces.append(out)
        self.user_bytes += len(out)

    def _partial(self, out: bytes, damaged, lens, numbers, res) -> bytes:
        """Sectors delivered in part: their failed codewords' bytes are zeroed (as a
        lost sector's) and reported, one range per run of them."""
        arr = np.frombuffer(out, np.uint8).copy()
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        st = res.stats
        for r in np.flatnonzero(damaged.any(axis=1)).tolist():
            flags = damaged[r, : int(lens[r])].view(np.int8)
            edges = np.diff(np.concatenate([[0], flags, [0]]))
            base = int(starts[r])
            for a, b in zip(np.flatnonzero(edges == 1).tolist(),
                            np.flatnonzero(edges == -1).tolist(), strict=True):
                ev = SectorLost(int(numbers[r]), self.user_bytes + base + a, b - a)
                res.events.append(ev)
                res.lost.append(ev)
                arr[base + a : base + b] = 0
                st.unrecovered_bytes += b - a
            st.bad_sectors += 1
        return arr.tobytes()

    def _lost(self, first: int, stop: int, pieces, res) -> None:
        """Sectors [first, stop) were never received."""
        st = res.stats
        st.bad_sector_runs += 1
        st.lost_sectors += stop - first
        cap = self.capacity
        if self.groups is not None:
            self._group_gap(first - self.first_data, stop - self.first_data, pieces, res)
            return
        if self.outer is not None:
            for _ in range(first, stop):
                self._outer_push(None, pieces, res)
            return
        for s in range(first, stop):
            ev = SectorLost(s, self.user_bytes, cap)
            res.events.append(ev)
            res.lost.append(ev)
            pieces.append(bytes(cap))
            self.user_bytes += cap
            st.unrecovered_bytes += cap

    def _end(self, res: DecodeResult, pieces, consumed: int, *, inferred: bool = False,
             possibly_lost: int = 0) -> None:
        self._flush_outer(pieces, res, final=True)
        self.ended = True
        res.ended = True
        self.consumed = consumed
        res.events.append(EndOfRecord(self.user_bytes, inferred, possibly_lost))

    # ------------------------------------------------------------------ EP outer codes
    def _group_gap(self, first: int, stop: int, pieces, res) -> None:
        for chunk in self.groups.skip(first, stop):
            self._group_out(chunk, pieces, res)

    def _group_out(self, chunk: _GroupOut, pieces, res) -> None:
        base = self.user_bytes
        for sector, off, length in chunk.lost:
            ev = SectorLost(sector + self.first_data, base + off, length)
            res.events.append(ev)
            res.lost.append(ev)
            res.stats.unrecovered_bytes += length
        if chunk.decoded:
            res.stats.groups_decoded += 1
            res.stats.outer_corrected += chunk.corrected
        pieces.append(chunk.data)
        self.user_bytes += len(chunk.data)

    def _outer_push(self, sector: bytes | None, pieces, res) -> None:
        out = self.outer.push(sector)
        if out:
            self._outer_out(out, pieces, res)

    def _outer_out(self, out: bytes, pieces, res) -> None:
        lost = self.outer.lost
        for off, length in lost[self._outer_lost_seen :]:
            sector = self.first_data + off // self.capacity
            ev = SectorLost(sector, off, length)
            res.events.append(ev)
            res.lost.append(ev)
            res.stats.unrecovered_bytes += length
        self._outer_lost_seen = len(lost)
        pieces.append(out)
        self.user_bytes += len(out)

    def _flush_outer(self, pieces, res, *, final: bool) -> None:
        if self.groups is not None:
            for chunk in self.groups.finish():
                self._group_out(chunk, pieces, res)
        elif self.outer is not None:
            out = self.outer.finish()
            if out or len(self.outer.lost) > self._outer_lost_seen:
                self._outer_out(out, pieces, res)


# ---------------------------------------------------------------------------- ecc2 groups
@dataclass
class _GroupOut:
    data: bytes
    lost: list  # (data sector index, offset in data, length)
    decoded: bool = False  # went through the outer decoder (else: no sector arrived)
    corrected: int = 0  # symbols the outer code corrected


class _Groups:
    """Collects 3.102 EP data sectors into 255-sector groups for the outer code.

    Sector numbers only grow (duplicates are dropped before), so a group is complete
    when a later group's sector arrives, or at the end of the record (then it is the
    last group, which matters only when its length field was lost).
    """

    def __init__(self, capacity: int, *, index_positions: bool = False) -> None:
        self.capacity = capacity
        self.index_positions = index_positions  # the original's erasure placement
        self.group = 0  # index of the group being collected
        self.sectors = np.zeros((GROUP_SECTORS, capacity), np.uint8)
        self.have = np.zeros(GROUP_SECTORS, bool)
        self.touched = False  # the current group has received or lost a sector

    def add(self, index: np.ndarray, data: np.ndarray) -> list[_GroupOut]:
        """Data sectors with increasing numbers `index` (from 0) and their C bytes."""
        out: list[_GroupOut] = []
        groups = index // GROUP_SECTORS
        cuts = np.flatnonzero(np.diff(groups)) + 1
        for part in np.split(np.arange(index.size), cuts):
            if part.size == 0:
                continue
            g = int(groups[part[0]])
            if g > self.group:
                out += self._advance(g)
            j = index[part] % GROUP_SECTORS
            self.sectors[j] = data[part]
            self.have[j] = True
            self.touched = True
        return out

    def skip(self, first: int, stop: int) -> list[_GroupOut]:
        """Data sectors [first, stop) are lost; complete the groups they close."""
        g = stop // GROUP_SECTORS
        out = self._advance(g) if g > self.group else []
        if stop % GROUP_SECTORS:
            self.touched = True
        return out

    def finish(self) -> list[_GroupOut]:
        return [self._decode(last=True)] if self.touched else []

    def _advance(self, g: int) -> list[_GroupOut]:
        out = [self._decode(last=False)] if self.touched else []
        # Whole groups with no sector at all: their data is lost.
        cap = self.capacity
        cg = GROUP_DATA_SECTORS * cap - 4
        while self.group < g:
            base = self.group * GROUP_SECTORS
            lost = [(base + j, j * cap, min(cap, cg - j * cap)) for j in range(GROUP_DATA_SECTORS)]
            out.append(_GroupOut(bytes(cg), lost))
            self.group += 1
        return out

    def _decode(self, *, last: bool) -> _GroupOut:
        from backerd.format.ecc2 import decode_group

        result = decode_group(self.sectors, ~self.have,
                              index_positions=self.index_positions)
        data, ranges = result.data, result.lost
        length = self._length(result, last)
        if length < len(data):
            data = data[:length]
            ranges = [(o, min(n, length - o)) for o, n in ranges if o < length]
        base = self.group * GROUP_SECTORS
        cap = self.capacity
        lost = []  # one entry per data sector, like the inner layer's losses
        for off, n in ranges:
            while n > 0:
                piece = min(n, cap - off % cap)
                lost.append((base + off // cap, off, piece))
                off, n = off + piece, n - piece
        self.sectors[:] = 0
        self.have[:] = False
        self.group += 1
        self.touched = False
        return _GroupOut(data, lost, decoded=True, corrected=result.corrected)

    def _length(self, result, last: bool) -> int:
        """User bytes of the group when the outer code could not restore its length.

        The length field sits at the end of data sector 234: if that sector arrived,
        the inner code has verified it even where the outer codewords failed. For a lost
        length in the last group, the data ends where the 0x33 filler begins.
        """
        cap = self.capacity
        cg = GROUP_DATA_SECTORS * cap - 4
        if result.length != cg or result.ok:
            return result.length
        j_len = GROUP_DATA_SECTORS - 1
        if self.have[j_len]:
            value = int(self.sectors[j_len, cap - 4 :].copy().view("<u4")[0])
            return value if value <= cg else cg
        if not last:
            return cg
        # User bytes fill the data area from its start, filler follows: the data ends
        # before the first arrived all-filler sector after the last arrived data.
        data = self.sectors[:j_len]
        have = self.have[:j_len]
        fill = have & (data == FILL).all(axis=1)
        content = np.flatnonzero(have & ~fill)
        top = int(content[-1]) if content.size else -1
        later_fill = np.flatnonzero(fill[top + 1 :])
        first_fill = top + 1 + int(later_fill[0]) if later_fill.size else j_len
        if first_fill > top + 1 or top < 0:
            end = first_fill * cap  # the end lies in lost sectors (reported lost)
        else:
            row = np.flatnonzero(data[top] != FILL)
            end = top * cap + int(row[-1]) + 1
        return min(end, cg)

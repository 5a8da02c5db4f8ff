"""Field synchronisation: find the fields of a raw Backer stream by their key bytes.

Theory of operation (spec 9.1, 11.1). A field's active region carries K key bytes at a
fixed spacing ki (first byte of each group in 3.102, last byte in 3.101/3.3). A
candidate offset p is a field start when at least `threshold` of the K bytes at
p + key_pos[j] equal key[j]. The original scanned byte by byte; here the search is
vectorised in two tiers:

* Fast path: once a field is found, the next ones are expected one field length later
  (alternating odd/even lengths on NTSC). All predicted starts that fit in the buffer
  are checked at once with one (fields x K) gather; every prediction holding at least
  half the keys is accepted. On a clean or byte-noisy stream this is all that runs.
* Slow path: where a prediction fails (a field missing, lines lost in the gap), match
  counts of every candidate offset of a window are computed with K shifted vector
  comparisons and the first offset reaching the threshold is taken, as the original did.

Each accepted field is then checked against the keys shifted by up to two video lines
either way. A line dropped or repeated inside the active region moves all later key
bytes by one line (bytes_per_line); a small Viterbi fit over the K keys and the two
field edges (leader/active, active/trailer) finds such a step, the payload after it is
re-aligned, and the bytes between the two keys around the step (where the slip is) are
marked as erasures, so the sector survives instead of being lost. A dropped key byte
pins the slip to its line; otherwise the batch also carries one candidate payload per
line the slip may be at, for the player to try when the erased span is too much for
the code. Key bytes that match at no shift mark their neighbourhood as suspect; the
player erases suspect bytes only when a sector does not decode without them.

Two slips a few keys apart are handled too: a short run of keys fitting another line
while the keys around it fit the accepted one is an island between two cancelling
slips, and a two-line step is split at the keys fitting the middle shift (or, with none
there, tried as every pair of one-line slips). Both become candidate payloads, every
combination of the open spans' lines, which the player tries only if the sector fails.

Memory is bounded: only the tail that may hold the start of an incomplete field is kept
between calls.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np

from backerd.format.params import FILL, LEADER_FILL, ModeParams

# Slips are searched up to this many lines either way of the accepted offset.
_SLIP_LINES = 2
# Cost of a step in the key-shift profile, in key mismatches: a real step is accepted
# when at least two keys follow it; a single stray coincidental match never is.
_STEP_COST = 1.5
# Weight of a field edge (leader/active, active/trailer) in the fit, in key bytes: an
# edge checks two whole lines, so it is stronger evidence than one key byte.
_EDGE_WEIGHT = 4.0
# Slip placements tried for one field at most (all combinations of its open spans).
_MAX_CANDIDATES = 1024
# Longest run of keys between two cancelling slips that the profile fit cannot see.
_ISLAND_KEYS = 4


@dataclass
class FieldBatch:
    """Fields found by one call, in stream order."""

    start: np.ndarray  # (N,) int64 absolute stream offset of the first active byte
    end: np.ndarray  # (N,) int64 absolute offset just after the active region
    payload: np.ndarray  # (N, Pay) uint8 payload bytes (keys removed, slips re-aligned)
    erasures: np.ndarray  # (N, Pay) bool bytes known to be damaged (line slips)
    suspect: np.ndarray  # (N, Pay) bool bytes near key bytes that did not match
    matches: np.ndarray  # (N,) int key bytes matched at the accepted alignment
    slips: np.ndarray  # (N,) int line slips repaired inside the field
    missing: np.ndarray  # (N, K) bool key bytes that did not match
    # Fields with a slip the keys could not pin to one line: absolute start ->
    # (payloads (m, Pay), erasures (m, Pay)), one candidate per line the slip may be at.
    alternatives: dict = dataclasses.field(default_factory=dict)
    # Most key bytes matched by an offset the search rejected while finding these
    # fields (spec 9.1 "closest non-key"), 0 if it rejected none.
    closest_non_key: int = 0

    def __len__(self) -> int:
        return int(self.start.shape[0])

    @classmethod
    def empty(cls, payload_size: int, key_length: int = 0) -> FieldBatch:
        z = np.zeros(0, np.int64)
        return cls(
            start=z, end=z.copy(), payload=np.zeros((0, payload_size), np.uint8),
            erasures=np.zeros((0, payload_size), bool),
            suspect=np.zeros((0, payload_size), bool), matches=z.copy(), slips=z.copy(),
            missing=np.zeros((0, key_length), bool),
        )

    @classmethod
    def concat(cls, parts: list[FieldBatch], payload_size: int) -> FieldBatch:
        closest = max((p.closest_non_key for p in parts), default=0)
        parts = [p for p in parts if len(p)]
        if not parts:
            merged = cls.empty(payload_size)
        elif len(parts) == 1:
            merged = dataclasses.replace(parts[0])
        else:
            merged = cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))
            for p in parts:
                merged.alternatives.update(p.alternatives)
        merged.closest_non_key = closest
        return merged


_FIELDS = ("start", "end", "payload", "erasures", "suspect", "matches", "slips", "missing")


class FieldSync:
    """Incremental key search over a raw stream of one mode and layout."""

    def __init__(self, params: ModeParams) -> None:
        if params.is_raw:
            raise ValueError("raw modes have no fields to synchronise")
        self.params = params
        g = params.geometry
        self.bpl = g.bytes_per_line
        self.active = params.active
        self.threshold = params.threshold
        k, ki = params.key_length, params.key_interval
        self.key_length = k
        self.key = np.frombuffer(params.key, np.uint8)
        self.key_pos = np.arange(k, dtype=np.int64) * ki + (0 if params.key_first else ki - 1)
        is_key = np.zeros(self.active, bool)
        is_key[self.key_pos] = True
        self.payload_pos = np.flatnonzero(~is_key).astype(np.int64)
        self.payload_size = int(self.payload_pos.size)
        if self.payload_size != params.payload:
            raise AssertionError("key layout does not match the payload size")
        self.shifts = np.arange(-_SLIP_LINES, _SLIP_LINES + 1, dtype=np.int64) * self.bpl
        self._zero_shift = _SLIP_LINES
        # Bytes a field may need on either side: slip shifts plus one line of leader or
        # trailer checked by the edge anchors.
        self.margin = (_SLIP_LINES + 1) * self.bpl
        # Anchors of the slip fit, in position order: the leader/active edge, the K key
        # bytes, the active/trailer edge.
        self._anchor_pos = np.concatenate([[-1], self.key_pos, [self.active]])
        pos = self.payload_pos
        right = np.searchsorted(self._anchor_pos, pos)  # first anchor after each byte
        self._left_anchor, self._right_anchor = right - 1, right
        line = np.arange(self.bpl, dtype=np.int64)
        self._before = -1 - line  # the last line before an edge
        self._after = line  # the first line from an edge
        # Neighbourhood of each key: payload bytes within one line (suspect when the key
        # did not match) and the whole segments on both sides (for weak fields).
        dist = np.abs(pos[None, :] - self.key_pos[:, None])
        self._near_key = (dist <= self.bpl).astype(np.uint8)  # (K, Pay)
        anchors = np.arange(k)[:, None] + 1  # anchor index of key j
        seg = (self._left_anchor[None, :] == anchors) | (self._right_anchor[None, :] == anchors)
        self._segments_of_key = seg.astype(np.uint8)
        self._weak_below = max(self.threshold, (2 * k) // 3)
        self.strong = max(self.threshold, (k + 1) // 2)
        self.field_size = g.field_size
        self.interlace = g.interlace
        self.frame_size = g.frame_size
        # stream state
        # The buffer starts with `margin` zero bytes before offset 0 so the slip check
        # of a field at the very start never indexes before the buffer.
        self._buf = np.zeros(self.margin, np.uint8)
        self._base = -self.margin  # absolute offset of _buf[0]
        self._pos = 0  # absolute offset where the search resumes
        self._last_start: int | None = None  # start of the last accepted field
        self._pred: int | None = None  # predicted start of the next field
        self._last_odd = False  # parity of the last field (field 0 of a recording is odd)
        # Field lengths as played (odd, even), learned from the stream
        self._expect = {True: self.field_length(True), False: self.field_length(False)}
        self._prev_start: int | None = None
        self._prev_shift = 0
        self._finished = False
        self._closest = 0  # closest_non_key of the scan in progress

    # ------------------------------------------------------------------ public API
    @property
    def buffered(self) -> int:
        """Raw bytes held back for the next call."""
        return int(self._buf.size)

    @property
    def position(self) -> int:
        """Absolute stream offset where the search resumes."""
        return self._pos

    def rebase(self, origin: int) -> None:
        """Number the stream from `origin` (before the first feed): the absolute offset
        of the first byte that will be fed."""
        if self._pos != 0 or self._buf.size != self.margin:
            raise ValueError("rebase() must come before the first feed()")
        self._base = origin - self.margin
        self._pos = origin

    def feed(self, raw: bytes | bytearray | memoryview | np.ndarray) -> FieldBatch:
        data = np.frombuffer(raw, np.uint8) if not isinstance(raw, np.ndarray) else raw
        if data.size:
            self._buf = np.concatenate([self._buf, data]) if self._buf.size else data.copy()
        return self._scan(final=False)

    def finish(self) -> FieldBatch:
        """Fields that need no more bytes than the stream holds; nothing is kept."""
        if self._finished:
            return FieldBatch.empty(self.payload_size)
        self._finished = True
        # Pad so the slip check may look past the end; zeros never equal a key byte.
        self._buf = np.concatenate([self._buf, np.zeros(self.margin, np.uint8)])
        out = self._scan(final=True)
        self._buf = np.zeros(0, np.uint8)
        self._base = self._pos
        return out

    @property
    def played_lengths(self) -> tuple[int, int]:
        """(odd, even) field lengths the stream has shown (nominal until learned)."""
        return self._expect[True], self._expect[False]

    def field_length(self, odd: bool) -> int:
        return self.field_size + (self.interlace if odd else 0)

    # ------------------------------------------------------------------ scanning
    def _scan(self, *, final: bool) -> FieldBatch:
        buf = self._buf
        # A candidate at p needs [p - margin, p + A + margin) in the buffer.
        # (finish() has padded the end with `margin` zeros, so the rule is the same.)
        limit = buf.size - self.active - self.margin + 1  # candidates < limit (relative)
        parts: list[FieldBatch] = []
        self._closest = 0
        while True:
            pos = self._pos - self._base
            if pos >= limit:
                break
            if self._pred is not None and self._pred < self._pos:
                self._pred = None  # the search has passed the predicted field
            if self._pred is not None:
                if self._pred - self._base >= limit and not final:
                    break  # wait for the bytes of the predicted field
                batch = self._fast(buf, limit)
                if batch is not None:
                    parts.append(batch)
                    continue
            found = self._slow(buf, pos, limit, final=final)
            if found is None:
                break
            parts.append(found)
        self._trim()
        out = FieldBatch.concat(parts, self.payload_size)
        out.closest_non_key = self._closest
        return out

    def _fast(self, buf: np.ndarray, limit: int) -> FieldBatch | None:
        """Accept the run of predicted field starts that hold at least half the keys."""
        first = self._pred - self._base
        if first >= limit:
            return None
        odd = not self._last_odd
        count = (limit - first) // min(self._expect.values()) + 2
        lengths = np.full(count, self._expect[not odd], np.int64)
        lengths[::2] = self._expect[odd]
        rel = first + np.concatenate([[0], np.cumsum(lengths[:-1])])
        rel = rel[rel < limit]
        keys = buf[rel[:, None] + self.key_pos[None, :]] == self.key[None, :]
        bad = np.flatnonzero(keys.sum(axis=1) < self.strong)
        count = int(bad[0]) if bad.size else rel.size
        if count == 0:
            return None
        return self._accept(buf, rel[:count], odd, keys[:count])

    def _slow(self, buf: np.ndarray, pos: int, limit: int, *, final: bool) -> FieldBatch | None:
        """First offset from pos reaching the threshold, refined by the slip check."""
        window = 2 * self.field_size
        reach = int(self.shifts[-1])  # refinement range: the slip range
        while pos < limit:
            stop = min(pos + window, limit)
            n = stop - pos
            m = self._match_counts(buf, pos, n)
            hits = np.flatnonzero(m >= self.threshold)
            if hits.size == 0:
                self._closest = max(self._closest, int(m.max()))
                pos = stop
                self._pos = self._base + pos
                continue
            q = pos + int(hits[0])
            if q > pos:
                self._closest = max(self._closest, int(m[: q - pos].max()))
            # Prefer the best alignment within the slip range (an early slip makes the
            # first hit land one line before the true start).
            span = min(reach + 1, limit - q)
            if span < reach + 1 and not final:
                self._pos = self._base + q  # decide when the bytes after q are here
                return None
            best = q + int(np.argmax(self._match_counts(buf, q, span)))
            return self._accept(buf, np.array([best], np.int64), self._parity_at(best))
        self._pos = self._base + max(pos, limit)
        return None

    def _match_counts(self, buf: np.ndarray, pos: int, n: int) -> np.ndarray:
        """Matching key bytes at each of the n candidate offsets from pos."""
        m = np.zeros(n, np.uint8)
        for j, a in enumerate(self.key_pos.tolist()):
            m += buf[pos + a : pos + a + n] == self.key[j]
        return m

    # ------------------------------------------------------------------ acceptance
    def _parity_at(self, rel: int) -> bool:
        """Whether a field found by search at buffer offset rel is odd (NTSC half line)."""
        if self._last_start is None:
            return True  # a recording starts with an odd field
        d = rel + self._base - self._last_start
        tol = 2 * self.bpl
        if self.interlace and abs(d - self.field_length(True)) <= tol:
            return False  # the previous field was the longer, odd one
        if self.interlace and abs(d - self.field_length(False)) <= tol:
            return True
        return not self._last_odd

    def _accept(
        self, buf: np.ndarray, rel: np.ndarray, first_odd: bool, keys: np.ndarray | None = None
    ) -> FieldBatch:
        """Extract the payloads of fields starting at buffer offsets `rel`.

        `keys` (N, K): which key bytes match at rel, when the caller has it already.
        Only fields with a mismatching key or an imperfect edge get the full slip
        check at every shift; on a clean stream that is none of them.
        """
        nf = rel.size
        if keys is None:
            keys = buf[rel[:, None] + self.key_pos[None, :]] == self.key[None, :]
        at0 = keys.copy()  # (N, K) key bytes matching at the accepted alignment
        matches = at0.sum(axis=1).astype(np.int64)
        zero = rel[:, None, None]
        lead0, trail0 = self._edges(buf, zero)
        payload = self._payloads(buf, rel)
        erasures = np.zeros(payload.shape, bool)
        suspect = np.zeros(payload.shape, bool)
        slips = np.zeros(nf, np.int64)
        end_shift = np.zeros(nf, np.int64)
        check = np.flatnonzero(
            (matches < self.key_length) | (lead0[:, 0] < 1) | (trail0[:, 0] < 1))
        alternatives: dict = {}
        if check.size:
            self._check_slips(buf, rel, check, payload, erasures, slips, end_shift, at0,
                              alternatives)
            matches[check] = at0[check].sum(axis=1)
        missing = ~at0
        noisy = np.flatnonzero(missing.any(axis=1))
        if noisy.size:
            miss = missing[noisy].astype(np.uint8)
            near = (miss @ self._near_key) > 0
            weak = matches[noisy] < self._weak_below
            if weak.any():
                near[weak] |= (miss[weak] @ self._segments_of_key) > 0
            suspect[noisy] = near & ~erasures[noisy]
        starts = rel + self._base
        ends = starts + self.active + end_shift
        self._last_start = int(starts[-1])
        before_odd = self._last_odd
        self._last_odd = first_odd if nf % 2 else not first_odd
        self._pos = int(ends[-1])
        self._learn(starts, end_shift, first_odd, before_odd)
        self._pred = int(starts[-1] + end_shift[-1]) + self._expect[self._last_odd]
        alts = {int(rel[i]) + self._base: v for i, v in alternatives.items()}
        return FieldBatch(starts, ends, payload, erasures, suspect, matches, slips, missing,
                          alts)

    def segments_between(self, missing: np.ndarray) -> np.ndarray:
        """(n, Pay): payload bytes between two adjacent unmatched keys (a dropout that
        took both keys covered everything between them)."""
        n = missing.shape[0]
        edge = np.zeros((n, 1), bool)
        anchors = np.concatenate([edge, missing, edge], axis=1)
        return anchors[:, self._left_anchor] & anchors[:, self._right_anchor]

    def segments_around(self, missing: np.ndarray) -> np.ndarray:
        """(n, Pay): payload bytes between the matching keys on either side of each
        unmatched key — where a dropout that took the key byte may have reached."""
        return (missing.astype(np.uint8) @ self._segments_of_key) > 0

    def _check_slips(
        self, buf, rel, check, payload, erasures, slips, end_shift, at0, alternatives
    ) -> None:
        """Fit shift profiles to the fields `check` and re-align those with slips."""
        z = self._zero_shift
        at = rel[check, None, None] + self.shifts[None, :, None]  # (n, shifts, 1)
        match = buf[at + self.key_pos[None, None, :]] == self.key[None, None, :]
        lead, trail = self._edges(buf, at)  # (n, shifts) fraction of edge checks passed
        odd_keys = (match.any(axis=1) & ~match[:, z, :]).any(axis=1)
        odd_edges = (lead.max(axis=1) > lead[:, z]) | (trail.max(axis=1) > trail[:, z])
        for c in np.flatnonzero(odd_keys | odd_edges).tolist():
            i = int(check[c])
            cost = np.concatenate(
                [_EDGE_WEIGHT * (1 - lead[c])[:, None], (~match[c]).astype(np.float64),
                 _EDGE_WEIGHT * (1 - trail[c])[:, None]], axis=1)
            prof = _fit_profile(cost, z)
            if not (prof != z).any():
                island = self._island(cost < 0.5)
                if island is not None:
                    # Kept as alternatives only: tried when the sector fails as it is.
                    pay = self.payload_pos
                    cand = self._candidates(*island)
                    if len(cand[0]):
                        alternatives[i] = (buf[rel[i] + pay + cand[0][:, pay]],
                                           cand[1][:, pay])
                continue
            hit = cost[prof, np.arange(prof.size)] < 0.5
            shift, erased, spans = self._realign(prof, cost < 0.5)
            pay = self.payload_pos
            payload[i] = buf[rel[i] + pay + shift[pay]]
            erasures[i] = erased[pay]
            cand = self._candidates(shift, erased, spans) if spans else None
            if cand is not None and len(cand[0]):
                alternatives[i] = (buf[rel[i] + pay + cand[0][:, pay]], cand[1][:, pay])
            slips[i] = int(np.count_nonzero(np.diff(prof)))
            end_shift[i] = self.shifts[prof[-1]]
            at0[i] = hit[1:-1]

    def _payloads(self, buf: np.ndarray, rel: np.ndarray) -> np.ndarray:
        """(N, Pay) payloads of the fields at rel, key columns cut out.

        The active region is K groups of a key byte and ki - 1 payload bytes (key
        last in 3.101/3.3) plus a tail, so the groups are copied as one strided block
        per run of equally spaced fields (every other field of a predicted batch is one
        frame apart) — no per-byte gather.
        """
        p = self.params
        k, ki = p.key_length, p.key_interval
        groups = k - 1 if p.key_first else k
        first = 1 if p.key_first else 0  # payload offset inside a group
        g_len = groups * (ki - 1)
        tail_from = groups * ki + (1 if p.key_first else 0)
        tail_len = self.active - tail_from
        n = rel.size
        out = np.empty((n, g_len + tail_len), np.uint8)
        if n > 2 and all((np.diff(rel[par::2]) == rel[par + 2] - rel[par]).all()
                         for par in (0, 1) if rel.size > par + 2):
            for par in (0, 1):
                rows = rel[par::2]
                d = int(rows[1] - rows[0]) if rows.size > 1 else 0
                src = np.lib.stride_tricks.as_strided(
                    buf[int(rows[0]) + first :], shape=(rows.size, groups, ki - 1),
                    strides=(d, ki, 1), writeable=False)
                out[par::2, :g_len].reshape(rows.size, groups, ki - 1)[...] = src
                out[par::2, g_len:] = np.lib.stride_tricks.as_strided(
                    buf[int(rows[0]) + tail_from :], shape=(rows.size, tail_len),
                    strides=(d, 1), writeable=False)
            return out
        active = np.lib.stride_tricks.sliding_window_view(buf, self.active)[rel]
        out[:, :g_len] = active[:, : groups * ki].reshape(n, groups, ki)[
            :, :, first : first + ki - 1].reshape(n, g_len)
        out[:, g_len:] = active[:, tail_from:]
        return out

    def _edges(self, buf: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """How well the leader and trailer edges fit each shift (fraction of checks).

        The leader edge: the last line before the active region is leader fill and the
        first active line is not; the trailer edge likewise with the trailer fill.
        """
        before, after = self._before[None, None, :], self._after[None, None, :]
        lead = (buf[at + before] == LEADER_FILL).sum(axis=2) + (
            buf[at + after] != LEADER_FILL).sum(axis=2)
        end = at + self.active
        trail = (buf[end + after] == FILL).sum(axis=2) + (buf[end + before] != FILL).sum(axis=2)
        scale = 1.0 / (2 * self.bpl)
        return lead * scale, trail * scale

    def _realign(self, prof: np.ndarray, good: np.ndarray) -> tuple:
        """Shift and erasure flag of every active byte for a stepped shift profile.

        good (shifts, anchors): the anchor fits that shift. A slip lies after the last
        anchor that fits only the shift before the step and before the first anchor
        that fits only the shift after it; anchors fitting both (a coincidence, common
        in the regular filler of empty sectors) or neither (damaged, or in the slipped
        line itself) leave the place open, and the open span is erased. One exception
        pins it down: when a line was dropped, a key byte fitting neither shift between
        the brackets was in the dropped line, so only that line is lost. Returns the
        shift and erasure per active byte, and the spans left open.
        """
        pos = self._anchor_pos
        shift = np.empty(self.active, np.int64)
        erased = np.zeros(self.active, bool)
        steps = np.flatnonzero(np.diff(prof)).tolist()
        last = prof.size - 1
        cursor = 0  # active bytes before this are assigned
        # Steps left open: (from, to, shift before, shift after[, middle shift]).
        spans: list[tuple[int, ...]] = []
        for a in steps:
            before, after = int(prof[a]), int(prof[a + 1])
            lo, hi = a, a + 1
            while lo > 0 and not (good[before, lo] and not good[after, lo]):
                lo -= 1
            while hi < last and not (good[after, hi] and not good[before, hi]):
                hi += 1
            start, stop = max(int(pos[lo]) + 1, 0), min(int(pos[hi]), self.active)
            inner = [j for j in range(lo + 1, hi) if not good[before, j] and not good[after, j]]
            dropped = self.shifts[after] < self.shifts[before]
            mid = (before + after) // 2
            between = [j for j in inner if good[mid, j]] if abs(after - before) == 2 else []
            if between:
                # Two slips the same way a key or two apart, taken by the fit as one
                # step of two lines: keys between them fit the middle shift, so each
                # slip gets its own open span around them.
                a_to, b_from = int(pos[between[0]]), int(pos[between[-1]]) + 1
                cut_a, cut_b = (start + a_to) // 2, (b_from + stop) // 2
                shift[cursor:cut_a] = self.shifts[before]
                shift[cut_a:cut_b] = self.shifts[mid]
                shift[cut_b:] = self.shifts[after]
                for open_from, open_to, s0, s1 in ((start, a_to, before, mid),
                                                   (b_from, stop, mid, after)):
                    erased[max(open_from, 0) : max(open_to, 0)] = True
                    if open_to - open_from > self.bpl:
                        spans.append((open_from, open_to, int(self.shifts[s0]),
                                      int(self.shifts[s1])))
                cursor = max(cursor, min(max(cut_b, 0), self.active))
                continue
            if abs(after - before) == 2 and stop - start > self.bpl:
                # A two-line step with no key at the middle shift: one slip of two
                # lines, or two slips of one line each somewhere in the open span.
                cut = (start + stop) // 2
                shift[cursor:cut] = self.shifts[before]
                shift[cut:] = self.shifts[after]
                erased[start:stop] = True
                cursor = max(cursor, min(max(cut, 0), self.active))
                spans.append((start, stop, int(self.shifts[before]), int(self.shifts[after]),
                              int(self.shifts[mid])))
                continue
            if dropped and len(inner) == 1 and 0 <= pos[inner[0]] < self.active:
                line = int(pos[inner[0]]) - int(pos[inner[0]]) % self.bpl
                cut, open_from, open_to = line, line, line + self.bpl
            else:
                cut, open_from, open_to = (start + stop) // 2, start, stop
            shift[cursor:cut] = self.shifts[before]
            shift[cut:] = self.shifts[after]
            erased[max(open_from, 0) : max(open_to, 0)] = True
            cursor = max(cursor, min(max(cut, 0), self.active))
            if open_to - open_from > self.bpl:
                spans.append((open_from, open_to, int(self.shifts[before]),
                              int(self.shifts[after])))
        if not steps:
            shift[:] = self.shifts[prof[0]]
        return shift, erased, spans

    def _candidates(self, shift: np.ndarray, erased: np.ndarray, spans: list) -> tuple:
        """Shift and erasure rows for each line a slip of an open span may be at.

        A line dropped at x: bytes before x keep the old shift, from x + bpl the new
        one, and the line itself is lost. A line repeated at x: the same cut, nothing
        lost. With several open spans every combination is a candidate (two slips a
        few keys apart must both be placed right), up to _MAX_CANDIDATES; beyond that
        each span is tried alone with the others erased; no line to try gives (0, n) rows.
        """
        options = [self._span_options(span) for span in spans]
        if math.prod(len(o) for o in options) <= _MAX_CANDIDATES:
            combos = itertools.product(*options)
        else:
            combos = ((choice,) for o in options for choice in o)
        shifts, erasures = [], []
        for combo in combos:
            sh = shift.copy()
            er = erased.copy()
            for lo, hi, seg_shift, seg_erased in combo:
                sh[lo:hi] = seg_shift
                er[lo:hi] = seg_erased
            shifts.append(sh)
            erasures.append(er)
        return (np.array(shifts, shift.dtype).reshape(-1, shift.size),
                np.array(erasures, bool).reshape(-1, erased.size))

    def _span_options(self, span: tuple) -> list:
        """(lo, hi, shifts, erasures) of bytes [lo, hi) for each line the slip of one
        open span may be at. A span (from, to, before, after, middle) of a two-line
        step also gets every pair of lines for two one-line slips (before -> middle ->
        after)."""
        open_from, open_to, before, after = span[:4]
        middle = span[4] if len(span) > 4 else None
        bpl = self.bpl
        lo, hi = max(open_from, 0), min(open_to, self.active)
        first = max(open_from - open_from % bpl - bpl, 0)
        lines = range(first, min(open_to, self.active), bpl)
        out = []
        for x in lines:
            out.append(self._segment(lo, hi, [(x, before, after)]))
        if middle is not None:
            for x1 in lines:
                for x2 in lines:
                    if x2 >= x1 + bpl:
                        out.append(self._segment(lo, hi, [(x1, before, middle),
                                                          (x2, middle, after)]))
        return out

    def _segment(self, lo: int, hi: int, slips: list[tuple[int, int, int]]) -> tuple:
        """Shifts and erasures of the bytes around [lo, hi) for slips (line x, shift
        before, shift after) in line order: each takes effect after its line, and a
        dropped line's bytes are gone."""
        cuts = [min(x + self.bpl, self.active) for x, _, _ in slips]
        start = min([lo] + [x for x, _, _ in slips])
        end = max([hi] + cuts)
        seg_shift = np.full(end - start, slips[-1][2], np.int64)
        seg_erased = np.zeros(end - start, bool)
        prev = start
        for (x, before, after), cut in zip(slips, cuts, strict=True):
            seg_shift[prev - start : max(cut - start, 0)] = before
            if after < before:
                seg_erased[x - start : cut - start] = True
            prev = max(prev, cut)
        return start, end, seg_shift, seg_erased

    def _island(self, good: np.ndarray) -> tuple | None:
        """Two slips that cancel a few keys apart (a line dropped, then one repeated,
        or the reverse): a short run of keys fits one other shift while the anchors
        around it fit none but the accepted one. Too short a run for the profile fit to
        take two steps; returns (shift, erased, spans) with one open span for each
        slip, or None. good (shifts, anchors): the anchor fits that shift."""
        z = self._zero_shift
        pos = self._anchor_pos
        off = ~good[z]
        off[0] = off[-1] = False  # edges are never inside an island
        runs = _runs_of(off)
        if not runs or len(runs) > 2:
            return None
        shift = np.full(self.active, self.shifts[z], np.int64)
        erased = np.zeros(self.active, bool)
        spans = []
        for a0, a1 in runs:
            if a1 - a0 + 1 > _ISLAND_KEYS:
                return None
            run = good[:, a0 : a1 + 1]
            # Keys of the run fit the island's shift, or none at all (a key in the
            # dropped line itself is gone).
            votes = run.sum(axis=1)
            best = int(np.argmax(votes))
            if votes[best] == 0 or (run.any(axis=0) & ~run[best]).any():
                return None
            s = int(self.shifts[best])
            shift[int(pos[a0]) : int(pos[a1]) + 1] = s
            spans.append((int(pos[a0 - 1]) + 1, int(pos[a0]), 0, s))
            spans.append((int(pos[a1]) + 1, int(pos[a1 + 1]), s, 0))
        for open_from, open_to, _, _ in spans:
            erased[max(open_from, 0) : min(open_to, self.active)] = True
        return shift, erased, spans

    def _learn(self, starts: np.ndarray, end_shift: np.ndarray, first_odd: bool,
               before_odd: bool) -> None:
        """Remember the field lengths this deck plays (a deck may always drop the odd
        field's half line, or add one), so the next fields are predicted right."""
        seq = starts if self._prev_start is None else np.concatenate(
            [[self._prev_start], starts])
        shift = end_shift if self._prev_start is None else np.concatenate(
            [[self._prev_shift], end_shift])
        first = first_odd if self._prev_start is None else before_odd
        self._prev_start, self._prev_shift = int(starts[-1]), int(end_shift[-1])
        if seq.size < 2:
            return
        d = np.diff(seq) - shift[:-1]  # field lengths net of slips inside the fields
        tol = 3 * self.bpl
        for odd, part in ((first, d[0::2]), (not first, d[1::2])):
            near = part[np.abs(part - self.field_length(odd)) <= tol]
            if near.size:
                self._expect[odd] = int(near[-1])

    def _trim(self) -> None:
        """Drop buffered bytes no later search can need."""
        keep_from = self._pos - self.margin - self._base
        if keep_from > 0:
            self._buf = self._buf[keep_from:].copy() if keep_from < self._buf.size else (
                np.zeros(0, np.uint8))
            self._base += keep_from


def _runs_of(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True values."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(),
                    (np.flatnonzero(edges == -1) - 1).tolist(), strict=True))


def _fit_profile(cost: np.ndarray, start: int) -> np.ndarray:
    """Least-cost shift index per anchor (Viterbi); a change of shift costs _STEP_COST.

    cost (shifts, anchors): mismatch cost of each anchor at each shift; `start` is the
    accepted alignment, slightly preferred for the first anchor.
    """
    n_shift, n_anchor = cost.shape
    states = np.arange(n_shift)
    total = np.full(n_shift, 0.25)
    total[start] = 0.0
    total = total + cost[:, 0]
    back = np.zeros((n_anchor, n_shift), np.int64)
    for a in range(1, n_anchor):
        best = int(np.argmin(total))
        jump = total[best] + _STEP_COST
        stay = total <= jump
        back[a] = np.where(stay, states, best)
        total = np.where(stay, total, jump) + cost[:, a]
    prof = np.zeros(n_anchor, np.int64)
    prof[-1] = int(np.argmin(total))
    for a in range(n_anchor - 1, 0, -1):
        prof[a - 1] = back[a, prof[a]]
    return prof

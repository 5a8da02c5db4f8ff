"""Inner decoding of a batch of fields: sectors out of payloads, with every erasure hint.

Theory of operation. A field's payload becomes a sector (EP: through 8/9 GCR, whose
invalid words are erasures); the sector codec corrects its I interleaved codewords.
Clean sectors cost one parity recomputation. Sectors that fail are retried, each step
only for what the step before could not decode, so a good tape pays for none of them:

1. dropout runs: a dropout reads as a constant level, i.e. a run of 0x00 or 0xFF bytes
   in the payload. Runs of at least `DROPOUT_RUN` bytes are erased; in randomised data
   such a run occurs about once in 10^14 bytes (2 * 256^-6 per byte; measured in
   tests/format/test_dropout_runs.py), so a run is a dropout. The hints stay on for
   the steps below, combined with theirs;
2. three tiers around unmatched key bytes (the bytes next to them, the intervals
   between two, the intervals around each);
3. for a line slip the key bytes could not pin down, each candidate line;
4. an erasure window slid over a dropout too long for the tiers.

Every retry keeps `GUESS_SPARE` parity symbol per codeword unused (`rs.reserve_spare`):
its erasures are guesses, and a decode spending all of the parity could not tell a
wrong guess (or a stray error beside a right one) from a right one.

Then, in SP modes, a sector whose header decoded but some data codeword did not is
delivered in part (`partial_sectors`): its `damaged` bytes are reported lost, the rest
are good. `DecoderOptions` switches each feature off (the original's method: no
erasures, a sector lost on any line slip, whole sectors lost).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from backerd.format.decode_options import DEFAULT, DecoderOptions
from backerd.format.params import Codec, ModeParams
from backerd.format.sync import FieldBatch, FieldSync

# Shortest run of 0x00 or 0xFF bytes taken for a dropout (see the module docstring).
DROPOUT_RUN = 6
_LEVELS = (0x00, 0xFF)
# Parity symbols per codeword left unused by decodes led by guessed erasures (every
# retry step): with all of them spent, 2t erasures always "decode", right or wrong.
GUESS_SPARE = 1


def constant_runs(payload: np.ndarray, min_run: int = DROPOUT_RUN) -> np.ndarray:
    """(N, L) bool: bytes inside a run of at least `min_run` equal 0x00 or 0xFF bytes.

    Vectorised over all rows: a window of `min_run` bytes is constant when the prefix
    sums of "byte == level" grow by `min_run` across it; a byte is in a run when a
    constant window starts at most `min_run - 1` bytes before it.
    """
    payload = np.asarray(payload, dtype=np.uint8)
    rows, size = payload.shape
    out = np.zeros((rows, size), bool)
    if size < min_run or rows == 0:
        return out
    zero = np.zeros((rows, 1), np.int32)
    for level in _LEVELS:
        hit = np.concatenate([zero, np.cumsum(payload == level, axis=1, dtype=np.int32)],
                             axis=1)
        starts = (hit[:, min_run:] - hit[:, :-min_run]) == min_run  # (N, L - m + 1)
        if not starts.any():
            continue
        cover = np.concatenate([zero, np.cumsum(starts, axis=1, dtype=np.int32)], axis=1)
        # Byte x is covered by a window starting in [x - m + 1, x].
        idx = np.arange(size)
        hi = np.minimum(idx + 1, starts.shape[1])
        lo = np.maximum(idx - min_run + 1, 0)
        out |= (cover[:, hi] - cover[:, lo]) > 0
    return out


def decode_fields(codec, sync: FieldSync, fields: FieldBatch,
                  options: DecoderOptions = DEFAULT):
    """Sector decode of the fields' payloads with erasure hints, in steps.

    First the known erasures (re-aligned line slips, invalid GCR words); sectors that
    fail are retried with the dropout runs erased, then also the bytes near unmatched
    key bytes, then the intervals between two unmatched keys (a dropout that took
    both), then the whole key intervals around every unmatched key (a dropout that took
    one). Each tier spends more of the code on erasures, so it only runs where the one
    before failed; then slip-line candidates and dropout windows (see below) for what
    still fails. Returns the DecodedSectors and the erasures used per sector.
    """
    params = sync.params
    sectors, erasures = demodulate(params, fields)
    if not options.erasures:
        erasures[:] = False
    size = sectors.shape[1]
    marked = erasures.any(axis=1)
    dec = codec.decode_sectors(sectors, erasures if marked.any() else None)  # known marks
    used = np.zeros(len(fields), np.int64)
    if marked.any():
        used[marked] = erasures[marked].sum(axis=1)

    def to_sector(mask: np.ndarray) -> np.ndarray:
        return payload_to_sector_mask(mask, size) if params.codec is Codec.EP else mask

    if options.erasures:
        if options.dropout_runs:
            dec = _try_dropout_runs(codec, fields, sectors, erasures, dec, used, to_sector)
        tiers = (
            lambda rows: fields.suspect[rows],
            lambda rows: fields.suspect[rows] | sync.segments_between(fields.missing[rows]),
            lambda rows: sync.segments_around(fields.missing[rows]),
        )
        for tier in tiers:
            retry = np.flatnonzero(~dec.ok & fields.missing.any(axis=1))
            if retry.size == 0:
                break
            wider = erasures[retry] | to_sector(tier(retry))
            again = codec.decode_sectors(sectors[retry], wider, spare=GUESS_SPARE)
            if again.ok.any():
                dec = _merge(dec, again, retry)
                used[retry[again.ok]] = wider[again.ok].sum(axis=1)
    if options.resync and fields.alternatives and not dec.ok.all():
        dec = _try_slip_lines(codec, params, fields, dec, used, options)
    if options.erasures and not dec.ok.all():
        dec = _try_dropout_windows(codec, sync, fields, sectors, erasures, dec, used)
    if options.partial_sectors and params.codec is not Codec.EP:
        dec = _take_partial(dec)
    if not options.resync and fields.slips.any():
        dec = _fail(dec, np.flatnonzero(fields.slips > 0))
    return dec, used


def _try_dropout_runs(codec, fields: FieldBatch, sectors, erasures, dec, used, to_sector):
    """Failed sectors with constant-level runs: retry with the runs erased, and keep the
    runs erased (in `erasures`, in place) for the steps after this one."""
    retry = np.flatnonzero(~dec.ok)
    if retry.size == 0:
        return dec
    runs = constant_runs(fields.payload[retry])
    has = runs.any(axis=1)
    if not has.any():
        return dec
    rows = retry[has]
    erasures[rows] |= to_sector(runs[has])
    again = codec.decode_sectors(sectors[rows], erasures[rows], spare=GUESS_SPARE)
    if again.ok.any():
        dec = _merge(dec, again, rows)
        used[rows[again.ok]] = erasures[rows[again.ok]].sum(axis=1)
    return dec


def _take_partial(dec):
    """Sectors whose header decoded but a data codeword did not: usable, with the bytes
    of the failed codewords marked `damaged` (the codec computed both)."""
    if dec.readable is None:
        return dec
    part = dec.readable & ~dec.ok
    if not part.any() or dec.damaged is None:
        return dataclasses.replace(dec, damaged=None)
    return dataclasses.replace(dec, ok=dec.ok | part, damaged=dec.damaged & part[:, None])


def _fail(dec, rows: np.ndarray):
    """dec with `rows` marked undecodable (their sector counts as lost)."""
    ok = dec.ok.copy()
    ok[rows] = False
    changes: dict[str, Any] = {"ok": ok}
    if dec.damaged is not None:
        damaged = dec.damaged.copy()
        damaged[rows] = False
        changes["damaged"] = damaged
    return dataclasses.replace(dec, **changes)


# Placements tried for the erasure window over a dropout, per key interval.
_WINDOW_STEPS = 5


def _try_dropout_windows(codec, sync: FieldSync, fields: FieldBatch, sectors, erasures,
                         dec, used):
    """Sectors that lost key bytes to a dropout too long for the tiers: slide a window
    one key interval wider than the unmatched keys over them.

    The dropout covers the unmatched keys and reaches at most about one interval
    beyond; erasing the two intervals around them is then more than the code holds,
    but one placement of a narrower window covers nearly all of it, and the rest are
    errors the code still corrects. Runs of unmatched keys are tried one at a time,
    the others erased whole.
    """
    params = sync.params
    rows = np.flatnonzero(~dec.ok & fields.missing.any(axis=1))
    if rows.size == 0:
        return dec
    ki = params.key_interval
    pos = sync.payload_pos
    key_pos = sync.key_pos
    owners, masks = [], []
    for i in rows.tolist():
        missing = fields.missing[i]
        runs = _runs(np.flatnonzero(missing))
        if len(runs) > 2:
            continue  # a field that damaged is beyond windows
        for r, (j1, j2) in enumerate(runs):
            others = np.zeros_like(missing)
            for o, (a, b) in enumerate(runs):
                if o != r:
                    others[a : b + 1] = True
            rest = sync.segments_around(others[None, :])[0] | fields.suspect[i]
            for k in range(_WINDOW_STEPS):
                lo = key_pos[j1] - ki + (k * ki) // (_WINDOW_STEPS - 1)
                hi = key_pos[j2] + (k * ki) // (_WINDOW_STEPS - 1)
                masks.append(rest | ((pos >= lo) & (pos <= hi)))
                owners.append(i)
    if not owners:
        return dec
    mask = np.array(masks)
    if params.codec is Codec.EP:
        mask = payload_to_sector_mask(mask, sectors.shape[1])
    owner = np.asarray(owners)
    wider = erasures[owner] | mask
    again = codec.decode_sectors(sectors[owner], wider, spare=GUESS_SPARE)
    pick = _best_retries(again, owners)
    if pick is None:
        return dec
    chosen = _rows(again, pick)
    used[owner[pick]] = wider[pick].sum(axis=1)
    return _merge(dec, chosen, owner[pick])


def _runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive integers as (first, last)."""
    if indices.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(indices) > 1)
    firsts = np.concatenate([[indices[0]], indices[breaks + 1]])
    lasts = np.concatenate([indices[breaks], [indices[-1]]])
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))


def _try_slip_lines(codec, params: ModeParams, fields: FieldBatch, dec, used,
                    options: DecoderOptions):
    """Sectors with a slip the keys could not pin down: try each line it may be at.

    A wrong line misaligns the bytes between it and the true one, far beyond what the
    code corrects, so the candidate that decodes (with the fewest corrections) is it.
    """
    rows, payloads, erasures = [], [], []
    for i in np.flatnonzero(~dec.ok).tolist():
        alt = fields.alternatives.get(int(fields.start[i]))
        if alt is not None:
            rows += [i] * alt[0].shape[0]
            payloads.append(alt[0])
            erasures.append(alt[1])
    if not rows:
        return dec
    cand = FieldBatch.empty(params.payload)
    cand.payload = np.concatenate(payloads)
    cand.erasures = np.concatenate(erasures)
    sectors, marks = demodulate(params, cand)
    if not options.erasures:
        marks[:] = False
    again = codec.decode_sectors(sectors, marks if options.erasures else None,
                                 spare=GUESS_SPARE)
    owner = np.asarray(rows)
    pick = _best_retries(again, rows)
    if pick is None:
        return dec
    chosen = _rows(again, pick)
    target = owner[pick]
    used[target] = marks[pick].sum(axis=1)
    return _merge(dec, chosen, target)


def demodulate(params: ModeParams, fields: FieldBatch) -> tuple[np.ndarray, np.ndarray]:
    """Sectors (N, S) and their erasures from field payloads (GCR for EP)."""
    if params.codec is not Codec.EP:
        return fields.payload, fields.erasures.copy()
    from backerd.format import gcr

    sectors, invalid = gcr.demodulate(fields.payload)
    slipped = np.flatnonzero(fields.erasures.any(axis=1))
    if slipped.size:
        invalid[slipped] |= payload_to_sector_mask(fields.erasures[slipped], sectors.shape[1])
    return sectors, invalid


def payload_to_sector_mask(mask: np.ndarray, sector_size: int) -> np.ndarray:
    """Sector bytes touched by marked payload bytes through the 8/9 code.

    Sector byte w is the 9-bit word at payload bits [9w, 9w + 9): payload bytes
    9w // 8 and the next. A damaged word also inverts the word after it.
    """
    if not mask.any():
        return np.zeros((mask.shape[0], sector_size), bool)
    lo = (9 * np.arange(sector_size)) // 8
    words = mask[:, lo] | mask[:, lo + 1]
    words[:, 1:] |= words[:, :-1].copy()
    return words


_DECODED_FIELDS = ("ok", "number", "length", "kind", "data", "corrected", "worst",
                   "readable", "damaged")


def _merge(dec, again, rows: np.ndarray):
    """dec with the rows that decoded on retry replaced by their retry results; a retry
    that read the header of a sector still failing replaces it too when it lost fewer
    codewords (partial sectors)."""
    good = again.ok.copy()
    if again.damaged is not None and dec.readable is not None:
        before = (dec.damaged[rows].sum(axis=1) if dec.damaged is not None
                  else np.zeros(rows.size, np.int64))
        fewer = ~dec.readable[rows] | (again.damaged.sum(axis=1) < before)
        good |= again.readable & ~dec.ok[rows] & fewer
    idx = rows[good]
    changes = {}
    for name in _DECODED_FIELDS:
        arr, new = getattr(dec, name), getattr(again, name)
        if name == "damaged" and (arr is not None or new is not None):
            # None stands for "nothing damaged": materialise it on the side lacking it.
            width = dec.data.shape[1]
            arr = np.zeros((dec.ok.size, width), bool) if arr is None else arr
            new = np.zeros((again.ok.size, width), bool) if new is None else new
        if arr is None or new is None:
            continue
        arr = arr.copy()
        arr[idx] = new[good]
        changes[name] = arr
    return dataclasses.replace(dec, **changes)


def _best_retries(again: Any, owners: list[int]) -> np.ndarray | None:
    """For each sector retried in several ways, the decoded retry that fixed fewest symbols."""
    best: dict[int, int] = {}
    for c in np.flatnonzero(again.ok).tolist():
        i = owners[c]
        if i not in best or again.corrected[c] < again.corrected[best[i]]:
            best[i] = c
    return np.asarray(list(best.values())) if best else None


def _rows(decoded: Any, pick: np.ndarray) -> Any:
    """The chosen rows of a DecodedSectors batch."""
    return dataclasses.replace(decoded, **{
        name: getattr(decoded, name)[pick] for name in _DECODED_FIELDS
        if getattr(decoded, name) is not None})

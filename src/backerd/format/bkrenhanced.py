"""The bkrenhanced outer code of releases 3.1-3.101 (spec 11.1).

Theory of operation: a group is 255 sectors of C bytes. In memory it is a buffer
G = parity area [0, 20C) + data area [20C, 255C); codeword b (0 <= b < C) owns data
bytes [235b, 235b+235) and parity bytes [20b, 20b+20) and is RS(255,235) (spec 6.4).
On tape the group is transposed: sector j carries symbol j of every codeword, parity
symbols first. So sector j of a group *is* codeword position j: a lost sector is an
erasure at position j, and a codeword that cannot be corrected loses exactly the 235
contiguous user bytes it carries. The data area holds up to Cg = 235C - 4 user bytes,
zero padded, then the group length as a little-endian signed 32-bit int. An input
whose length is a multiple of Cg (including 0) ends with an extra group of length 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from math import lgamma, log

import numpy as np

from backerd.format.gf import EXP, MUL, matrix_inverse
from backerd.format.gf_linear import LinearMap
from backerd.format.params import (
    GROUP_DATA_SECTORS,
    GROUP_PARITY_SECTORS,
    GROUP_SECTORS,
    group_capacity,
)
from backerd.format.rs import RSCode, RSDecodeResult, rs_code

MISCORRECTION_LIMIT = 1e-4  # see _trusted



def encode_groups(data: bytes, capacity: int, lengths: list[int] | None = None) -> bytes:
    """Encode whole groups: `data` is len(lengths) * Cg bytes (zero padded per group)."""
    cg = group_capacity(capacity)
    n_groups = len(data) // cg
    if n_groups * cg != len(data):
        raise ValueError("encode_groups needs whole groups")
    if lengths is None:
        lengths = [cg] * n_groups
    area = np.zeros((n_groups, GROUP_DATA_SECTORS * capacity), np.uint8)
    area[:, :cg] = np.frombuffer(data, np.uint8).reshape(n_groups, cg)
    area[:, cg:] = np.asarray(lengths, "<i4").view(np.uint8).reshape(n_groups, 4)
    code = rs_code(GROUP_SECTORS, GROUP_DATA_SECTORS)
    parity = code.encode(area.reshape(n_groups * capacity, GROUP_DATA_SECTORS))
    # (groups, C codewords, 255 positions) -> (groups, 255 sectors, C bytes)
    cw = np.concatenate(
        [parity.reshape(n_groups, capacity, GROUP_PARITY_SECTORS),
         area.reshape(n_groups, capacity, GROUP_DATA_SECTORS)],
        axis=2,
    )
    return np.ascontiguousarray(cw.transpose(0, 2, 1)).tobytes()


class BkrEnhancedEncoder:
    """Streaming bkrenhanced encoder: `write(data) -> bytes` of whole groups, `close()`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.group_capacity = group_capacity(capacity)
        self._pending = bytearray()
        self._closed = False

    def write(self, data: bytes) -> bytes:
        self._pending += data
        cg = self.group_capacity
        n_groups = len(self._pending) // cg
        if not n_groups:
            return b""
        out = encode_groups(bytes(self._pending[: n_groups * cg]), self.capacity)
        del self._pending[: n_groups * cg]
        return out

    def close(self) -> bytes:
        """The last group: the remainder, or an empty group after a whole number."""
        if self._closed:
            return b""
        self._closed = True
        n = len(self._pending)
        padded = bytes(self._pending) + bytes(self.group_capacity - n)
        self._pending.clear()
        return encode_groups(padded, self.capacity, [n])


def encode(data: bytes, capacity: int) -> bytes:
    """The whole bkrenhanced stream of `data` (what `bkrenhanced` wrote to the device)."""
    enc = BkrEnhancedEncoder(capacity)
    return enc.write(data) + enc.close()


@dataclass
class GroupReport:
    """What decoding one group found (for statistics and lost-range reporting)."""

    index: int
    lost_sectors: int
    corrected: int  # symbols corrected over all codewords
    worst: int  # most symbols corrected in one codeword
    failed_codewords: int
    length_known: bool


@dataclass
class BkrEnhancedDecoder:
    """Streaming group decoder for the reader.

    `push(sector_bytes)` takes the next data sector of the recording in order (its C
    bytes), or None for a sector the inner decoder lost (an empty sector is ignored:
    it is bkrencode's trailing one, no part of a group); it returns the user bytes of
    every group completed by it (usually b""). `finish()` decodes a trailing partial
    group, treating its missing sectors as lost. User byte ranges that could not be
    recovered are appended to `lost` as (offset, length) in the output stream; their
    bytes are still delivered (as received) so offsets of later data stay right.
    `reports` keeps one GroupReport per decoded group.
    """

    capacity: int
    lost: list[tuple[int, int]] = field(default_factory=list)
    reports: list[GroupReport] = field(default_factory=list)
    bytes_out: int = 0

    def __post_init__(self) -> None:
        self.group_capacity = group_capacity(self.capacity)
        self._sectors = np.zeros((GROUP_SECTORS, self.capacity), np.uint8)
        self._missing = np.zeros(GROUP_SECTORS, bool)
        self._count = 0
        self._first_new = 0

    def push(self, sector_bytes: bytes | None) -> bytes:
        if sector_bytes is not None and len(sector_bytes) == 0:
            # bkrencode's trailing empty data sector is not part of any group.
            return b""
        if sector_bytes is None or len(sector_bytes) != self.capacity:
            # Lost, or a short sector that cannot belong to a group: an erasure.
            self._missing[self._count] = True
        else:
            self._sectors[self._count] = np.frombuffer(sector_bytes, np.uint8)
        self._count += 1
        if self._count < GROUP_SECTORS:
            return b""
        return self._decode_group()

    def finish(self) -> bytes:
        if self._count == 0:
            return b""
        self._missing[self._count :] = True
        self._count = GROUP_SECTORS
        return self._decode_group()

    def _decode_group(self) -> bytes:
        cap = self.capacity
        cw = np.ascontiguousarray(self._sectors.T)  # (C codewords, 255 positions)
        lost = self._missing.copy()
        result = decode_codewords(cw, lost)
        data_area = result.corrected[:, GROUP_PARITY_SECTORS:].reshape(-1)
        failed = ~result.ok
        cg = self.group_capacity
        # The length sits in codeword C-1 (data symbols 231..234 = sectors 251..254);
        # if that codeword failed but those sectors arrived, their bytes are still it.
        length_known = bool(result.ok[cap - 1]) or not lost[GROUP_SECTORS - 4 :].any()
        length = int(data_area[cg : cg + 4].view("<i4")[0]) if length_known else cg
        base = self.bytes_out
        self._first_new = len(self.lost)  # entries of earlier groups stay as reported
        if not 0 <= length <= cg:
            # Not a length bkrenhanced writes: this is no bkrenhanced group (or it is
            # damaged beyond telling); deliver it whole and report all of it.
            length, length_known = cg, False
            failed = np.ones_like(failed)
        for b in np.flatnonzero(failed):
            start = int(b) * GROUP_DATA_SECTORS
            stop = min(start + GROUP_DATA_SECTORS, length)
            if start < stop:
                self._add_lost(base + start, stop - start)
        self.reports.append(
            GroupReport(
                index=len(self.reports), lost_sectors=int(lost.sum()),
                corrected=int(result.n_corrected[result.ok].sum()),
                worst=int(result.n_corrected[result.ok].max(initial=0)),
                failed_codewords=int((~result.ok).sum()), length_known=length_known,
            )
        )
        self._sectors[:] = 0
        self._missing[:] = False
        self._count = 0
        self.bytes_out += length
        return data_area[:length].tobytes()

    def _add_lost(self, offset: int, length: int) -> None:
        if length == 0:
            return
        if len(self.lost) > self._first_new and sum(self.lost[-1]) == offset:
            start, old = self.lost[-1]
            self.lost[-1] = (start, old + length)
        else:
            self.lost.append((offset, length))


@dataclass
class _Decoded:
    corrected: np.ndarray
    ok: np.ndarray
    n_corrected: np.ndarray


def decode_codewords(cw: np.ndarray, lost: np.ndarray) -> _Decoded:
    """RS(255,235)-decode the C codewords of a group with lost sectors as erasures.

    A sector the inner code let through damaged shows up as the same error position
    in several codewords. Positions found by at least two codewords are "confirmed";
    failed codewords are retried with them erased too. A correction that uses nearly
    all the redundancy left by the erasures is accepted only if it is unlikely to be a
    miscorrection or all its error positions are confirmed (near the erasure limit a
    random pattern "corrects" to a wrong codeword with probability close to 1), since
    a reported loss is better than wrong data. With exactly 20 erasures nothing can be
    checked, as in any RS decoder.
    """
    code = rs_code(GROUP_SECTORS, GROUP_DATA_SECTORS)
    res = _decode_with_erasures(code, cw, lost)
    errors = res.changed & ~lost
    confirmed = errors[res.ok].sum(axis=0) >= 2
    ok = res.ok & _trusted(errors, int(lost.sum()), confirmed)
    # Rows not accepted keep the received symbols (right wherever the sector arrived).
    corrected = np.where(ok[:, None], res.corrected, cw)
    n_corr = np.where(ok, res.n_corrected, 0)
    retry_erasures = lost | confirmed
    if not ok.all() and confirmed.any() and retry_erasures.sum() <= GROUP_PARITY_SECTORS:
        again_rows = np.flatnonzero(~ok)
        again = code.decode(
            cw[again_rows], np.broadcast_to(retry_erasures, (again_rows.size, GROUP_SECTORS))
        )
        fine = again.ok & _trusted(
            again.changed & ~retry_erasures, int(retry_erasures.sum()), confirmed
        )
        corrected[again_rows] = np.where(fine[:, None], again.corrected, corrected[again_rows])
        n_corr[again_rows] = np.where(fine, again.n_corrected, n_corr[again_rows])
        ok[again_rows] = fine
    return _Decoded(corrected, ok, n_corr)


def _trusted(errors: np.ndarray, n_erasures: int, confirmed: np.ndarray) -> np.ndarray:
    """Rows whose correction is unlikely to be a miscorrection, or hit confirmed positions.

    A received word beyond the code's reach decodes to some wrong codeword with e errors
    with probability about C(n - f, e) 255^e / 256^(20 - f) (the share of the space the
    decoding spheres cover). Accept a correction if that is below MISCORRECTION_LIMIT.
    """
    n_errors = errors.sum(axis=1)
    free = GROUP_SECTORS - n_erasures
    spare = GROUP_PARITY_SECTORS - n_erasures
    e = np.arange(GROUP_PARITY_SECTORS // 2 + 1)
    if spare < 0:  # more erasures than parity: nothing decodes
        return np.zeros(errors.shape[0], bool)
    log_c = np.array([lgamma(free + 1) - lgamma(k + 1) - lgamma(free - k + 1) for k in e])
    log_p = log_c + e * log(255) - spare * log(256)
    likely_right = log_p[np.minimum(n_errors, e[-1])] < log(MISCORRECTION_LIMIT)
    return likely_right | (n_errors == 0) | ~(errors & ~confirmed).any(axis=1)


@lru_cache(maxsize=8)  # patterns repeat while a damaged stretch of tape lasts
def _erasure_filler(positions: tuple[int, ...]) -> LinearMap:
    """Linear map from a received word (erased symbols zeroed) to the erased symbols.

    With erasures at positions p_i the errata values y solve sum_i y_i alpha^((j+1) p_i)
    = S_(j+1) for the first f syndromes; S is linear in the received symbols, so
    y = A^-1 S is one precomputed GF(2)-linear map (one gather per symbol and row).
    """
    f = len(positions)
    pos = np.arange(GROUP_SECTORS)
    pow_ = EXP[(np.arange(1, f + 1)[None, :] * pos[:, None]) % 255]  # alpha^((j+1) pos)
    a_inv = matrix_inverse(pow_[list(positions)].T)  # (f, f)
    # u[pos] = A^-1 h_pos: what a unit symbol at pos contributes to each erased value.
    u = np.zeros((GROUP_SECTORS, f), np.uint8)
    for i in range(f):
        u[:, i] = np.bitwise_xor.reduce(MUL[a_inv[i][None, :], pow_], axis=1)
    u[list(positions)] = 0
    return LinearMap(u)


def _decode_with_erasures(code: RSCode, cw: np.ndarray, lost: np.ndarray) -> RSDecodeResult:
    """rs decode, with a fast path for the common case of lost sectors and no errors.

    Every codeword of a group shares the erasure pattern, so the erased symbols are
    filled by one linear map; rows whose filled word is not a codeword (they also
    carry errors) go through the general errors-and-erasures decoder.
    """
    positions = tuple(int(p) for p in np.flatnonzero(lost))
    if not positions or len(positions) > GROUP_PARITY_SECTORS:
        return code.decode(cw, np.broadcast_to(lost, cw.shape) if positions else None)
    received = cw.copy()
    received[:, list(positions)] = 0
    corrected = received
    corrected[:, list(positions)] = _erasure_filler(positions).apply_rows(received)
    if len(positions) < GROUP_PARITY_SECTORS:
        dirty = np.flatnonzero(code.syndromes(corrected).any(axis=1))
    else:
        dirty = np.zeros(0, np.intp)  # no syndrome left to check, as in any decoder
    ok = np.ones(cw.shape[0], bool)
    if dirty.size:
        slow = code.decode(cw[dirty], np.broadcast_to(lost, (dirty.size, cw.shape[1])))
        corrected[dirty] = slow.corrected
        ok[dirty] = slow.ok
    changed = corrected != cw
    return RSDecodeResult(
        corrected=corrected, ok=ok, n_corrected=changed.sum(axis=1), changed=changed
    )

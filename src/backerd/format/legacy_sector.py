"""Sector codec of the old formats 3.101 and 3.3 (spec 11.1, 11.2).

Theory of operation: the old drivers build each sector in a *codeword-major* buffer
(codeword b owns data bytes [b*k, b*k+k) and parity bytes [D + b*2t, D + b*2t + 2t)),
so consecutive user bytes stay inside one codeword, then byte-interleave that buffer
into tape order (byte j of every codeword in turn). On tape the codeword positions are
therefore the same strided pattern as 3.102; only where the user bytes sit differs.
Here the buffer <-> tape mapping is one precomputed permutation applied to whole
(N, S) batches, and the codewords are cut from the buffer with reshapes.

The formats differ in the header word, in what is randomised and in what fills a
partial sector:

* 3.101: H = 25-bit signed number | low nibble << 25 | stream id (0) << 29; the 3.102
  randomiser over the n user bytes only; 0x33 filler; BOR/EOR are empty sectors.
* 3.3: H = 22-bit number | low nibble << 22 | type << 26 (0 BOR, 1 EOR, 2 DATA); DATA
  sectors randomised over the whole data area [0, C) with the variant generator (word 0
  never); BOR/EOR carry C bytes of 0x33, low nibble 0, not randomised. A partial sector
  keeps stale bytes of the previous sector buffer in [n, C-1): `stale_area()` recovers
  that buffer from an encoded sector, and `encode_sectors(..., stale=...)` takes it, so
  a writer carries the state explicitly.
"""

from __future__ import annotations

import numpy as np

from backerd.errors import UsageError
from backerd.format import randomiser
from backerd.format.params import FILL, LEGACY_FORMATS, Format, ModeParams
from backerd.format.rs import rs_code
from backerd.format.sector_types import (
    DecodedSectors,
    SectorKind,
    decode_length,
    encode_length,
    sign_extend,
)

# 3.3 header type field
TYPE_BOR, TYPE_EOR, TYPE_DATA = 0, 1, 2


def parse_length(high: np.ndarray, low: np.ndarray, capacity: int) -> np.ndarray:
    """User byte count from the high byte and low nibble (spec 6.2); -1 where the pair
    is not an encoding the writer produces (n >= C, or e does not re-encode to low)."""
    n = decode_length(high, low, capacity)
    exact = (n >= 0) & (n < capacity) & ((encode_length(np.clip(n, 0, capacity)) & 0xF) == low)
    return np.where((low == 0) | exact, n, -1)


class LegacySectorCodec:
    """Encode/decode whole batches of 3.101 or 3.3 sectors, (N, S) in tape order."""

    def __init__(self, params: ModeParams) -> None:
        if params.format not in LEGACY_FORMATS or params.is_raw:
            raise UsageError(
                f"no legacy sector codec for {params.format} {params.name}"
            )
        self.params = params
        self.format = params.format
        self.interleave = params.interleave
        self.rs_n, self.rs_k = params.rs_n, params.rs_k
        self.nsym = params.parity_per_codeword
        self.data_size = params.data_size
        self.capacity = params.capacity
        self.sector_size = params.sector_size
        self.rs = rs_code(self.rs_n, self.rs_k)
        i, k, t2, d = self.interleave, self.rs_k, self.nsym, self.data_size
        # tape[pos] = buf[to_tape[pos]]: byte j of every codeword in turn.
        data_part = (np.arange(i)[None, :] * k + np.arange(k)[:, None]).ravel()
        parity_part = d + (np.arange(i)[None, :] * t2 + np.arange(t2)[:, None]).ravel()
        self.to_tape = np.concatenate([data_part, parity_part])
        self.from_tape = np.argsort(self.to_tape)

    # ------------------------------------------------------------------ layout
    def buffer_to_tape(self, buf: np.ndarray) -> np.ndarray:
        return np.take(buf, self.to_tape, axis=1)

    def tape_to_buffer(self, sectors: np.ndarray) -> np.ndarray:
        return np.take(sectors, self.from_tape, axis=1)

    def _codewords(self, buf: np.ndarray) -> np.ndarray:
        """(N*I, n) codewords in coefficient order (parity then data) from buffers."""
        n_rows = buf.shape[0] * self.interleave
        data = buf[:, : self.data_size].reshape(n_rows, self.rs_k)
        parity = buf[:, self.data_size :].reshape(n_rows, self.nsym)
        return np.concatenate([parity, data], axis=1)

    def _pack_header(
        self, numbers: np.ndarray, low: np.ndarray, types: np.ndarray | None
    ) -> np.ndarray:
        numbers = numbers.astype(np.int64)
        if self.format is Format.V3101:
            word = (numbers & 0x1FFFFFF) | (low.astype(np.int64) << 25)
        else:
            word = (numbers & 0x3FFFFF) | (low.astype(np.int64) << 22)
            word |= types.astype(np.int64) << 26
        return word.astype("<u4").view(np.uint8).reshape(-1, 4)

    # ------------------------------------------------------------------ encode
    def encode_sectors(
        self,
        data: np.ndarray,
        lengths: np.ndarray,
        numbers: np.ndarray,
        kinds: np.ndarray | None = None,
        *,
        stale: np.ndarray | None = None,
    ) -> np.ndarray:
        """Sectors (N, S) in tape order (before GCR).

        data (N, C) user bytes valid for [0, lengths); numbers as recorded. 3.3 only:
        `kinds` (SectorKind values, default DATA; BOR/EOR ignore data and lengths) and
        `stale` (C,), the data area of the sector buffer before the first sector of the
        batch (default: the 0x33 fill a fresh recording starts with). Later sectors of
        the batch take their stale bytes from their predecessor, as the driver did.
        """
        data = np.asarray(data, dtype=np.uint8)
        lengths = np.asarray(lengths, dtype=np.int64)
        numbers = np.asarray(numbers, dtype=np.int64)
        n_sec, cap = data.shape[0], self.capacity
        if data.ndim != 2 or data.shape[1] != cap:
            raise ValueError(f"expected (N, {cap}) sector data, got {data.shape}")
        if np.any((lengths < 0) | (lengths > cap)):
            raise ValueError("sector length out of range")
        buf = np.full((n_sec, self.sector_size), FILL, dtype=np.uint8)
        if self.format is Format.V3101:
            low = self._fill_3101(buf, data, lengths, numbers)
            types = None
        else:
            if kinds is None:
                kinds = np.full(n_sec, int(SectorKind.DATA))
            kinds = np.asarray(kinds, dtype=np.int64)
            low, types = self._fill_33(buf, data, lengths, numbers, kinds, stale)
        buf[:, cap : cap + 4] = self._pack_header(numbers, low, types)
        rows = n_sec * self.interleave
        parity = self.rs.encode(buf[:, : self.data_size].reshape(rows, self.rs_k))
        buf[:, self.data_size :] = parity.reshape(n_sec, -1)
        return self.buffer_to_tape(buf)

    def _fill_3101(self, buf, data, lengths, numbers) -> np.ndarray:
        cap = self.capacity
        for n in np.unique(lengths):
            sel = np.flatnonzero(lengths == n)
            if n:
                mask = randomiser.mask(numbers[sel], int(n))
                buf[sel, :n] = data[sel, :n] ^ mask[:, :n]
        self._set_partial_length(buf, lengths)
        return np.where(lengths < cap, encode_length(lengths) & 0xF, 0)

    def _set_partial_length(self, buf: np.ndarray, lengths: np.ndarray) -> None:
        part = lengths < self.capacity
        buf[part, self.capacity - 1] = encode_length(lengths[part]) >> 4

    def _fill_33(self, buf, data, lengths, numbers, kinds, stale):
        cap = self.capacity
        is_data = kinds == int(SectorKind.DATA)
        types = np.where(
            is_data, TYPE_DATA, np.where(kinds == int(SectorKind.BOR), TYPE_BOR, TYPE_EOR)
        )
        lengths = np.where(is_data, lengths, cap)  # BOR/EOR: low nibble 0
        prev = np.full(cap, FILL, np.uint8) if stale is None else np.asarray(stale, np.uint8)
        rows = np.flatnonzero(is_data)
        if rows.size:
            masks = np.zeros((buf.shape[0], cap), np.uint8)
            masks[rows] = randomiser.mask_33(numbers[rows], cap)
            full = rows[lengths[rows] == cap]
            buf[full, :cap] = data[full] ^ masks[full]
            # A partial sector (normally only the last one) starts from the buffer the
            # previous sector left behind, which is final by the time we reach it.
            for row in rows[lengths[rows] < cap]:
                n = int(lengths[row])
                buf[row, :cap] = prev if row == 0 else buf[row - 1, :cap]
                buf[row, :n] = data[row, :n]
                buf[row, cap - 1] = encode_length(n) >> 4
                buf[row, :cap] ^= masks[row]
        low = np.where(lengths < cap, encode_length(lengths) & 0xF, 0)
        return low, types

    def stale_area(self, last_sector: np.ndarray) -> np.ndarray:
        """Data area (C,) of the sector buffer after encoding `last_sector` (tape order)."""
        buf = self.tape_to_buffer(np.asarray(last_sector, np.uint8)[None, :])
        return buf[0, : self.capacity].copy()

    # ------------------------------------------------------------------ decode
    def decode_sectors(
        self, sectors: np.ndarray, erasures: np.ndarray | None = None, *, spare: int = 0
    ) -> DecodedSectors:
        """RS-correct and parse sectors (N, S) in tape order (after GCR demodulation).

        `ok` is false where a codeword failed or the header is impossible for this
        format (3.101: stream id not 0 or bad length; 3.3: type > 2 or bad length).
        """
        return self.decode_with_evidence(sectors, erasures, spare=spare)[0]

    def decode_with_evidence(
        self, sectors: np.ndarray, erasures: np.ndarray | None = None, *, spare: int = 0
    ) -> tuple[DecodedSectors, np.ndarray, np.ndarray]:
        """decode_sectors plus, per sector, (consistent, contradictory) evidence.

        consistent: the sector has a shape only this format writes (3.101: an empty
        sector, C-1 bytes of 0x33 filler; 3.3: a BOR/EOR marker, low nibble 0 and all
        0x33). contradictory: the codewords decoded but the header or filler is
        impossible for this format. Data sectors are neutral.
        """
        sectors = np.asarray(sectors, dtype=np.uint8)
        n_sec, cap = sectors.shape[0], self.capacity
        if sectors.ndim != 2 or sectors.shape[1] != self.sector_size:
            raise ValueError(f"expected (N, {self.sector_size}) sectors, got {sectors.shape}")
        cw = self._codewords(self.tape_to_buffer(sectors))
        er = None
        if erasures is not None:
            er = self._codewords(self.tape_to_buffer(np.asarray(erasures, dtype=bool)))
        res = self.rs.decode(cw, er)
        if spare and er is not None:
            # Guessed erasures: keep `spare` parity symbols as a check (rs.reserve_spare).
            spent = 2 * (res.changed & ~er).sum(axis=1) + er.sum(axis=1)
            over = res.ok & (spent > self.nsym - spare)
            res.ok[over] = False
            res.corrected[over] = cw[over]
            res.n_corrected[over] = 0
        per_cw = res.n_corrected.reshape(n_sec, self.interleave)
        rs_ok = res.ok.reshape(n_sec, self.interleave).all(axis=1)
        area = res.corrected[:, self.nsym :].reshape(n_sec, self.data_size)
        word = area[:, cap : cap + 4].copy().view("<u4")[:, 0].astype(np.int64)
        parse = self._parse_3101 if self.format is Format.V3101 else self._parse_33
        number, length, kind, valid, data, consistent, plausible = parse(area, word)
        ok = rs_ok & valid
        # Header and high length byte are the last symbols of the last codeword; user
        # bytes fill the codewords in order (byte j is in codeword j // k), so with
        # the last codeword decoded the sector can be delivered in part.
        cw_ok = res.ok.reshape(n_sec, self.interleave)
        readable = valid & cw_ok[:, -1]
        length = np.where(readable, length, 0)
        partial = readable & ~ok
        damaged = None  # (N, C) only when some sector is partial
        if partial.any():
            damaged = (~cw_ok[:, np.arange(cap) // self.rs_k] & partial[:, None]
                       & (np.arange(cap)[None, :] < length[:, None]))
        decoded = DecodedSectors(
            ok=ok,
            number=np.where(readable, number, 0),
            length=length,
            kind=np.where(readable, kind, int(SectorKind.DATA)),
            data=data,
            corrected=np.where(readable, per_cw.sum(axis=1), 0),
            worst=np.where(readable, per_cw.max(axis=1), 0),
            readable=readable,
            damaged=damaged,
        )
        return decoded, ok & consistent, rs_ok & ~plausible

    def _parse_3101(self, area: np.ndarray, word: np.ndarray):
        cap = self.capacity
        number = sign_extend(word, 25)
        low = (word >> 25) & 0xF
        length = parse_length(area[:, cap - 1], low, cap)
        valid = ((word >> 29) == 0) & (length >= 0)
        length = np.where(valid, length, 0)
        # Filler of empty/partial sectors is 0x33 and never randomised in 3.101.
        filler = (area[:, : cap - 1] == FILL) | (np.arange(cap - 1)[None, :] < length[:, None])
        filler_ok = filler.all(axis=1) & ((number >= 0) | (length == 0))
        # Only empty sectors (markers) are specific: a 3.3 marker can pass for a
        # partial 3.101 sector.
        consistent = (length == 0) & filler_ok
        data = area[:, :cap].copy()
        for n in np.unique(length):
            sel = np.flatnonzero(valid & (length == n))
            if n and sel.size:
                data[sel, :n] ^= randomiser.mask(number[sel], int(n))[:, :n]
        kind = np.where(
            number < 0, int(SectorKind.BOR),
            np.where(length == 0, int(SectorKind.EOR), int(SectorKind.DATA)),
        )
        plausible = valid & ((length == cap) | filler_ok)
        return number, length, kind, valid, data, consistent, plausible

    def _parse_33(self, area: np.ndarray, word: np.ndarray):
        cap = self.capacity
        number = word & 0x3FFFFF
        low = (word >> 22) & 0xF
        types = word >> 26
        is_data = types == TYPE_DATA
        data = area[:, :cap].copy()
        rows = np.flatnonzero(is_data)
        if rows.size:
            data[rows] ^= randomiser.mask_33(number[rows], cap)
        length = parse_length(data[:, cap - 1], low, cap)
        valid = (types <= TYPE_DATA) & (length >= 0)
        # Markers: low nibble 0 and an all-0x33 data area, nothing else.
        marker_ok = (low == 0) & (area[:, :cap] == FILL).all(axis=1)
        valid &= is_data | marker_ok
        length = np.where(is_data & valid, length, 0)
        kind = np.select(
            [types == TYPE_BOR, types == TYPE_EOR], [int(SectorKind.BOR), int(SectorKind.EOR)],
            int(SectorKind.DATA),
        )
        return number, length, kind, valid, data, ~is_data & marker_ok, valid

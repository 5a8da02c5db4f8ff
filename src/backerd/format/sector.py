"""The 3.102 sector codec (spec section 6); the contract it shares with 3.101/3.3 is in
`sector_types`, and `sector_codecs.codec_for` picks the codec of a mode.

Layout of an S-byte sector in tape order: C user bytes (randomised, 0x33 filler and the
high length byte for a partial sector), a 4-byte little-endian header (28-bit number,
low length nibble), then the inner RS parity. Codeword b of the I interleaved codewords
holds every I-th byte starting at b, so a sector reshaped to (n, I) has codeword b in
column b: rows [0, k) data d_0.., rows [k, n) parity p_0...
"""

from __future__ import annotations

import numpy as np

from backerd.format import randomiser
from backerd.format.params import FILL, ModeParams
from backerd.format.rs import reserve_spare, rs_code
from backerd.format.rsenc import column_encoder
from backerd.format.sector_types import (
    DecodedSectors,
    SectorKind,
    decode_length,
    encode_length,
    randomise_rows,
    sign_extend,
)

NUMBER_BITS = 28
_NUMBER_MASK = (1 << NUMBER_BITS) - 1


class Sector3102Codec:
    """Batch encoder/decoder of 3.102 sectors for one mode."""

    def __init__(self, params: ModeParams) -> None:
        if params.is_raw:
            raise ValueError(f"mode {params.name} has no sectors")
        self.params = params
        self.rs = rs_code(params.rs_n, params.rs_k)
        self.encoder = column_encoder(params.rs_n, params.rs_k)

    # ---------------------------------------------------------------- encoding
    def encode_sectors(
        self, data: np.ndarray, lengths: np.ndarray, numbers: np.ndarray
    ) -> np.ndarray:
        """Sectors (N, S) in tape order from user bytes (N, C), lengths and numbers."""
        p = self.params
        cap, inter, k = p.capacity, p.interleave, p.rs_k
        data = np.asarray(data, dtype=np.uint8)
        lengths = np.asarray(lengths, dtype=np.int64)
        numbers = np.asarray(numbers, dtype=np.int64)
        rows = data.shape[0]
        if data.shape != (rows, cap) or lengths.shape != (rows,) or numbers.shape != (rows,):
            raise ValueError("encode_sectors: expected data (N, C), lengths (N,), numbers (N,)")
        if rows and (lengths.min() < 0 or lengths.max() > cap):
            raise ValueError(f"sector lengths must be within [0, {cap}]")
        buf = np.empty((rows, p.sector_size), dtype=np.uint8)
        full = lengths == cap
        if full.all():
            if rows:  # copy and randomise in one pass
                np.bitwise_xor(data, randomiser.mask(numbers, cap), out=buf[:, :cap])
            low = np.zeros(rows, dtype=np.int64)
        else:
            buf[:, :cap] = data
            area = buf[:, :cap]
            if full.any():
                sel = np.flatnonzero(full)
                area[sel] ^= randomiser.mask(numbers[sel], cap)
            part = np.flatnonzero(~full)
            sub = area[part]
            randomise_rows(sub, lengths[part], numbers[part])
            # Filler from n to C-1, then the high length byte at C-1.
            fill = np.arange(cap)[None, :] >= lengths[part, None]
            sub[fill] = FILL
            e = encode_length(lengths[part])
            sub[:, cap - 1] = (e >> 4).astype(np.uint8)
            area[part] = sub
            low = np.zeros(rows, dtype=np.int64)
            low[part] = e & 0xF
        header = (numbers & _NUMBER_MASK) | (low << NUMBER_BITS)
        buf[:, cap : cap + 4] = header.astype("<u4").view(np.uint8).reshape(rows, 4)
        # Interleave: data byte j*I + b is symbol j of codeword b; (k, N*I) position-major.
        msgs = buf[:, : p.data_size].reshape(rows, k, inter).transpose(1, 0, 2)
        parity = self.encoder.parity(msgs)  # a view: the encoder gathers each position
        nsym = p.parity_per_codeword
        buf[:, p.data_size :].reshape(rows, nsym, inter)[...] = (
            parity.reshape(nsym, rows, inter).transpose(1, 0, 2)
        )
        return buf

    # ---------------------------------------------------------------- decoding
    def decode_sectors(
        self, sectors: np.ndarray, erasures: np.ndarray | None = None, *, spare: int = 0
    ) -> DecodedSectors:
        """RS-correct and parse sectors (N, S) in tape order (after GCR demodulation).

        ``ok`` is false where a codeword failed or the header is impossible. With
        guessed erasures, ``spare`` parity symbols per codeword stay unused as a check
        (`rs.reserve_spare`).
        """
        p = self.params
        cap, inter, k = p.capacity, p.interleave, p.rs_k
        sectors = np.asarray(sectors, dtype=np.uint8)
        rows = sectors.shape[0]
        if sectors.ndim != 2 or sectors.shape[1] != p.sector_size:
            raise ValueError(f"expected (N, {p.sector_size}) sectors, got {sectors.shape}")
        nsym = p.parity_per_codeword
        count = rows * inter
        # Codewords whose recomputed parity matches are clean (erasure flags or not):
        # only the others go to the decoder, by their syndromes, which the parity
        # difference gives directly (RSCode.parity_syndromes).
        msgs = sectors[:, : p.data_size].reshape(rows, k, inter).transpose(1, 0, 2)
        diff = self.encoder.parity(msgs)  # (nsym, rows * I): the encoder gathers
        received = sectors[:, p.data_size :].reshape(rows, nsym, inter).transpose(1, 0, 2)
        diff ^= received.reshape(nsym, count)
        dirty = np.flatnonzero(diff.any(axis=0))
        cw_ok = np.ones(count, dtype=bool)
        cw_fixed = np.zeros(count, dtype=np.int64)
        area = sectors[:, : p.data_size]  # copied before the first correction
        if dirty.size:
            er = None
            if erasures is not None:
                # Only the dirty codewords' masks, in coefficient order (parity first).
                row, b = np.divmod(dirty, inter)
                grid = np.asarray(erasures, dtype=bool).reshape(rows, p.rs_n, inter)[row, :, b]
                er = np.concatenate([grid[:, p.rs_k :], grid[:, : p.rs_k]], axis=1)
            fixes = self.rs.decode_syndromes(self.rs.parity_syndromes(diff[:, dirty].T), er)
            if spare and er is not None:
                fixes = reserve_spare(fixes, er, nsym, spare)
            cw_ok[dirty] = fixes.ok
            cw_fixed[dirty] = fixes.per_row(dirty.size)
            # Data symbol j of codeword (row, b) is tape byte j*I + b of that row; fixes
            # of failed rows were dropped by the decoder, parity fixes are not needed.
            data_fix = fixes.cols >= nsym
            if data_fix.any():
                row, b = np.divmod(dirty[fixes.rows[data_fix]], inter)
                at = row * p.data_size + (fixes.cols[data_fix] - nsym) * inter + b
                area = area.copy()
                area.reshape(-1)[at] ^= fixes.values[data_fix]
        cw_ok = cw_ok.reshape(rows, inter)
        ok = cw_ok.all(axis=1)
        per_cw = cw_fixed.reshape(rows, inter)
        header = area[:, cap : cap + 4].copy().view("<u4")[:, 0].astype(np.int64)
        number = sign_extend(header, NUMBER_BITS)
        low = header >> NUMBER_BITS
        length = decode_length(area[:, cap - 1], low, cap)
        # A partial length must be below C and reproduce the header's encoding exactly.
        e = encode_length(np.clip(length, 0, cap))
        valid = (low == 0) | ((length < cap) & (length >= 0) & ((e & 0xF) == low))
        ok &= valid
        # The header is the last data symbol of codewords I-4..I-1, the high length
        # byte (offset C-1) one of codeword I-5: with those decoded the sector can be
        # delivered in part (the codewords are strided: byte j is in codeword j % I).
        readable = valid & cw_ok[:, inter - 4 :].all(axis=1) & (
            (low == 0) | cw_ok[:, (cap - 1) % inter])
        length = np.where(readable, length, 0)
        if rows and (length == cap).all():  # copy and de-randomise in one pass
            data = np.bitwise_xor(area[:, :cap], randomiser.mask(number, cap))
        else:
            data = area[:, :cap].copy()
            randomise_rows(data, length, number)
        partial = readable & ~ok
        damaged = None  # (N, C) only when some sector is partial: clean batches pay nothing
        if partial.any():
            damaged = (~cw_ok[:, np.arange(cap) % inter] & partial[:, None]
                       & (np.arange(cap)[None, :] < length[:, None]))
        kind = np.where(
            number < 0, int(SectorKind.BOR),
            np.where(length == 0, int(SectorKind.EOR), int(SectorKind.DATA)),
        )
        return DecodedSectors(
            ok=ok,
            number=np.where(readable, number, 0),
            length=length,
            kind=np.where(readable, kind, int(SectorKind.DATA)),
            data=data,
            corrected=np.where(readable, per_cw.sum(axis=1), 0),
            worst=np.where(readable, per_cw.max(axis=1, initial=0), 0),
            readable=readable,
            damaged=damaged,
        )


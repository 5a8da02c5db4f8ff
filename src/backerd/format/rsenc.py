"""GF(2^8)-linear maps of symbol columns; Reed-Solomon parity as the writer needs it.

Same code as `rs` (spec 6.4: GF(2^8)/0x11D, fcr = 1, parity = data(x) x^2t mod g(x)),
but organised for throughput: parity is linear in the data, so it is the XOR over data
positions j of table_j[d_j]. Looping over the k positions and gathering whole rows of
codewords per position (1-D takes from a 256-entry table of 64-bit words) keeps every
operand contiguous and the tables in L1, several times faster than a per-codeword
gather; for few codewords (one ecc2 group) blocks of positions are gathered at once to
save call overhead. Inputs (k, M) are what interleaved sectors and ecc2 groups give after one
reshape, so no per-codeword transposes are needed either.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from backerd.format.gf import MUL, generator_poly
from backerd.format.rs import _word_dtypes

# Codewords per call from which the per-position loop beats the blocked gather.
_WIDE = 4096
# Table entries gathered per blocked step: a 256 KiB temporary stays in cache.
_BLOCK_ELEMENTS = 1 << 15


class LinearMap:
    """A GF(2^8)-linear map of symbol columns: (k, M) -> (m, M), out = XOR_j in_j * A[j].

    ``coeffs`` (k, m) holds row A[j] for input position j.
    """

    def __init__(self, coeffs: np.ndarray) -> None:
        coeffs = np.asarray(coeffs, dtype=np.uint8)
        k, nsym = coeffs.shape
        self.k, self.nsym = k, nsym
        self.coeffs = coeffs
        image = MUL[np.arange(256)[None, :, None], coeffs[:, None, :]]  # (k, 256, nsym)
        # The image bytes split into 8-byte words and a narrower tail word (10 parity
        # bytes = 8 + 2): the tail's gathers and XORs then move a quarter of the bytes.
        self._words: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        start = 0
        for dt in _word_dtypes(nsym):
            size = dt.itemsize
            chunk = np.zeros((k, 256, size), dtype=np.uint8)
            take = min(size, nsym - start)
            chunk[:, :, :take] = image[:, :, start : start + take]
            per_pos = np.ascontiguousarray(chunk.view(dt)[:, :, 0])  # (k, 256)
            self._words.append((start, size, per_pos, per_pos.reshape(k * 256)))
            start += size
        self._offsets = (np.arange(k, dtype=np.intp) * 256)[:, None]

    def apply(self, data: np.ndarray) -> np.ndarray:
        """(k, M) symbols, one column per codeword -> (m, M) image.

        ``data`` may also be (k, ...) with any trailing shape (e.g. a strided view of
        interleaved sectors): codeword order is the C order of the trailing axes.
        """
        data = np.asarray(data, dtype=np.uint8)
        if data.ndim < 2 or data.shape[0] != self.k:
            raise ValueError(f"expected ({self.k}, M) symbols, got {data.shape}")
        count = math.prod(data.shape[1:])  # np.prod of a tuple costs ~50 us
        accs = [np.zeros(count, dtype=table.dtype) for _, _, table, _ in self._words]
        if count >= _WIDE:
            # Many codewords: one take per (position, word) amortises the call overhead.
            # Each position's symbols are converted to indices once (that conversion also
            # gathers a strided position row, so no transposed copy of the input is made).
            idx = np.empty(data.shape[1:], dtype=np.intp)
            flat_idx = idx.reshape(-1)
            tmps = [np.empty(count, dtype=acc.dtype) for acc in accs]
            for j in range(self.k):
                np.copyto(idx, data[j], casting="unsafe")
                for acc, tmp, (_, _, table, _) in zip(accs, tmps, self._words, strict=True):
                    table[j].take(flat_idx, out=tmp)
                    acc ^= tmp
        else:
            # Few codewords (an ecc2 group): gather blocks of positions at once from the
            # flat per-word tables and XOR-reduce over the block.
            block = max(1, min(self.k, _BLOCK_ELEMENTS // max(count, 1)))
            for j0 in range(0, self.k, block):
                j1 = min(self.k, j0 + block)
                idx = data[j0:j1].reshape(j1 - j0, count).astype(np.intp)
                idx += self._offsets[j0:j1]
                for acc, (_, _, _, flat) in zip(accs, self._words, strict=True):
                    acc ^= np.bitwise_xor.reduce(flat.take(idx), axis=0)
        # Word w of codeword m holds image bytes start..start+size-1 (little-endian).
        out = np.empty((self.nsym, count), dtype=np.uint8)
        for acc, (start, size, _, _) in zip(accs, self._words, strict=True):
            stop = min(self.nsym, start + size)
            out[start:stop] = acc.view(np.uint8).reshape(count, size).T[: stop - start]
        return out


class ColumnEncoder(LinearMap):
    """RS(n, k) parity of M codewords given as data symbols (k, M) -> parity (2t, M)."""

    def __init__(self, n: int, k: int) -> None:
        if not (0 < k < n <= 255):
            raise ValueError(f"invalid Reed-Solomon code ({n}, {k})")
        nsym = n - k
        low_g = np.asarray(generator_poly(nsym), dtype=np.uint8)[:nsym]
        # rem_j = x^(2t+j) mod g(x): the parity of a unit symbol at data position j.
        remainders = np.zeros((k, nsym), dtype=np.uint8)
        rem = low_g.copy()
        for j in range(k):
            remainders[j] = rem
            top = rem[-1]
            rem = np.concatenate([[0], rem[:-1]]).astype(np.uint8) ^ MUL[top, low_g]
        super().__init__(remainders)
        self.n = n

    def parity(self, data: np.ndarray) -> np.ndarray:
        """(k, M) data symbols d_0..d_{k-1} of M codewords -> (2t, M) parity p_0..

        (k, ...) is accepted too, codewords in C order of the trailing axes."""
        return self.apply(data)


@cache
def column_encoder(n: int, k: int) -> ColumnEncoder:
    return ColumnEncoder(n, k)

"""Reed-Solomon parity as the writer needs it: symbol columns (k, M) -> (2t, M).

Same code as `rs` (spec 6.4: GF(2^8)/0x11D, fcr = 1, parity = data(x) x^2t mod g(x)),
but organised for throughput: parity is linear in the data, so it is a `LinearMap`
applied in its column layout: blocks of positions are gathered at once, each over whole
rows of codewords, so every operand is contiguous and a batch takes a few numpy calls,
several times faster than a per-codeword gather. Inputs (k, M) are what interleaved
sectors and ecc2 groups give after one reshape, so no per-codeword transposes are needed
either.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from backerd.format.gf import MUL, generator_poly
from backerd.format.gf_linear import LinearMap


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
        self.n, self.k, self.nsym = n, k, nsym

    def parity(self, data: np.ndarray) -> np.ndarray:
        """(k, M) data symbols d_0..d_{k-1} of M codewords -> (2t, M) parity p_0..

        (k, ...) is accepted too, codewords in C order of the trailing axes."""
        return self.apply_columns(data)


@cache
def column_encoder(n: int, k: int) -> ColumnEncoder:
    return ColumnEncoder(n, k)

"""Systematic shortened Reed-Solomon codes over GF(256), batched over many codewords.

Conventions (spec 6.4): a codeword of RS(n, k) with 2t = n - k parity symbols is the
polynomial c(x) = sum_j p_j x^j + sum_j d_j x^(2t+j). Arrays of codewords are laid out
in coefficient order: column i holds the coefficient of x^i, so columns [0, 2t) are the
parity p_0..p_{2t-1} and columns [2t, n) the data d_0..d_{k-1}. Erasure positions are
column indices in this layout.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from backerd.format.gf import MUL, generator_poly


class RSCode:
    """RS(n, k) with first consecutive root alpha^1; batch encode over rows."""

    def __init__(self, n: int, k: int) -> None:
        if not (0 < k < n <= 255):
            raise ValueError(f"invalid Reed-Solomon code ({n}, {k})")
        self.n, self.k, self.nsym = n, k, n - k
        self.generator = generator_poly(self.nsym)

    def encode(self, data: np.ndarray) -> np.ndarray:
        """Parity (N, 2t) for data rows (N, k) given as d_0..d_{k-1}."""
        data = np.ascontiguousarray(data, dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != self.k:
            raise ValueError(f"expected (N, {self.k}) data, got {data.shape}")
        nsym = self.nsym
        g = self.generator
        reg = np.zeros((data.shape[0], nsym), dtype=np.uint8)
        # LFSR division by g(x), highest-order data symbol first.
        for j in range(self.k - 1, -1, -1):
            fb = data[:, j] ^ reg[:, nsym - 1]
            prod = MUL[fb[:, None], g[None, :nsym]]
            reg[:, 1:] = reg[:, :-1] ^ prod[:, 1:]
            reg[:, 0] = prod[:, 0]
        return reg

    def codewords(self, data: np.ndarray) -> np.ndarray:
        """Full codewords (N, n) in coefficient order: parity then data."""
        data = np.asarray(data, dtype=np.uint8)
        return np.concatenate([self.encode(data), data], axis=1)


@cache
def rs_code(n: int, k: int) -> RSCode:
    return RSCode(n, k)

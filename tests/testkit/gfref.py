"""GF(256) arithmetic bit by bit: an oracle independent of backerd's tables."""

from __future__ import annotations

import numpy as np


def slow_mul(a: int, b: int) -> int:
    """Carry-less multiply reduced by 0x11D, bit by bit (independent of the tables)."""
    r = 0
    while b:
        if b & 1:
            r ^= a
        b >>= 1
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
    return r


def slow_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The GF(256) matrix product a @ b with ``slow_mul``."""
    out = np.zeros((a.shape[0], b.shape[1]), np.uint8)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc = 0
            for t in range(a.shape[1]):
                acc ^= slow_mul(int(a[i, t]), int(b[t, j]))
            out[i, j] = acc
    return out

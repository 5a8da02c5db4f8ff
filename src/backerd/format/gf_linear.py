"""GF(2^8)-linear maps of symbol vectors, applied by table gathers.

Theory of operation: a map y = x A with A a (P, B) matrix over GF(2^8) (P input
symbols, B output bytes) is linear over GF(2) too, so y is the XOR over input positions
j of table_j[x_j], where table_j[v] = v * A[j]. The B output bytes are packed into
as few 64-bit words as possible plus a narrower tail word (10 bytes = 8 + 2), one table
of 256 words per (position, word): every output word then costs one gather and one XOR
per input symbol, with the tables small enough for L1.

Reed-Solomon parity, syndromes, erasure solvers and the EP outer code's checks are all
such maps; `LinearMap` is the one type they use. Its inputs come in the two layouts the
callers have without a transpose:

* rows: (N, P) symbols, one vector per row -> (N, B) (the decoder's codeword rows);
* columns: (P, M...) symbols, one vector per column -> (B, M) (interleaved sectors and
  ecc2 groups after one reshape: position j of every codeword is one contiguous row).
"""

from __future__ import annotations

import math

import numpy as np

from backerd.format.gf import MUL

# Rows per chunk of a row-layout map: keeps index and gather buffers in cache.
_ROW_CHUNK = 1024
# Table entries gathered per blocked step of the column layout (a 2 MiB index block).
# Fewer, larger steps: per 512 KiB write batch three steps instead of one per position
# (measured on the 3.102 sector parity: 1.3 against 1.8 ms alone, 2.0-2.5 against
# 3.6-4.0 ms beside a thread that holds the GIL in 80 us stretches).
_BLOCK_ELEMENTS = 1 << 18


def word_dtypes(nbytes: int) -> list[np.dtype]:
    """Cover nbytes output bytes with as few, then as narrow, integer words as possible."""
    out = []
    left = nbytes
    while left > 0:
        size = 8 if left > 4 else 4 if left > 2 else left
        out.append(np.dtype(f"u{size}"))
        left -= size
    return out


class LinearMap:
    """y = x A over GF(2^8) for a coefficient matrix A (P, B): row j is what a unit
    symbol at input position j contributes to the B output bytes."""

    def __init__(self, coeffs: np.ndarray) -> None:
        coeffs = np.ascontiguousarray(coeffs, dtype=np.uint8)
        npos, nbytes = coeffs.shape
        self.coeffs = coeffs
        self.npos, self.nbytes = npos, nbytes
        image = MUL[np.arange(256)[None, :, None], coeffs[:, None, :]]  # (P, 256, B)
        # (start byte, word dtype, tables (P, 256), the same tables flat (P * 256))
        self.words: list[tuple[int, np.dtype, np.ndarray, np.ndarray]] = []
        start = 0
        for dt in word_dtypes(nbytes):
            chunk = np.zeros((npos, 256, dt.itemsize), dtype=np.uint8)
            take = min(dt.itemsize, nbytes - start)
            chunk[:, :, :take] = image[:, :, start : start + take]
            per_pos = np.ascontiguousarray(chunk.view(dt)[:, :, 0])
            self.words.append((start, dt, per_pos, per_pos.reshape(npos * 256)))
            start += dt.itemsize
        self._padded = start
        self._offsets = np.arange(npos, dtype=np.intp) * 256

    # ------------------------------------------------------------------ rows
    def apply_rows(self, symbols: np.ndarray) -> np.ndarray:
        """(N, P) uint8, one input vector per row -> (N, B) uint8."""
        rows = symbols.shape[0]
        out = np.empty((rows, self._padded), dtype=np.uint8)
        accs = [np.empty(rows, dtype=dt) for _, dt, _, _ in self.words]
        idx = np.empty((_ROW_CHUNK, self.npos), dtype=np.intp)
        gathered = {dt: np.empty((_ROW_CHUNK, self.npos), dtype=dt) for _, dt, _, _ in self.words}
        for lo in range(0, rows, _ROW_CHUNK):
            hi = min(rows, lo + _ROW_CHUNK)
            m = hi - lo
            np.add(symbols[lo:hi], self._offsets, out=idx[:m], casting="unsafe")
            for acc, (_, dt, _, flat) in zip(accs, self.words, strict=True):
                g = gathered[dt][:m]
                np.take(flat, idx[:m], out=g, mode="clip")
                np.bitwise_xor.reduce(g, axis=1, out=acc[lo:hi])
        for acc, (start, dt, _, _) in zip(accs, self.words, strict=True):
            out[:, start : start + dt.itemsize] = acc.view(np.uint8).reshape(rows, dt.itemsize)
        return out[:, : self.nbytes]

    def pack(self, images: np.ndarray) -> list[np.ndarray]:
        """(N, B) image bytes -> the per-word arrays (N,) this map's tables produce."""
        rows = images.shape[0]
        buf = np.zeros((rows, self._padded), dtype=np.uint8)
        buf[:, : self.nbytes] = images
        return [
            np.ascontiguousarray(buf[:, start : start + dt.itemsize]).view(dt).reshape(rows)
            for start, dt, _, _ in self.words
        ]

    def sum_segments(
        self, positions: np.ndarray, symbols: np.ndarray, starts: np.ndarray
    ) -> list[np.ndarray]:
        """Images of sparse inputs, packed as :meth:`pack` gives them: segment i holds
        the (position, symbol) pairs [starts[i], starts[i+1]) of one input vector."""
        idx = positions * 256 + symbols
        return [np.bitwise_xor.reduceat(flat.take(idx), starts) for _, _, _, flat in self.words]

    # ------------------------------------------------------------------ columns
    def apply_columns(self, data: np.ndarray) -> np.ndarray:
        """(P, M) symbols, one input vector per column -> (B, M) image.

        ``data`` may also be (P, ...) with any trailing shape (e.g. a strided view of
        interleaved sectors): vector order is the C order of the trailing axes.
        """
        data = np.asarray(data, dtype=np.uint8)
        if data.ndim < 2 or data.shape[0] != self.npos:
            raise ValueError(f"expected ({self.npos}, M) symbols, got {data.shape}")
        count = math.prod(data.shape[1:])  # np.prod of a tuple costs ~50 us
        accs = [np.zeros(count, dtype=dt) for _, dt, _, _ in self.words]
        # Blocks of positions, gathered at once from the flat per-word tables and
        # XOR-reduced over the block: a few numpy calls per block (each one may hand
        # the GIL to another thread and wait to take it back), the blocks split evenly.
        blocks = max(1, -(-self.npos * count // _BLOCK_ELEMENTS))
        step = -(-self.npos // blocks)
        for j0 in range(0, self.npos, step):
            j1 = min(self.npos, j0 + step)
            idx = data[j0:j1].reshape(j1 - j0, count).astype(np.intp)
            idx += self._offsets[j0:j1, None]
            for acc, (_, _, _, flat) in zip(accs, self.words, strict=True):
                acc ^= np.bitwise_xor.reduce(flat.take(idx), axis=0)
        # Word w of vector m holds image bytes start..start+size-1 (little-endian).
        out = np.empty((self.nbytes, count), dtype=np.uint8)
        for acc, (start, dt, _, _) in zip(accs, self.words, strict=True):
            stop = min(self.nbytes, start + dt.itemsize)
            out[start:stop] = acc.view(np.uint8).reshape(count, dt.itemsize).T[: stop - start]
        return out

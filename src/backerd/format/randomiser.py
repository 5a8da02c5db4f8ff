"""Sector randomiser (spec 6.3) and the 3.3 whole-area variant (spec 11.2).

The key stream is a full-period LCG mod 2^32 seeded with the sector number, passed
through a 4-entry Bays-Durham-style shuffle. The k-th LCG output is affine in the seed
(x_k = A_k s + B_k mod 2^32), so all outputs of all sectors come from one broadcast
multiply-add; the shuffle then walks the words once, each step a gather and a scatter
over every sector of the batch (the slot array holds 4 entries per sector)."""

from __future__ import annotations

from functools import cache

import numpy as np

_A = 1664525
_C = 1013904223
_M = 1 << 32
# Sectors per batch: bounds the (rows, words) temporaries to a few MiB.
_ROWS = 8192
# Up to this many sectors the loop-free shuffle beats the per-word loop's call overhead.
_FEW = 16


@cache
def _affine(count: int) -> tuple[np.ndarray, np.ndarray]:
    """(A_k, B_k) for k = 1..count with next()^k(s) = A_k s + B_k mod 2^32."""
    mul = np.empty(count, dtype=np.uint32)
    add = np.empty(count, dtype=np.uint32)
    a, b = 1, 0
    for k in range(count):
        a, b = (_A * a) % _M, (_A * b + _C) % _M
        mul[k], add[k] = a, b
    return mul, add


def lcg_outputs(seeds: np.ndarray, count: int) -> np.ndarray:
    """(N, count) uint32: the first ``count`` outputs of next() for every seed."""
    return _outputs_by_step(seeds, count).T


def _outputs_by_step(seeds: np.ndarray, count: int) -> np.ndarray:
    """(count, N) uint32: output k of every seed in row k (the layout the shuffle walks)."""
    mul, add = _affine(count)
    s = (np.asarray(seeds, dtype=np.int64) & 0xFFFFFFFF).astype(np.uint32)
    return mul[:, None] * s[None, :] + add[:, None]


def _shuffle(stream: np.ndarray, initial: int, first_step: int) -> np.ndarray:
    """Words (L - first_step, N) emitted by the shuffle for steps first_step..L-1.

    ``stream`` (L, N) holds every generator output in order. Outputs [0, 4) fill the
    slots (ascending if ``initial`` is 0, descending if 3), outputs [4, first_step) are
    stored in slot r >> 30 without emitting, and every later output emits the slot
    r >> 30 and then replaces it. Vectorised across sectors; the loop runs over words.
    """
    length, rows = stream.shape
    ar = np.arange(rows, dtype=np.intp)
    # Flat slot index of every output: slot * rows + sector.
    slot = (stream >> 30).astype(np.intp)
    slot *= rows
    slot += ar  # one pass each over (L, N) intp: cheaper than a per-step add
    slots = np.empty(4 * rows, dtype=np.uint32)
    for i in range(4):
        v = abs(initial - i)
        slots[v * rows : (v + 1) * rows] = stream[i]
    for p in range(4, first_step):
        slots[slot[p]] = stream[p]
    out = np.empty((length - first_step, rows), dtype=np.uint32)
    for p in range(first_step, length):
        idx = slot[p]
        slots.take(idx, out=out[p - first_step])
        slots[idx] = stream[p]
    return out


def _shuffle_few(stream: np.ndarray, initial: int, first_step: int) -> np.ndarray:
    """`_shuffle` for a handful of sectors, without a Python loop over the words.

    A step at position p emits the value of the last position q < p stored in the same
    slot: per slot, a running maximum of "positions stored in this slot" finds q for
    every step at once.
    """
    length, rows = stream.shape
    tags = (stream >> 30).astype(np.int8)
    for i in range(4):
        tags[i] = abs(initial - i)
    pos = np.arange(length, dtype=np.int32)[:, None]
    src = np.empty((length - first_step, rows), dtype=np.int32)
    for v in range(4):
        marks = np.where(tags == v, pos, -1).astype(np.int32)
        last = np.maximum.accumulate(marks, axis=0)  # last position <= p in slot v
        mine = tags[first_step:] == v
        src[mine] = last[first_step - 1 : -1][mine]
    return np.take_along_axis(stream, src.astype(np.intp), axis=0)


def _words_to_bytes(words: np.ndarray) -> np.ndarray:
    """(W, N) words, last word first -> (N, 4W) little-endian bytes, first word first."""
    rows = words.shape[1]
    return np.ascontiguousarray(words[::-1].T, dtype="<u4").view(np.uint8).reshape(rows, -1)


def mask(numbers: np.ndarray, n: int) -> np.ndarray:
    """(N, n) uint8 XOR mask of the 3.102 randomiser for n data bytes per sector.

    Sector i is keyed by numbers[i] taken as an unsigned 32-bit value; all sectors share
    the byte count n (the key stream depends on it: it runs from the last word down).
    """
    numbers = np.atleast_1d(np.asarray(numbers, dtype=np.int64))
    rows = numbers.shape[0]
    if n <= 0:
        return np.zeros((rows, 0), dtype=np.uint8)
    nwords = (n + 3) // 4
    if rows <= _ROWS:  # one batch: its byte view is the mask, no further copy
        stream = _outputs_by_step(numbers, 4 + nwords)
        shuffle = _shuffle if rows > _FEW else _shuffle_few
        return _words_to_bytes(shuffle(stream, 3, 4))[:, :n]
    out = np.empty((rows, 4 * nwords), dtype=np.uint8)
    for start in range(0, rows, _ROWS):
        stop = min(rows, start + _ROWS)
        stream = _outputs_by_step(numbers[start:stop], 4 + nwords)
        # Step k masks word nwords-1-k: the first key word goes to the last data word.
        shuffle = _shuffle if stop - start > _FEW else _shuffle_few
        out[start:stop] = _words_to_bytes(shuffle(stream, 3, 4))
    return out[:, :n]


def mask_33(numbers: np.ndarray, capacity: int) -> np.ndarray:
    """(N, capacity) uint8 XOR mask of the 3.3 whole-area randomiser (spec 11.2).

    Slots are filled ascending, one extra output is stored in slot r >> 30, then words
    floor((C-1)/4) down to 1 are masked; word 0 (bytes 0-3) is never randomised.
    """
    numbers = np.atleast_1d(np.asarray(numbers, dtype=np.int64))
    rows = numbers.shape[0]
    nwords = (capacity + 3) // 4
    out = np.zeros((rows, 4 * nwords), dtype=np.uint8)
    steps = nwords - 1
    if steps <= 0:
        return out[:, :capacity]
    for start in range(0, rows, _ROWS):
        stop = min(rows, start + _ROWS)
        stream = _outputs_by_step(numbers[start:stop], 5 + steps)
        shuffle = _shuffle if stop - start > _FEW else _shuffle_few
        out[start:stop, 4:] = _words_to_bytes(shuffle(stream, 0, 5))
    return out[:, :capacity]

"""Sector randomiser (spec 6.3) and the 3.3 whole-area variant (spec 11.2).

The key stream is a full-period LCG mod 2^32 seeded with the sector number, passed
through a 4-entry Bays-Durham-style shuffle. Both parts are computed without a loop over
words: the k-th LCG output is affine in the seed (x_k = A_k s + B_k mod 2^32), and the
shuffle emits, at each step, the most recent earlier output stored in the same slot, i.e.
the last earlier position whose slot tag equals the current tag. A running maximum of
"last position with tag v" per tag finds those positions for all sectors at once.
"""

from __future__ import annotations

from functools import cache

import numpy as np

_A = 1664525
_C = 1013904223
_M = 1 << 32
# Sectors per batch: bounds the (rows, words) temporaries to a few MiB.
_ROWS = 2048


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
    mul, add = _affine(count)
    s = (np.asarray(seeds, dtype=np.int64) & 0xFFFFFFFF).astype(np.uint32)
    return s[:, None] * mul[None, :] + add[None, :]


def _shuffle(stream: np.ndarray, tags: np.ndarray, first_step: int) -> np.ndarray:
    """Words emitted by the shuffle for steps at positions [first_step, L).

    ``stream`` (N, L) holds every generator output in order, ``tags`` (N, L) the slot it
    is stored into. A step at position p emits the value of the last position q < p with
    tags[q] == tags[p], then stores its own value (so it is that slot's new content).
    """
    rows, length = stream.shape
    pos = np.arange(length, dtype=np.int32)
    last = np.empty((4, rows, length), dtype=np.int32)
    for v in range(4):
        marks = np.where(tags == v, pos[None, :], -1).astype(np.int32)
        # Exclusive running max: the last position strictly before p with tag v.
        last[v, :, 0] = -1
        np.maximum.accumulate(marks[:, :-1], axis=1, out=last[v, :, 1:])
    step_tags = tags[:, first_step:]
    src = np.take_along_axis(
        last[:, :, first_step:], step_tags[None, :, :].astype(np.intp), axis=0
    )[0]
    return np.take_along_axis(stream, src.astype(np.intp), axis=1)


def _words_to_bytes(words: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(words, dtype="<u4").view(np.uint8).reshape(words.shape[0], -1)


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
    out = np.empty((rows, 4 * nwords), dtype=np.uint8)
    init_tags = np.array([3, 2, 1, 0], dtype=np.uint32)
    for start in range(0, rows, _ROWS):
        stop = min(rows, start + _ROWS)
        stream = lcg_outputs(numbers[start:stop], 4 + nwords)
        tags = np.empty_like(stream)
        tags[:, :4] = init_tags
        tags[:, 4:] = stream[:, 4:] >> 30
        words = _shuffle(stream, tags, 4)  # step k masks word nwords-1-k
        out[start:stop] = _words_to_bytes(words[:, ::-1])
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
    init_tags = np.array([0, 1, 2, 3], dtype=np.uint32)
    for start in range(0, rows, _ROWS):
        stop = min(rows, start + _ROWS)
        stream = lcg_outputs(numbers[start:stop], 5 + steps)
        tags = np.empty_like(stream)
        tags[:, :4] = init_tags
        tags[:, 4:] = stream[:, 4:] >> 30
        words = _shuffle(stream, tags, 5)  # step k masks word nwords-1-k
        out[start:stop, 4:] = _words_to_bytes(words[:, ::-1])
    return out[:, :capacity]

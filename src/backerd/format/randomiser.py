"""Sector randomiser (spec 6.3) and the 3.3 whole-area variant (spec 11.2).

The key stream is a full-period LCG mod 2^32 seeded with the sector number, passed
through a 4-entry Bays-Durham-style shuffle. The k-th LCG output is affine in the seed
(x_k = A_k s + B_k mod 2^32), so all outputs of all sectors come from one broadcast
multiply-add. The shuffle emits at each step the value last stored in the slot the
step's output selects, so the word a step emits is the output of the previous position
that selected the same slot. Up to a few hundred sectors (a write batch) the shuffle
sorts each sector's positions by (slot, position), which puts every position right
after that previous one: a handful of whole-batch numpy calls, which leave the GIL to
other threads while they run (a loop over the words would hold it: its calls are too
small to release it). Larger batches walk the words once instead, each step a gather
and a scatter over every sector of the batch (the slot array holds 4 entries per
sector): there the call overhead is spread over more sectors and the walk is cheaper."""

from __future__ import annotations

from functools import cache

import numpy as np

_A = 1664525
_C = 1013904223
_M = 1 << 32
# Sectors per batch: bounds the (rows, words) temporaries to a few MiB.
_ROWS = 8192
# Up to this many sectors a batch is shuffled by sorting (`_shuffle_sorted`), beyond
# by the per-word loop (`_shuffle`), whose call overhead is then spread over more sectors.
_SORTED = 256


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
    out = np.multiply.outer(s, mul)
    out += add
    return out


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


def _shuffle_sorted(stream: np.ndarray, initial: int, first_step: int) -> np.ndarray:
    """`_shuffle` of ``stream`` (N, L), one sector per row, without a loop over the
    words: (N, L - first_step) words emitted, last step first (the order of the bytes).

    A step emits the output of the last earlier position stored in the same slot.
    Sorting each sector's positions by (slot, position) puts every position right after
    that one; the first position of each slot is one of the four fills, never emitted.
    """
    rows, length = stream.shape
    bits = (length - 1).bit_length()
    key = stream >> np.uint32(30)
    key[:, :4] = [abs(initial - i) for i in range(4)]
    key <<= np.uint32(bits)
    key |= np.arange(length, dtype=np.uint32)
    key.sort(axis=1)
    key &= np.uint32((1 << bits) - 1)
    at = key.astype(np.intp)  # flat positions, in (slot, position) order
    at += (np.arange(rows, dtype=np.intp) * length)[:, None]
    emitted = np.empty(rows * length, dtype=np.uint32)
    emitted[at[:, 1:]] = stream.reshape(-1).take(at[:, :-1])
    return emitted.reshape(rows, length)[:, : first_step - 1 : -1]


def _key_bytes(numbers: np.ndarray, length: int, initial: int, first_step: int) -> np.ndarray:
    """(N, 4 (length - first_step)) bytes: the words the shuffle emits for each sector,
    the last one first (step k masks word length-1-k: the first key word goes to the
    last data word)."""
    if numbers.shape[0] > _SORTED:
        return _words_to_bytes(_shuffle(_outputs_by_step(numbers, length), initial, first_step))
    words = _shuffle_sorted(lcg_outputs(numbers, length), initial, first_step)
    return np.ascontiguousarray(words, dtype="<u4").view(np.uint8)


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
        return _key_bytes(numbers, 4 + nwords, 3, 4)[:, :n]
    out = np.empty((rows, 4 * nwords), dtype=np.uint8)
    for start in range(0, rows, _ROWS):
        stop = min(rows, start + _ROWS)
        out[start:stop] = _key_bytes(numbers[start:stop], 4 + nwords, 3, 4)
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
        out[start:stop, 4:] = _key_bytes(numbers[start:stop], 5 + steps, 0, 5)
    return out[:, :capacity]

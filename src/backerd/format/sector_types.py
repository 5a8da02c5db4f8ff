"""What every sector codec shares: the sector kinds, the decode result, the codec
contract, and the header arithmetic of spec 6.2 that 3.102, 3.101 and 3.3 have in common.

Theory of operation: the 3.102 codec (`sector`) and the 3.101/3.3 codec
(`legacy_sector`) differ in byte placement, header words and randomising, but both turn
(N, S) sectors in tape order into a `DecodedSectors` batch and back. They import this
module and nothing of each other; `sector_codecs.codec_for` is the one place that picks
a codec for a mode, so no caller compares format strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol, runtime_checkable

import numpy as np

from backerd.format import randomiser
from backerd.format.params import ModeParams


class SectorKind(IntEnum):
    BOR = 0
    DATA = 1
    EOR = 2


@dataclass(frozen=True)
class DecodedSectors:
    """Per-sector outcome of a batch decode (rows of failed sectors are zeroed)."""

    ok: np.ndarray  # (N,) bool
    number: np.ndarray  # (N,) int64, sign-extended
    length: np.ndarray  # (N,) int64, user bytes
    kind: np.ndarray  # (N,) int64, SectorKind values
    data: np.ndarray  # (N, C) uint8, de-randomised, valid for [0, length)
    corrected: np.ndarray  # (N,) int64, symbols fixed
    worst: np.ndarray  # (N,) int64, most symbols fixed in one codeword
    # Partial sectors: the header (number, length) decoded though maybe not every data
    # codeword, and which user bytes (N, C) of the sectors with readable & ~ok lie in
    # codewords that failed (None: no such sector in the batch, or the codec does not
    # say).
    readable: np.ndarray | None = None  # (N,) bool
    damaged: np.ndarray | None = None  # (N, C) bool


@runtime_checkable
class SectorCodec(Protocol):
    """Batch encoder/decoder of the sectors of one mode of one format release."""

    params: ModeParams

    def encode_sectors(
        self, data: np.ndarray, lengths: np.ndarray, numbers: np.ndarray
    ) -> np.ndarray: ...

    def decode_sectors(
        self, sectors: np.ndarray, erasures: np.ndarray | None = None, *, spare: int = 0
    ) -> DecodedSectors: ...


def encode_length(n: np.ndarray) -> np.ndarray:
    """Spec 6.2: e = n + floor(n/15) + 1 (partial sectors only)."""
    n = np.asarray(n, dtype=np.int64)
    return n + n // 15 + 1


def decode_length(high: np.ndarray, low: np.ndarray, capacity: int) -> np.ndarray:
    """Spec 6.2: low = 0 means a full sector, else n = 15*high + low - 1."""
    high = np.asarray(high, dtype=np.int64)
    low = np.asarray(low, dtype=np.int64)
    return np.where(low == 0, capacity, 15 * high + low - 1)


def sign_extend(values: np.ndarray, bits: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.int64) & ((1 << bits) - 1)
    return values - ((values >> (bits - 1)) << bits)


def randomise_rows(data: np.ndarray, lengths: np.ndarray, numbers: np.ndarray) -> None:
    """XOR bytes [0, length) of each row with its key stream, in place (self-inverse)."""
    lengths = np.asarray(lengths)
    for n in np.unique(lengths):
        n = int(n)
        if n <= 0:
            continue
        same = lengths == n
        if same.all():
            data[:, :n] ^= randomiser.mask(numbers, n)
        else:
            sel = np.flatnonzero(same)
            data[sel, :n] ^= randomiser.mask(numbers[sel], n)

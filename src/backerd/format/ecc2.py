"""EP outer code "ecc2" (spec section 7): RS(255, 235) across the 255 sectors of a group.

A group is 255 sectors' worth of capacity C. Sectors 0..234 carry the data area
(user bytes, 0x33 fill, little-endian length at Cg = 235C - 4), sectors 235..254 the
parity. Codeword b takes byte b of every sector: data sector j is the coefficient of
x^(20+j), parity sector 235+i that of x^i. Lost sectors are erasures at those positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np

from backerd.format.gf import EXP, MUL, matrix_inverse
from backerd.format.gf_linear import LinearMap
from backerd.format.params import (
    FILL,
    GROUP_DATA_SECTORS,
    GROUP_PARITY_SECTORS,
    GROUP_SECTORS,
    group_capacity,
)
from backerd.format.rs import rs_code
from backerd.format.rsenc import column_encoder

_CODE = (GROUP_SECTORS, GROUP_DATA_SECTORS)
CHECK_BYTES = 8  # parity symbols recomputed to find the codewords needing a decode



def encode_group(data: bytes | np.ndarray, capacity: int) -> np.ndarray:
    """The 255 full sectors (255, C) of one group holding ``data`` (at most Cg bytes)."""
    user = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes | bytearray) else (
        np.asarray(data, dtype=np.uint8).reshape(-1)
    )
    cg = group_capacity(capacity)
    if user.size > cg:
        raise ValueError(f"a group holds at most {cg} bytes, got {user.size}")
    group = np.empty((GROUP_SECTORS, capacity), dtype=np.uint8)
    area = group[:GROUP_DATA_SECTORS].reshape(-1)
    area[: user.size] = user
    area[user.size : cg] = FILL
    area[cg:] = np.frombuffer(np.uint32(user.size).astype("<u4").tobytes(), np.uint8)
    # Codeword b = column b of the (235, C) data sectors; parity goes to rows 235..254.
    group[GROUP_DATA_SECTORS:] = column_encoder(*_CODE).parity(group[:GROUP_DATA_SECTORS])
    return group


@dataclass(frozen=True)
class GroupResult:
    """What one group yields: the user bytes (lost ranges hold their received values)."""

    data: bytes  # `length` user bytes
    length: int  # user bytes of the group (from its length field, Cg if unreadable)
    ok: bool  # every user byte (and the length) recovered
    lost: list[tuple[int, int]] = field(default_factory=list)  # (offset, length) ranges
    corrected: int = 0  # symbols changed by the outer code
    failed_codewords: int = 0


def _to_codewords(sectors: np.ndarray) -> np.ndarray:
    """(255, M) group columns in sector order -> (M, 255) codewords, coefficient order."""
    return np.ascontiguousarray(
        np.concatenate([sectors[GROUP_DATA_SECTORS:], sectors[:GROUP_DATA_SECTORS]], axis=0).T
    )


def _positions(lost: np.ndarray) -> np.ndarray:
    """Sector-indexed flags -> codeword-position flags (parity first)."""
    return np.concatenate([lost[GROUP_DATA_SECTORS:], lost[:GROUP_DATA_SECTORS]])


def decode_group(sectors: np.ndarray, lost: np.ndarray, *,
                 index_positions: bool = False) -> GroupResult:
    """Recover one group from its 255 sectors (C bytes each; lost rows may hold anything).

    Positions that one codeword reveals as wrong (a sector the inner code passed but that
    was in error) are suspect in every codeword, so they are added as erasures and the
    codewords that failed are decoded again, while that helps. Received bytes of sectors
    the inner code passed are kept where their codeword fails.

    `index_positions` reproduces the original decoders' mistake (spec 17.3) for
    comparisons: lost sector j is erased at codeword position j instead of its own.
    """
    sectors = np.asarray(sectors, dtype=np.uint8)
    lost = np.asarray(lost, dtype=bool)
    if sectors.ndim != 2 or sectors.shape[0] != GROUP_SECTORS or lost.shape != (GROUP_SECTORS,):
        raise ValueError("decode_group expects sectors (255, C) and lost (255,)")
    capacity = sectors.shape[1]
    code = rs_code(*_CODE)
    known_bad = lost.copy() if index_positions else _positions(lost)
    n_lost = int(lost.sum())
    direct = 0 < n_lost <= GROUP_PARITY_SECTORS and not index_positions
    if direct:
        dirty = np.arange(capacity)  # the erasure solver below also spots clean columns
    else:
        # Codewords whose recomputed parity matches are clean: no decode needed. The
        # first CHECK_BYTES parity symbols suffice (see _check_map).
        check = _check_map().apply_columns(sectors[:GROUP_DATA_SECTORS])
        received = sectors[GROUP_DATA_SECTORS : GROUP_DATA_SECTORS + CHECK_BYTES]
        dirty = np.flatnonzero((check != received).any(axis=0))
    ok = np.ones(capacity, dtype=bool)
    data_sectors = sectors[:GROUP_DATA_SECTORS]
    if dirty.size:
        data_sectors = data_sectors.copy()  # corrections go here
    changed_total = 0
    if direct:
        # Erasures only: solve for the lost symbols directly; what does not check out
        # (further errors) goes to the general decoder below.
        erased = np.flatnonzero(lost)
        work = sectors[:, dirty].copy()
        work[erased] = 0
        values, consistent = _fill_erasures(_syndrome_map().apply_columns(work), erased)
        cols = dirty[consistent]
        if cols.size:
            filled = values[:, consistent]
            changed_total += int((filled != sectors[erased][:, cols]).sum())
            data_rows = erased < GROUP_DATA_SECTORS
            data_sectors[np.ix_(erased[data_rows], cols)] = filled[data_rows]
        dirty = dirty[~consistent]
    if dirty.size:
        cw = _to_codewords(sectors[:, dirty])
        result = code.decode(cw, np.broadcast_to(known_bad, cw.shape) if lost.any() else None)
        ok[dirty] = result.ok
        good = np.flatnonzero(result.ok)
        corrected = result.corrected
        changed_total += int(result.n_corrected[good].sum())
        suspect = known_bad.copy()
        while not ok[dirty].all():
            revealed = _revealed(result, suspect) & ~suspect
            if not revealed.any():
                break
            suspect |= revealed
            if suspect.sum() > GROUP_PARITY_SECTORS:
                break
            retry = np.flatnonzero(~ok[dirty])
            result = code.decode(
                cw[retry], np.broadcast_to(suspect, (retry.size, GROUP_SECTORS))
            )
            won = retry[result.ok]
            corrected[won] = result.corrected[result.ok]
            ok[dirty[won]] = True
            changed_total += int(result.n_corrected[result.ok].sum())
            if not result.ok.any():
                break
        done = ok[dirty]
        if done.any():
            # Corrected codewords back into sector order (data positions 20..254).
            data_sectors[:, dirty[done]] = corrected[done][:, GROUP_PARITY_SECTORS:].T
    # Byte o of the data area is sector o // C, codeword o % C.
    data_area = data_sectors.reshape(-1)
    cg = group_capacity(capacity)
    # The length field is in data sector 234: as received if the inner code passed it.
    length_ok = bool(ok[capacity - 4 :].all()) or not lost[GROUP_DATA_SECTORS - 1]
    length = int(data_area[cg : cg + 4].view("<u4")[0]) if length_ok else cg
    if length > cg:  # an impossible length field: treat it as unreadable
        length, length_ok = cg, False
    lost_ranges = _lost_ranges(lost, ~ok, capacity, length)
    return GroupResult(
        data=data_area[:length].tobytes(),
        length=length,
        ok=length_ok and not lost_ranges,
        lost=lost_ranges,
        corrected=changed_total,
        failed_codewords=int((~ok).sum()),
    )


# Coefficient position of each sector of a group: data j -> 20 + j, parity 235 + i -> i.
_SECTOR_POSITION = np.concatenate(
    [np.arange(GROUP_PARITY_SECTORS, GROUP_SECTORS), np.arange(GROUP_PARITY_SECTORS)]
)


@cache
def _check_map() -> LinearMap:
    """Data sectors (235, M) -> parity symbols p_0..p_7 (8, M) of each codeword.

    A received word whose data re-encodes to its first 8 parity symbols differs from a
    codeword c_e only where c_e's data is wrong and in p_8..p_19; as c_e has weight
    >= 21 unless its data is right, that takes at least 9 wrong symbols (a random
    pattern passes with probability 2^-64), whereas every pattern of up to 8 symbols,
    e.g. stale sectors of an overwritten recording, is caught. One 64-bit table word
    per symbol instead of three.
    """
    return LinearMap(column_encoder(*_CODE).coeffs[:, :CHECK_BYTES])


@cache
def _syndrome_map() -> LinearMap:
    """Group columns in sector order (255, M) -> syndromes S_1..S_20 (20, M)."""
    powers = np.arange(1, GROUP_PARITY_SECTORS + 1)
    return LinearMap(EXP[(_SECTOR_POSITION[:, None] * powers[None, :]) % 255])


def _fill_erasures(synd: np.ndarray, erased: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values of the erased sectors' symbols (e, M) from syndromes (20, M) of columns
    whose erased symbols were zeroed, and which columns that explains completely.

    sum_t v_t X_t^s = S_s for s = 1..e is a Vandermonde system; the syndromes s > e then
    check that no other symbol is in error.
    """
    count = erased.size
    pos = _SECTOR_POSITION[erased]
    powers = np.arange(1, GROUP_PARITY_SECTORS + 1)
    x_pow = EXP[(powers[:, None] * pos[None, :]) % 255]  # (20, e): X_t^s
    inverse = matrix_inverse(x_pow[:count])
    values = np.zeros((count, synd.shape[1]), dtype=np.uint8)
    for r in range(count):
        for t in range(count):
            if inverse[r, t]:
                values[r] ^= MUL[inverse[r, t]].take(synd[t])
    consistent = np.ones(synd.shape[1], dtype=bool)
    for s in range(count, GROUP_PARITY_SECTORS):
        check = synd[s].copy()
        for t in range(count):
            check ^= MUL[x_pow[s, t]].take(values[t])
        consistent &= check == 0
    return values, consistent


def _revealed(result, erased: np.ndarray) -> np.ndarray:
    """Positions that reliably corrected codewords found in error outside ``erased``.

    Only codewords that kept a margin of 2 parity symbols count: a decode that used
    (nearly) all 20 is too often a miscorrection to point at a sector.
    """
    errors = result.changed & ~erased[None, :]
    n_err = errors.sum(axis=1)
    reliable = result.ok & (2 * n_err + int(erased.sum()) <= GROUP_PARITY_SECTORS - 2)
    return errors[reliable].any(axis=0)


def _lost_ranges(
    lost_sectors: np.ndarray, failed: np.ndarray, capacity: int, length: int
) -> list[tuple[int, int]]:
    """User byte ranges (offset, length) in lost data sectors and failed codewords.

    Bytes of sectors the inner code accepted are taken as received even where their
    codeword failed: the inner decoder verified them.
    """
    bad = np.zeros((GROUP_DATA_SECTORS, capacity), dtype=bool)
    bad[lost_sectors[:GROUP_DATA_SECTORS]] = failed[None, :]
    flat = bad.reshape(-1)[:length]
    if not flat.any():
        return []
    edges = np.diff(np.concatenate([[0], flat.view(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return [(int(a), int(b - a)) for a, b in zip(starts, stops, strict=True)]

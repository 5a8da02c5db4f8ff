"""Field assembly (spec section 4 for 3.102, 11.1 for the key-last layout of 3.101/3.3).

A field is L leader bytes (0xE2), A active bytes (K key bytes spread at a fixed interval,
the payload in between) and T trailer bytes (0x33), plus `interlace` more trailer bytes
on odd fields (field 0 of a recording is odd). Everything but the payload is constant,
so fields are written through two strided views of the output (odd and even fields
each sit a frame apart): the template first, then the payload in its contiguous runs
between key bytes.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from backerd.format.params import FILL, LEADER_FILL, ModeParams


@cache
def key_positions(params: ModeParams) -> np.ndarray:
    """Active-region offsets of the K key bytes."""
    ki, klen = params.key_interval, params.key_length
    first = 0 if params.key_first else ki - 1
    return np.arange(klen, dtype=np.intp) * ki + first


@cache
def payload_positions(params: ModeParams) -> np.ndarray:
    """Active-region offsets of the Pay payload bytes, in payload order."""
    keep = np.ones(params.active, dtype=bool)
    keep[key_positions(params)] = False
    pos = np.flatnonzero(keep)
    if pos.size != params.payload:
        raise AssertionError(f"payload layout of {params.format} {params.name} is inconsistent")
    return pos


@cache
def _template(params: ModeParams) -> np.ndarray:
    """An odd field (field_size + interlace bytes) with the key bytes in place."""
    g = params.geometry
    field = np.full(g.field_size + g.interlace, FILL, dtype=np.uint8)
    field[: params.leader] = LEADER_FILL
    active = field[params.leader : params.leader + params.active]
    active[key_positions(params)] = np.frombuffer(params.key, dtype=np.uint8)
    return field


@cache
def _runs(params: ModeParams) -> tuple[tuple[int, int, int], ...]:
    """Contiguous payload runs as (field offset, payload offset, length)."""
    pos = payload_positions(params)
    breaks = np.flatnonzero(np.diff(pos) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [pos.size]])
    return tuple(
        (params.leader + int(pos[a]), int(a), int(b - a))
        for a, b in zip(starts, stops, strict=True)
    )


def assemble_fields(params: ModeParams, payloads: np.ndarray, first_index: int) -> bytes:
    """Raw bytes of consecutive fields first_index, first_index+1, ... of a recording.

    ``payloads`` is (N, Pay): a sector (SP) or its GCR modulation (EP) per field.
    """
    payloads = np.asarray(payloads, dtype=np.uint8)
    rows = payloads.shape[0]
    if payloads.ndim != 2 or payloads.shape[1] != params.payload:
        raise ValueError(f"expected (N, {params.payload}) payloads, got {payloads.shape}")
    if rows == 0:
        return b""
    g = params.geometry
    template = _template(params)
    odd_len, even_len = g.field_size + g.interlace, g.field_size
    # Fields of one parity sit a frame apart: fill each parity through a strided view.
    first_odd = first_index % 2 == 0
    n_first = (rows + 1) // 2
    n_second = rows // 2
    first_len, second_len = (odd_len, even_len) if first_odd else (even_len, odd_len)
    out = np.empty(n_first * first_len + n_second * second_len, dtype=np.uint8)
    frame_size = first_len + second_len
    for skip, count, length, offset in (
        (0, n_first, first_len, 0), (1, n_second, second_len, first_len)
    ):
        if not count:
            continue
        view = np.ndarray((count, length), np.uint8, buffer=out, offset=offset,
                          strides=(frame_size, 1))
        view[:] = template[:length]
        pay = payloads[skip::2]
        for field_at, pay_at, size in _runs(params):
            view[:, field_at : field_at + size] = pay[:, pay_at : pay_at + size]
    return out.tobytes()


def pad_payloads(params: ModeParams, count: int) -> np.ndarray:
    """Payloads of pad fields: Pay bytes of 0x33, neither modulated nor a sector."""
    return np.full((count, params.payload), FILL, dtype=np.uint8)


def extract_payload(params: ModeParams, active: np.ndarray) -> np.ndarray:
    """(N, A) active regions -> (N, Pay) payloads (key bytes dropped)."""
    active = np.asarray(active, dtype=np.uint8)
    if active.ndim != 2 or active.shape[1] != params.active:
        raise ValueError(f"expected (N, {params.active}) active regions, got {active.shape}")
    return active[:, payload_positions(params)]

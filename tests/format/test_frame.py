"""Field assembly against an independent reading of spec 4 (3.102) and 11.1 (3.101/3.3)."""

from __future__ import annotations

import numpy as np
import pytest

from backerd.format import frame
from backerd.format.params import FORMATTED_MODES, KEY, mode

CASES = [(name, fmt) for name in FORMATTED_MODES for fmt in ("3.102", "3.101", "3.3")]


def reference_field(params, payload: bytes, odd: bool) -> bytes:
    """Spec 4 / 11.1 built group by group."""
    ki, klen, a = params.key_interval, params.key_length, params.active
    pay = iter(payload)
    active = bytearray()
    if params.key_first:
        for j in range(klen):
            size = ki - 1 if j < klen - 1 else (a % ki) - 1
            active += bytes([KEY[j]]) + bytes(next(pay) for _ in range(size))
    else:
        for j in range(klen):
            active += bytes(next(pay) for _ in range(ki - 1)) + bytes([KEY[j]])
        active += bytes(pay)
    assert len(active) == a and next(pay, None) is None
    trailer = params.trailer + (params.geometry.interlace if odd else 0)
    return b"\xe2" * params.leader + bytes(active) + b"\x33" * trailer


@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_fields_match_reference(name: str, fmt: str) -> None:
    params = mode(name, fmt)
    rng = np.random.default_rng(5)
    payloads = rng.integers(0, 256, (5, params.payload), dtype=np.uint8)
    for first in (0, 1):
        raw = frame.assemble_fields(params, payloads, first)
        expected = b"".join(
            reference_field(params, p.tobytes(), (first + i) % 2 == 0)
            for i, p in enumerate(payloads)
        )
        assert raw == expected


@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_extract_payload_inverts_assembly(name: str, fmt: str) -> None:
    params = mode(name, fmt)
    rng = np.random.default_rng(6)
    payloads = rng.integers(0, 256, (3, params.payload), dtype=np.uint8)
    # PAL fields are all alike; take even fields (index 1) so NTSC lengths match too.
    raw = np.frombuffer(frame.assemble_fields(params, payloads, 1), np.uint8)
    g = params.geometry
    offsets = [0, g.field_size, g.field_size * 2 + g.interlace]
    active = np.array([raw[o + params.leader : o + params.leader + params.active]
                       for o in offsets])
    assert (frame.extract_payload(params, active) == payloads).all()


def test_key_bytes_first_in_3102() -> None:
    params = mode("nls")
    raw = frame.assemble_fields(params, np.zeros((1, params.payload), np.uint8), 0)
    active = raw[params.leader : params.leader + params.active]
    assert active[0] == KEY[0] and active[params.key_interval] == KEY[1]


def test_field_lengths_alternate() -> None:
    params = mode("nhs")
    g = params.geometry
    pay = np.zeros((3, params.payload), np.uint8)
    assert len(frame.assemble_fields(params, pay, 0)) == 3 * g.field_size + 2 * g.interlace
    assert len(frame.assemble_fields(params, pay, 1)) == 3 * g.field_size + g.interlace
    assert frame.assemble_fields(params, pay[:0], 0) == b""


def test_rejects_wrong_payload_width() -> None:
    params = mode("ple")
    with pytest.raises(ValueError):
        frame.assemble_fields(params, np.zeros((1, params.payload + 1), np.uint8), 0)

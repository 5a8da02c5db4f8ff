"""Recorder behaviour (docs/internals.md, spec 6.6, 16) and a round trip through the
sector, GCR, frame and ecc2 decode functions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.errors import UsageError
from backerd.format import ecc2, frame, gcr
from backerd.format.params import FORMATTED_MODES, RAW_MODES, mode
from backerd.format.recorder import Recorder, encode_recording
from backerd.format.sector_codecs import codec_for
from backerd.format.sector_types import SectorKind


def decode_stream(name: str, raw: bytes) -> bytes:
    """User bytes of a clean recording using only the per-layer decode functions."""
    params = mode(name)
    g = params.geometry
    rows, offset, index = [], 0, 0
    while offset < len(raw):
        start = offset + params.leader
        rows.append(np.frombuffer(raw[start : start + params.active], np.uint8))
        offset += g.field_length(index)
        index += 1
    assert offset == len(raw)
    payloads = frame.extract_payload(params, np.array(rows))
    sectors = gcr.demodulate(payloads)[0] if params.codec == "ep" else payloads
    decoded = codec_for(params).decode_sectors(sectors)
    assert decoded.ok[:-1].all()  # the last field may be the pad field
    kinds = decoded.kind
    n_bor = params.n_bor
    assert (kinds[:n_bor] == SectorKind.BOR).all()
    assert decoded.number[:n_bor].tolist() == list(range(-n_bor, 0))
    eor = n_bor + int(np.argmax(kinds[n_bor:] == SectorKind.EOR))
    assert (kinds[n_bor:eor] == SectorKind.DATA).all()
    assert decoded.number[eor : eor + params.n_eor].tolist() == list(
        range(eor - n_bor, eor - n_bor + params.n_eor)
    )
    if params.codec == "sp":
        return b"".join(decoded.data[i, : decoded.length[i]].tobytes()
                        for i in range(n_bor, eor))
    out = []
    for start in range(n_bor, eor, 255):
        res = ecc2.decode_group(decoded.data[start : start + 255], np.zeros(255, bool))
        assert res.ok
        out.append(res.data)
    return b"".join(out)


@settings(max_examples=16, deadline=None)
@given(name=st.sampled_from(FORMATTED_MODES), data=st.binary(max_size=3000),
       cut=st.integers(0, 3000))
def test_round_trip_through_decode_functions(name: str, data: bytes, cut: int) -> None:
    rec = Recorder(name)
    raw = rec.write(data[:cut]) + rec.write(data[cut:]) + rec.close()
    assert decode_stream(name, raw) == data


@pytest.mark.slow
@pytest.mark.parametrize("name", ["nle", "ple"])
def test_round_trip_across_groups(name: str) -> None:
    cg = mode(name).group_capacity
    data = np.random.default_rng(9).integers(0, 256, cg + 5000, dtype=np.uint8).tobytes()
    assert decode_stream(name, encode_recording(data, name)) == data


@pytest.mark.parametrize("name", ["nls", "nhe"])
def test_output_is_whole_fields_as_soon_as_ready(name: str) -> None:
    params = mode(name)
    g = params.geometry
    rec = Recorder(name)
    first = rec.write(b"x")
    # The BOR leaves with the first write, as whole fields.
    assert rec.fields_emitted == params.n_bor
    assert len(first) == sum(g.field_length(i) for i in range(params.n_bor))
    # A full sector's worth of bytes leaves at once (EP: before its group is complete).
    more = rec.write(bytes(params.capacity))
    assert rec.fields_emitted == params.n_bor + 1
    assert len(more) == g.field_length(params.n_bor)


def test_empty_recording_has_bor_and_eor() -> None:
    for name in FORMATTED_MODES:
        params = mode(name)
        rec = Recorder(name)
        raw = rec.close()
        fields = params.n_bor + params.n_eor
        assert rec.fields_emitted == fields + fields % 2
        assert len(raw) == rec.fields_emitted // 2 * params.geometry.frame_size
        assert rec.close() == b""


@pytest.mark.parametrize("name", RAW_MODES)
def test_raw_modes_pass_bytes_through(name: str) -> None:
    rec = Recorder(name)
    assert rec.write(b"abc") + rec.write(b"") + rec.write(b"\x45\x00") + rec.close() == (
        b"abc\x45\x00"
    )


def test_only_3102_is_written() -> None:
    with pytest.raises(UsageError, match="only 3.102"):
        Recorder("nls", "3.101")
    with pytest.raises(UsageError, match="unknown mode"):
        Recorder("xyz")


def test_write_after_close_is_refused() -> None:
    rec = Recorder("pls")
    rec.close()
    with pytest.raises(ValueError):
        rec.write(b"1")


@settings(max_examples=12, deadline=None)
@given(name=st.sampled_from(FORMATTED_MODES), data=st.binary(max_size=6000),
       cuts=st.lists(st.integers(0, 6000), max_size=6), batch=st.integers(1, 5000))
def test_batched_writes_give_the_same_stream(
    name: str, data: bytes, cuts: list[int], batch: int
) -> None:
    rec = Recorder(name, batch_bytes=batch)
    bounds = [0, *sorted(cuts), len(data)]
    pieces = [rec.write(data[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    raw = b"".join(pieces) + rec.close()
    assert decode_stream(name, raw) == data
    assert raw == encode_recording(data, name)


def test_batched_writes_hold_bytes_until_the_batch_is_full() -> None:
    params = mode("nls")
    g = params.geometry
    rec = Recorder("nls", batch_bytes=3 * params.capacity)
    bor = rec.write(bytes(params.capacity))
    assert rec.fields_emitted == params.n_bor  # only the BOR so far
    assert len(bor) == sum(g.field_length(i) for i in range(params.n_bor))
    assert rec.write(bytes(params.capacity)) == b""
    more = rec.write(bytes(params.capacity))
    assert rec.fields_emitted == params.n_bor + 3
    assert len(more) == sum(g.field_length(i) for i in range(params.n_bor, params.n_bor + 3))
    with pytest.raises(ValueError):
        Recorder("nls", batch_bytes=-1)

"""Formats 3.101 and 3.3 against the original's streams (tests/data, spec section 15)."""

from __future__ import annotations

import hashlib
import json
import lzma
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from backerd.format import gcr, legacy
from backerd.format.bkrenhanced import BkrEnhancedDecoder
from backerd.format.params import ModeParams, mode
from backerd.format.sector_codecs import codec_for
from backerd.format.sector_types import SectorKind

DATA = Path(__file__).resolve().parents[1] / "data"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
LEGACY = [e for e in MANIFEST if e["format"] in ("3.101", "3.3") and "noise" not in e]
LEGACY_FILES = [e for e in LEGACY if e["tape"]]

# Spec section 15: first 16 hex digits of SHA-256 and length of the raw stream of P(m).
SPEC_15 = {
    ("3.101", 1000): {
        "nls": ("086b6ae9a5d92433", 367068), "nhs": ("a915c4c1c7759128", 915140),
        "pls": ("5e4842117548000d", 367220), "phs": ("33f2b03e7f8c7625", 918050),
        "nle": ("71bda3a5db1c89e1", 367068), "nhe": ("92a45d5eac678018", 915140),
        "ple": ("baf74634c0ec8aa3", 368440), "phe": ("a1e0a65196816436", 918050),
    },
    ("3.101", 100000): {
        "nls": ("5c786aea43ac6c3e", 483680), "nhs": ("458c2af1537a05e7", 1031750),
        "pls": ("dc9c59175cdcc343", 484340), "phs": ("ae724e10d2216f53", 1033950),
        "nle": ("339ab472dcddecf4", 507000), "nhe": ("5cbca08a60db052d", 1052030),
        "ple": ("391a88e1978fcbc9", 505080), "phe": ("0786448a60182c25", 1049200),
    },
    ("3.3", 1000): {
        "nls": ("7002e814ffe5db22", 306228), "nhs": ("e1bc2e8413d62a6d", 763040),
        "pls": ("3ab4566a929515fb", 306220), "phs": ("4b50de834064c235", 765550),
        "nle": ("3c43d26d227ed392", 306228), "nhe": ("797f5207f8a93212", 763040),
        "ple": ("1a8141a401a0142c", 307440), "phe": ("745562b3d3c8e68a", 765550),
    },
    ("3.3", 100000): {
        "nls": ("102006c2629158c5", 420812), "nhs": ("be187024b42723dd", 877110),
        "pls": ("aa5f38642fcde26b", 422120), "phs": ("1d728bdc90e96ae5", 878400),
        "nle": ("2bfe7af69dc23e51", 446160), "nhe": ("c699eed17d38bc8e", 899930),
        "ple": ("c7beadaecf4df1f4", 444080), "phe": ("2e3eed90ea025902", 896700),
    },
}
SPEC_CASES = [(f, m, name) for (f, m), rows in SPEC_15.items() for name in rows]


def mod251(length: int) -> bytes:
    return (bytes(range(251)) * (length // 251 + 1))[:length]


@cache
def tape(filename: str) -> bytes:
    return lzma.decompress((DATA / filename).read_bytes())


def split_fields(params: ModeParams, raw: bytes) -> np.ndarray:
    """Payloads (N, Pay) of a stream whose fields sit at their nominal offsets.

    Independent of the product's frame code: key bytes are the last byte of each of the
    K groups of ki bytes (spec 11.1); the other active bytes are payload.
    """
    g = params.geometry
    keys = np.arange(params.key_length) * params.key_interval + params.key_interval - 1
    keep = np.setdiff1d(np.arange(params.active), keys)
    rows, offset, index = [], 0, 0
    while offset + g.field_length(index) <= len(raw):
        active = raw[offset + params.leader : offset + params.leader + params.active]
        rows.append(np.frombuffer(active, np.uint8)[keep])
        offset += g.field_length(index)
        index += 1
    assert offset == len(raw), "stream is not a whole number of fields"
    return np.array(rows)


def sectors_of(params: ModeParams, raw: bytes) -> np.ndarray:
    payloads = split_fields(params, raw)
    if params.codec == "ep":
        return gcr.demodulate(payloads)[0]
    return payloads


def user_stream(decoded, bkrenhanced: BkrEnhancedDecoder | None = None) -> bytes:
    """The reader's rules for a clean tape: skip BOR, stop at the first EOR."""
    out = []
    for i in np.flatnonzero(decoded.ok):
        kind, n = int(decoded.kind[i]), int(decoded.length[i])
        if kind == SectorKind.BOR:
            continue
        if kind == SectorKind.EOR:
            break
        chunk = decoded.data[i, :n].tobytes()
        out.append(bkrenhanced.push(chunk) if bkrenhanced else chunk)
    if bkrenhanced:
        out.append(bkrenhanced.finish())
    return b"".join(out)


@pytest.mark.parametrize("entry", LEGACY, ids=[e["name"] for e in LEGACY])
def test_encoder_reproduces_manifest_stream(entry: dict) -> None:
    raw = legacy.encode_recording(
        mod251(entry["input"]["length"]), entry["mode"], entry["format"],
        bkrenhanced=entry.get("outer_code") == "bkrenhanced",
    )
    assert len(raw) == entry["tape_length"]
    assert hashlib.sha256(raw).hexdigest() == entry["tape_sha256"]


@pytest.mark.parametrize(("fmt", "m", "name"), SPEC_CASES)
def test_encoder_reproduces_spec_table(fmt: str, m: int, name: str) -> None:
    raw = legacy.encode_recording(mod251(m), name, fmt)
    assert (hashlib.sha256(raw).hexdigest()[:16], len(raw)) == SPEC_15[(fmt, m)][name]


@pytest.mark.parametrize("fmt", ["3.101", "3.3"])
@pytest.mark.parametrize("name", ["nls", "phe"])
def test_chunked_writes_give_the_same_stream(fmt: str, name: str) -> None:
    data = mod251(10_000)
    whole = legacy.encode_recording(data, name, fmt)
    rec = legacy.LegacyRecorder(name, fmt)
    parts, pos = [], 0
    for size in [1, 0, 870, 871, 872, 3, 5000] * 3:
        parts.append(rec.write(data[pos : pos + size]))
        pos += size
    parts.append(rec.write(data[pos:]))
    parts.append(rec.close())
    assert b"".join(parts) == whole
    g = mode(name, fmt).geometry
    assert sum(g.field_length(i) for i in range(rec.fields_emitted)) == len(whole)


@pytest.mark.parametrize("entry", LEGACY_FILES, ids=[e["name"] for e in LEGACY_FILES])
def test_decode_manifest_stream(entry: dict) -> None:
    params = mode(entry["mode"], entry["format"])
    decoded = codec_for(params).decode_sectors(sectors_of(params, tape(entry["tape"])))
    assert decoded.ok.all()
    assert decoded.corrected.sum() == 0
    outer = None
    if entry.get("outer_code") == "bkrenhanced":
        outer = BkrEnhancedDecoder(params.capacity)
    out = user_stream(decoded, outer)
    assert hashlib.sha256(out).hexdigest() == entry["decoded_sha256"]
    # Numbering and markers per spec 11.1 / 11.2.
    kinds = decoded.kind
    n_bor = params.n_bor
    assert (kinds[:n_bor] == SectorKind.BOR).all()
    assert (kinds[-params.n_eor :] == SectorKind.EOR).all()
    numbers = decoded.number
    assert (np.diff(numbers) == 1).all()
    assert numbers[0] == (-n_bor if params.format == "3.101" else 0)


@pytest.mark.parametrize("fmt", ["3.101", "3.3"])
@pytest.mark.parametrize("name", ["nls", "pls", "nle", "phe"])
def test_decode_with_errors_and_erasures(fmt: str, name: str) -> None:
    params = mode(name, fmt)
    raw = legacy.encode_recording(mod251(20_000), name, fmt)
    clean = sectors_of(params, raw)
    codec = codec_for(params)
    want = user_stream(codec.decode_sectors(clean))
    assert want == mod251(20_000)
    rng = np.random.default_rng(7)
    t = params.parity_per_codeword // 2
    inter = params.interleave
    # Tape position p belongs to codeword p mod I (spec 11.1: byte interleave).
    noisy = clean.copy()
    erasures = np.zeros(clean.shape, bool)
    for row in range(clean.shape[0]):
        for b in range(inter):
            positions = np.arange(b, params.sector_size, inter)
            pick = rng.choice(positions, size=t + 1, replace=False)
            # t-1 unflagged errors and 2 flagged ones: 2(t-1) + 2 = 2t, just decodable.
            noisy[row, pick[: t - 1]] ^= rng.integers(1, 256, t - 1, dtype=np.uint8)
            noisy[row, pick[t - 1 : t + 1]] ^= 0xFF
            erasures[row, pick[t - 1 : t + 1]] = True
    decoded = codec.decode_sectors(noisy, erasures)
    assert decoded.ok.all()
    assert user_stream(decoded) == want
    assert decoded.worst.max() == t + 1
    # Without the erasure flags the same damage exceeds t errors per codeword.
    assert not codec.decode_sectors(noisy).ok.any()


@pytest.mark.parametrize("fmt", ["3.101", "3.3"])
@pytest.mark.parametrize("name", ["nls", "nhs", "pls", "phs", "nle", "nhe", "ple", "phe"])
def test_detect_format(fmt: str, name: str) -> None:
    params = mode(name, fmt)
    sectors = sectors_of(params, legacy.encode_recording(mod251(30_000), name, fmt))
    other = "3.3" if fmt == "3.101" else "3.101"
    n_bor = params.n_bor
    for window in (slice(0, 24), slice(n_bor, n_bor + 12), slice(-40, None)):
        scores = legacy.score_formats(name, sectors[window])
        assert scores[fmt].score > scores[other].score, (window, scores)
        assert legacy.detect_format(name, sectors[window]) == fmt
    # Sectors of the 3.102 layout or noise decide nothing.
    noise = np.random.default_rng(1).integers(0, 256, sectors[:8].shape, dtype=np.uint8)
    assert legacy.detect_format(name, noise) is None


@pytest.mark.parametrize("fmt", ["3.101", "3.3"])
@pytest.mark.parametrize("name", ["pls", "nhe"])
@pytest.mark.parametrize("delta", [(0, 0), (1, -1), (1, 0), (1, 1), (2, 0), (3, 7)])
def test_recording_structure_and_round_trip(fmt: str, name: str, delta) -> None:
    params = mode(name, fmt)
    cap = params.capacity
    m = delta[0] * cap + delta[1]
    data = np.random.default_rng(m).integers(0, 256, m, dtype=np.uint8).tobytes()
    rec = legacy.LegacyRecorder(name, fmt)
    raw = rec.write(data) + rec.close()
    # Spec 16: bkrencode adds one empty data sector when m is a multiple of C (also 0).
    n_data = -(-m // cap) + (m % cap == 0)
    assert rec.fields_emitted == params.n_bor + n_data + params.n_eor
    decoded = codec_for(params).decode_sectors(sectors_of(params, raw))
    assert decoded.ok.all()
    assert user_stream(decoded) == data
    assert (decoded.kind == SectorKind.DATA).sum() == n_data - (fmt == "3.101" and m % cap == 0)


@pytest.mark.parametrize("fmt", ["3.101", "3.3"])
def test_bkrenhanced_recording_survives_twenty_unreadable_sectors_per_group(fmt: str) -> None:
    params = mode("nle", fmt)
    data = mod251(params.group_capacity + 5)  # two groups
    sectors = sectors_of(params, legacy.encode_recording(data, "nle", fmt, bkrenhanced=True))
    rng = np.random.default_rng(4)
    first = params.n_bor
    for group in range(2):
        rows = first + 255 * group + rng.choice(255, 20, replace=False)
        sectors[rows, :120] ^= 0xFF  # 10 errors per codeword, t = 4: the sector is lost
    decoded = codec_for(params).decode_sectors(sectors)
    assert (~decoded.ok).sum() == 40
    outer = BkrEnhancedDecoder(params.capacity)
    out = []
    for i in range(first, len(sectors)):
        if not decoded.ok[i]:
            out.append(outer.push(None))
        elif decoded.kind[i] == SectorKind.EOR:
            break
        else:
            out.append(outer.push(decoded.data[i, : decoded.length[i]].tobytes()))
    out.append(outer.finish())
    assert b"".join(out) == data
    assert outer.lost == []
    assert [r.lost_sectors for r in outer.reports] == [20, 20]


@pytest.mark.parametrize(
    ("name", "fmt", "kwargs"),
    [("nlr", "3.101", {}), ("nls", "3.102", {}), ("nls", "3.3", {"bkrenhanced": True}),
     ("nls", "2.0", {}), ("xyz", "3.101", {})],
)
def test_recorder_rejects_what_it_cannot_write(name: str, fmt: str, kwargs: dict) -> None:
    from backerd.errors import UsageError

    with pytest.raises(UsageError):
        legacy.LegacyRecorder(name, fmt, **kwargs)


def test_write_after_close_is_an_error() -> None:
    from backerd.errors import UsageError

    rec = legacy.LegacyRecorder("nls", "3.3")
    rec.close()
    assert rec.close() == b""
    with pytest.raises(UsageError):
        rec.write(b"x")


@pytest.mark.parametrize("fmt", ["3.101", "3.3"])
def test_detect_format_with_damaged_fields(fmt: str) -> None:
    params = mode("nhe", fmt)
    sectors = sectors_of(params, legacy.encode_recording(mod251(50_000), "nhe", fmt))
    window = sectors[params.n_bor - 6 : params.n_bor + 18].copy()
    window[::2, : params.interleave * 6] ^= 0x5A  # every other sector uncorrectable
    assert legacy.detect_format("nhe", window) == fmt

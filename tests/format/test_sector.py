"""3.102 sector codec: layout against an independent spec-6 construction with reedsolo,
round trips, error/erasure correction, header parsing and kinds."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reedsolo import RSCodec

from backerd.errors import UsageError
from backerd.format import randomiser
from backerd.format.legacy_sector import LegacySectorCodec
from backerd.format.params import FORMATTED_MODES, mode
from backerd.format.sector import Sector3102Codec
from backerd.format.sector_codecs import codec_for
from backerd.format.sector_types import DecodedSectors, SectorCodec, SectorKind

MODES = [mode(name) for name in FORMATTED_MODES]


@cache
def rsc(nsym: int) -> RSCodec:
    return RSCodec(nsym=nsym, fcr=1, prim=0x11D, generator=2)


def reference_sector(params, user: bytes, s: int) -> bytes:
    """Spec 6.5, written out byte by byte; RS parity from reedsolo (spec 6.4 mapping)."""
    cap, inter, k, n = params.capacity, params.interleave, params.rs_k, params.rs_n
    nsym = n - k
    buf = bytearray(params.sector_size)
    count = len(user)
    buf[:count] = user
    if count:
        mask = randomiser.mask(np.array([s]), count)[0].tobytes()
        buf[:count] = bytes(a ^ b for a, b in zip(buf[:count], mask, strict=True))
    if count < cap:
        buf[count : cap - 1] = b"\x33" * (cap - 1 - count)
        e = count + count // 15 + 1
        buf[cap - 1] = e >> 4
        low = e & 15
    else:
        low = 0
    buf[cap : cap + 4] = (((s % (1 << 28)) | (low << 28)) & 0xFFFFFFFF).to_bytes(4, "little")
    for b in range(inter):
        d = [buf[b + j * inter] for j in range(k)]
        parity = rsc(nsym).encode(bytes(reversed(d)))[-nsym:]
        p = list(reversed(parity))
        for j in range(nsym):
            buf[params.data_size + b + j * inter] = p[j]
    return bytes(buf)


@st.composite
def sector_batches(draw):
    params = draw(st.sampled_from(MODES))
    cap = params.capacity
    count = draw(st.integers(1, 4))
    lengths = [draw(st.sampled_from([0, 1, 2, 14, 15, 16, cap - 2, cap - 1, cap]))
               for _ in range(count)]
    numbers = [draw(st.integers(-(2**27), 2**27 - 1)) for _ in range(count)]
    seed = draw(st.integers(0, 2**32 - 1))
    return params, lengths, numbers, seed


@settings(max_examples=40, deadline=None)
@given(batch=sector_batches())
def test_encode_matches_reference_and_round_trips(batch) -> None:
    params, lengths, numbers, seed = batch
    rng = np.random.default_rng(seed)
    codec = Sector3102Codec(params)
    data = rng.integers(0, 256, (len(lengths), params.capacity), dtype=np.uint8)
    sectors = codec.encode_sectors(data, np.array(lengths), np.array(numbers))
    for row, length, s in zip(range(len(lengths)), lengths, numbers, strict=True):
        expected = reference_sector(params, data[row, :length].tobytes(), s)
        assert sectors[row].tobytes() == expected
    decoded = codec.decode_sectors(sectors)
    assert decoded.ok.all()
    assert decoded.number.tolist() == numbers
    assert decoded.length.tolist() == lengths
    for row, length in enumerate(lengths):
        assert (decoded.data[row, :length] == data[row, :length]).all()
    assert (decoded.corrected == 0).all() and (decoded.worst == 0).all()


def test_bytes_beyond_length_do_not_matter() -> None:
    params = mode("nls")
    codec = Sector3102Codec(params)
    a = np.zeros((1, params.capacity), np.uint8)
    b = a.copy()
    b[:, 3:] = 0xAB
    args = (np.array([3]), np.array([10]))  # lengths, numbers
    assert (codec.encode_sectors(a, *args) == codec.encode_sectors(b, *args)).all()


def test_kinds_from_number_and_length() -> None:
    params = mode("pls")
    codec = Sector3102Codec(params)
    data = np.ones((4, params.capacity), np.uint8)
    sectors = codec.encode_sectors(
        data, np.array([0, 0, 5, params.capacity]), np.array([-250, 7, 3, -1])
    )
    decoded = codec.decode_sectors(sectors)
    assert decoded.kind.tolist() == [
        SectorKind.BOR, SectorKind.EOR, SectorKind.DATA, SectorKind.BOR,
    ]
    assert decoded.number.tolist() == [-250, 7, 3, -1]


@pytest.mark.parametrize("params", MODES, ids=lambda p: p.name)
def test_corrects_t_errors_and_erasures_per_codeword(params) -> None:
    rng = np.random.default_rng(11)
    codec = Sector3102Codec(params)
    count = 6
    data = rng.integers(0, 256, (count, params.capacity), dtype=np.uint8)
    lengths = np.array([params.capacity] * (count - 1) + [123])
    numbers = np.arange(100, 100 + count)
    clean = codec.encode_sectors(data, lengths, numbers)
    t = params.parity_per_codeword // 2
    inter = params.interleave
    noisy, erasures = clean.copy(), np.zeros(clean.shape, bool)
    for row in range(count):
        for b in range(inter):
            # Codeword b occupies tape positions b, b + I, b + 2I, ...
            pick = rng.choice(np.arange(b, params.sector_size, inter), t + 1, replace=False)
            noisy[row, pick[: t - 1]] ^= rng.integers(1, 256, t - 1, dtype=np.uint8)
            noisy[row, pick[t - 1 :]] ^= 0x5A
            erasures[row, pick[t - 1 :]] = True
    decoded = codec.decode_sectors(noisy, erasures)
    assert decoded.ok.all()
    assert decoded.number.tolist() == numbers.tolist()
    assert decoded.length.tolist() == lengths.tolist()
    for row in range(count):
        n = lengths[row]
        assert (decoded.data[row, :n] == data[row, :n]).all()
    assert decoded.worst.tolist() == [t + 1] * count
    assert decoded.corrected.tolist() == [(t + 1) * inter] * count
    # The same damage without the erasure flags is beyond the code.
    assert not codec.decode_sectors(noisy).ok.any()


def test_uncorrectable_sector_is_flagged_not_hidden() -> None:
    params = mode("nle")
    codec = Sector3102Codec(params)
    data = np.zeros((2, params.capacity), np.uint8)
    sectors = codec.encode_sectors(data, np.array([10, 10]), np.array([1, 2]))
    sectors[1, :120] ^= 0xFF  # 10 errors in each of the 12 codewords: beyond t = 4
    decoded = codec.decode_sectors(sectors)
    assert decoded.ok.tolist() == [True, False]
    assert decoded.length[1] == 0 and decoded.number[1] == 0


def test_impossible_length_is_rejected() -> None:
    """A consistent codeword whose header claims a partial length >= C is not ok."""
    params = mode("nls")
    codec = Sector3102Codec(params)
    cap = params.capacity
    # Hand-build: high byte 0xFF and low nibble 5 -> n = 15*255 + 4 > C.
    buf = np.zeros((1, params.sector_size), np.uint8)
    buf[0, cap - 1] = 0xFF
    buf[0, cap : cap + 4] = np.frombuffer((5 << 28 | 9).to_bytes(4, "little"), np.uint8)
    inter, k = params.interleave, params.rs_k
    for b in range(inter):
        d = bytes(buf[0, b + j * inter] for j in range(k))
        p = list(reversed(rsc(params.parity_per_codeword).encode(d[::-1])[-10:]))
        for j in range(10):
            buf[0, params.data_size + b + j * inter] = p[j]
    decoded = codec.decode_sectors(buf)
    assert not decoded.ok[0]


@pytest.mark.parametrize(("fmt", "cls"), [("3.102", Sector3102Codec),
                                          ("3.101", LegacySectorCodec),
                                          ("3.3", LegacySectorCodec)])
def test_codec_for_picks_the_release_codec(fmt: str, cls: type) -> None:
    params = mode("nhs", fmt)
    codec = codec_for(params)
    assert type(codec) is cls and isinstance(codec, SectorCodec)
    assert codec.params is params
    out = codec.decode_sectors(np.zeros((1, params.sector_size), np.uint8))
    assert isinstance(out, DecodedSectors)


def test_codec_for_raw_mode_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="raw"):
        codec_for(mode("nhr"))


@pytest.mark.parametrize("params", [mode("nhs"), mode("phe")], ids=lambda p: p.name)
def test_damage_in_a_few_codewords_among_many(params) -> None:
    rng = np.random.default_rng(21)
    codec = Sector3102Codec(params)
    count = 40
    data = rng.integers(0, 256, (count, params.capacity), dtype=np.uint8)
    lengths = np.full(count, params.capacity)
    clean = codec.encode_sectors(data, lengths, np.arange(count))
    noisy = clean.copy()
    inter = params.interleave
    hits = [(3, 0), (3, inter - 1), (17, 5), (39, inter // 2)]  # (sector, codeword)
    for row, b in hits:
        noisy[row, b + inter * np.array([0, 7])] ^= 0x99  # 2 errors in that codeword
    erasures = np.zeros(clean.shape, bool)
    erasures[25, :50] = True  # flagged but intact
    decoded = codec.decode_sectors(noisy, erasures)
    assert decoded.ok.all()
    assert (decoded.data == data).all()
    expected = np.zeros(count, int)
    for row, _ in hits:
        expected[row] += 2
    assert decoded.corrected.tolist() == expected.tolist()

"""The 3.101/3.3 sector codec: layout against reedsolo and the spec, round trips, state."""

from __future__ import annotations

import numpy as np
import pytest
import reedsolo
from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.errors import UsageError
from backerd.format import randomiser
from backerd.format.legacy_sector import LegacySectorCodec
from backerd.format.params import FORMATTED_MODES, mode
from backerd.format.sector_codecs import codec_for
from backerd.format.sector_types import SectorKind

CASES = [(fmt, name) for fmt in ("3.101", "3.3") for name in FORMATTED_MODES]


def spec_codewords(params, sector: np.ndarray) -> list[tuple[bytes, bytes]]:
    """(data d_0.., parity p_0..) of each codeword, read from tape order per spec 11.1."""
    inter, k, t2, d = params.interleave, params.rs_k, params.parity_per_codeword, params.data_size
    return [
        (
            bytes(sector[b + np.arange(k) * inter]),
            bytes(sector[d + b + np.arange(t2) * inter]),
        )
        for b in range(inter)
    ]


def spec_buffer(params, sector: np.ndarray) -> bytes:
    """The codeword-major data area: codeword 0's data, then codeword 1's, ..."""
    return b"".join(data for data, _ in spec_codewords(params, sector))


@pytest.mark.parametrize(("fmt", "name"), CASES)
def test_layout_parity_and_header_per_spec(fmt: str, name: str) -> None:
    params = mode(name, fmt)
    codec = LegacySectorCodec(params)
    cap = params.capacity
    rng = np.random.default_rng(11)
    data = rng.integers(0, 256, (2, cap), dtype=np.uint8)
    n = cap // 3
    numbers = np.array([-7, 1234]) if fmt == "3.101" else np.array([7, 1234])
    kinds = None if fmt == "3.101" else np.full(2, int(SectorKind.DATA))
    sectors = codec.encode_sectors(data, np.array([cap, n]), numbers, kinds)
    rsc = reedsolo.RSCodec(nsym=params.parity_per_codeword, fcr=1, prim=0x11D, generator=2)
    for row in range(2):
        for d, p in spec_codewords(params, sectors[row]):
            assert bytes(rsc.encode(d[::-1])[len(d) :]) == p[::-1]
    full, part = (np.frombuffer(spec_buffer(params, s), np.uint8) for s in sectors)
    h_full = int.from_bytes(full[cap : cap + 4].tobytes(), "little")
    h_part = int.from_bytes(part[cap : cap + 4].tobytes(), "little")
    e = n + n // 15 + 1
    if fmt == "3.101":
        assert h_full == (-7 & 0x1FFFFFF)
        assert h_part == 1234 | (e & 15) << 25
        assert (full[:cap] == data[0] ^ randomiser.mask(numbers[:1], cap)[0, :cap]).all()
        assert (part[:n] == data[1, :n] ^ randomiser.mask(numbers[1:], n)[0, :n]).all()
        assert (part[n : cap - 1] == 0x33).all()
        assert part[cap - 1] == e >> 4
    else:
        assert h_full == 7 | 2 << 26
        assert h_part == 1234 | (e & 15) << 22 | 2 << 26
        mask = randomiser.mask_33(numbers, cap)
        assert (mask[:, :4] == 0).all()  # word 0 is never randomised
        assert (full[:cap] == data[0] ^ mask[0]).all()
        plain = part[:cap] ^ mask[1]
        assert (plain[:n] == data[1, :n]).all()
        assert plain[cap - 1] == e >> 4
        # Stale bytes: the previous sector's (randomised) buffer, here sector 0's.
        assert (plain[n : cap - 1] == full[n : cap - 1]).all()


@pytest.mark.parametrize("name", ["nls", "ple"])
def test_33_markers(name: str) -> None:
    params = mode(name, "3.3")
    codec = LegacySectorCodec(params)
    cap = params.capacity
    kinds = np.array([int(SectorKind.BOR), int(SectorKind.EOR)])
    junk = np.full((2, cap), 0xA5, np.uint8)
    sectors = codec.encode_sectors(junk, np.array([5, 5]), np.array([0, 99]), kinds)
    for sector, (number, typ) in zip(sectors, [(0, 0), (99, 1)], strict=True):
        buf = np.frombuffer(spec_buffer(params, sector), np.uint8)
        assert (buf[:cap] == 0x33).all()
        assert int.from_bytes(buf[cap : cap + 4].tobytes(), "little") == number | typ << 26
    decoded = codec.decode_sectors(sectors)
    assert decoded.ok.all()
    assert list(decoded.kind) == [SectorKind.BOR, SectorKind.EOR]
    assert list(decoded.length) == [0, 0]


def test_33_stale_state_carries_across_batches() -> None:
    params = mode("nhs", "3.3")
    codec = LegacySectorCodec(params)
    cap = params.capacity
    rng = np.random.default_rng(2)
    data = rng.integers(0, 256, (3, cap), dtype=np.uint8)
    lengths = np.array([cap, cap, 10])
    numbers = np.array([240, 241, 242])
    together = codec.encode_sectors(data, lengths, numbers)
    first = codec.encode_sectors(data[:2], lengths[:2], numbers[:2])
    second = codec.encode_sectors(
        data[2:], lengths[2:], numbers[2:], stale=codec.stale_area(first[-1])
    )
    assert (np.concatenate([first, second]) == together).all()
    # Without the state the partial sector differs (fresh buffer: 0x33 fill).
    fresh = codec.encode_sectors(data[2:], lengths[2:], numbers[2:])
    assert (fresh != second).any()
    assert (codec.decode_sectors(fresh).data[0, 10 : cap - 1] == 0x33).all()
    assert codec.decode_sectors(fresh).data[0, :10].tobytes() == data[2, :10].tobytes()


@settings(max_examples=25, deadline=None)
@given(
    case=st.sampled_from(CASES),
    length_pick=st.sampled_from(["0", "1", "C-1", "C", "any"]),
    number=st.integers(0, 2**21),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip(case, length_pick: str, number: int, seed: int) -> None:
    fmt, name = case
    params = mode(name, fmt)
    codec = codec_for(params)
    cap = params.capacity
    rng = np.random.default_rng(seed)
    n = {"0": 0, "1": 1, "C-1": cap - 1, "C": cap, "any": int(rng.integers(0, cap + 1))}[
        length_pick
    ]
    data = rng.integers(0, 256, (1, cap), dtype=np.uint8)
    number = -number - 1 if fmt == "3.101" and seed % 2 else number
    sectors = codec.encode_sectors(data, np.array([n]), np.array([number]))
    # Damage up to t symbols in each codeword.
    t = params.parity_per_codeword // 2
    noisy = sectors.copy()
    for b in range(params.interleave):
        pos = rng.choice(np.arange(b, params.sector_size, params.interleave), t, replace=False)
        noisy[0, pos] ^= rng.integers(1, 256, t, dtype=np.uint8)
    decoded = codec.decode_sectors(noisy)
    assert decoded.ok[0]
    assert decoded.number[0] == number
    assert decoded.length[0] == n
    assert decoded.data[0, :n].tobytes() == data[0, :n].tobytes()
    assert decoded.corrected[0] == t * params.interleave
    assert decoded.worst[0] == t
    expected_kind = (
        SectorKind.BOR if number < 0 else SectorKind.EOR if n == 0 and fmt == "3.101"
        else SectorKind.DATA
    )
    assert decoded.kind[0] == expected_kind


def test_uncorrectable_sector_is_not_ok() -> None:
    params = mode("pls", "3.101")
    codec = LegacySectorCodec(params)
    sectors = codec.encode_sectors(
        np.zeros((2, params.capacity), np.uint8), np.array([5, 5]), np.array([0, 1])
    )
    sectors[1, : params.interleave * 6] ^= 0x77  # 6 errors in every codeword, t = 5
    decoded = codec.decode_sectors(sectors)
    assert list(decoded.ok) == [True, False]


@pytest.mark.parametrize(("name", "fmt"), [("nls", "3.102"), ("nlr", "3.101")])
def test_only_formatted_legacy_modes(name: str, fmt: str) -> None:
    with pytest.raises(UsageError):
        LegacySectorCodec(mode(name, fmt))

"""Randomiser against spec 6.3 / 11.2 vectors and a literal transcription of the spec."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.format import randomiser


def lcg(s: int):
    """next() of spec 6.3 seeded with s, as a function returning successive outputs."""
    state = s & 0xFFFFFFFF

    def nxt() -> int:
        nonlocal state
        state = (1664525 * state + 1013904223) % (1 << 32)
        return state

    return nxt


def reference_mask(s: int, n: int) -> bytes:
    """Spec 6.3 pseudo-code, one sector, plain Python integers."""
    nxt = lcg(s)

    h = [0, 0, 0, 0]
    h[3], h[2], h[1], h[0] = nxt(), nxt(), nxt(), nxt()
    buf = bytearray(4 * ((n + 3) // 4))
    for w in range((n - 1) // 4, -1, -1):
        r = nxt()
        j = r >> 30
        buf[4 * w : 4 * w + 4] = h[j].to_bytes(4, "little")
        h[j] = r
    return bytes(buf[:n])


def reference_mask_33(s: int, cap: int) -> bytes:
    """Spec 11.2 variant: ascending slots, one extra store, word 0 never masked."""
    nxt = lcg(s)

    h = [nxt(), nxt(), nxt(), nxt()]
    r = nxt()
    h[r >> 30] = r
    buf = bytearray(4 * ((cap + 3) // 4))
    for w in range((cap - 1) // 4, 0, -1):
        r = nxt()
        j = r >> 30
        buf[4 * w : 4 * w + 4] = h[j].to_bytes(4, "little")
        h[j] = r
    return bytes(buf[:cap])


def test_lcg_outputs_from_seed_zero() -> None:
    out = randomiser.lcg_outputs(np.array([0]), 4)[0]
    assert [f"{v:08X}" for v in out] == ["3C6EF35F", "47502932", "D1CCF6E9", "AAF95334"]


def test_spec_vectors() -> None:
    masks = randomiser.mask(np.array([0, 1]), 16)
    assert masks[0].tobytes().hex().upper() == "86C62E9F03E5526232295047E9F6CCD1"
    assert masks[1].tobytes().hex().upper() == "DB85885E6C59883C7E011681C53A73B4"
    long = randomiser.mask(np.array([0]), 826)[0]
    assert long.shape == (826,)
    assert long[:16].tobytes().hex().upper() == "2F147145DA38C4DC355C81751C09F88E"
    assert long[818:826].tobytes().hex().upper() == "526232295047E9F6"


def test_spec_vector_33() -> None:
    mask = randomiser.mask_33(np.array([0]), 16)[0]
    assert mask.tobytes().hex().upper() == "0000000086C62E9F03E55262E9F6CCD1"


def test_empty_mask() -> None:
    assert randomiser.mask(np.array([5, 6]), 0).shape == (2, 0)


@settings(max_examples=40, deadline=None)
@given(
    numbers=st.lists(st.integers(-(2**27), 2**27 - 1), min_size=1, max_size=5),
    n=st.integers(1, 2614),
)
def test_vectorised_mask_equals_reference(numbers: list[int], n: int) -> None:
    masks = randomiser.mask(np.array(numbers, dtype=np.int64), n)
    assert masks.shape == (len(numbers), n)
    for row, s in zip(masks, numbers, strict=True):
        assert row.tobytes() == reference_mask(s, n)


@settings(max_examples=20, deadline=None)
@given(
    numbers=st.lists(st.integers(0, 2**22 - 1), min_size=1, max_size=4),
    cap=st.sampled_from([16, 17, 857, 871, 1052, 2196, 2658]),
)
def test_vectorised_mask_33_equals_reference(numbers: list[int], cap: int) -> None:
    masks = randomiser.mask_33(np.array(numbers, dtype=np.int64), cap)
    for row, s in zip(masks, numbers, strict=True):
        assert row.tobytes() == reference_mask_33(s, cap)


def test_many_sectors_in_one_batch() -> None:
    numbers = np.arange(-300, 9000, 37, dtype=np.int64)
    masks = randomiser.mask(numbers, 33)
    for i in (0, 1, len(numbers) // 2, len(numbers) - 1):
        assert masks[i].tobytes() == reference_mask(int(numbers[i]), 33)

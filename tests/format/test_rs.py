"""Batched Reed-Solomon against reedsolo 1.7 (spec 6.4 library mapping) and the spec vectors.

reedsolo mapping: RSCodec(nsym=2t, fcr=1, prim=0x11d, generator=2); its codeword is
reversed(d) + reversed(p), i.e. exactly our coefficient-order row reversed.
"""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
import reedsolo
from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.format.rs import RSCode, rs_code

FORMAT_CODES = [
    (93, 83), (118, 108), (80, 70), (129, 119), (68, 60), (74, 66), (82, 74), (96, 88),
    (255, 235), (133, 123), (140, 130), (133, 125), (140, 132), (118, 110), (129, 121),
]  # fmt: skip


def ref_codec(n: int, k: int) -> reedsolo.RSCodec:
    return reedsolo.RSCodec(nsym=n - k, nsize=255, fcr=1, prim=0x11D, generator=2)


def ref_codeword(n: int, k: int, data: np.ndarray) -> np.ndarray:
    """reedsolo's systematic codeword of data row d, mapped back to coefficient order."""
    out = ref_codec(n, k).encode(bytes(data[::-1].tolist()))
    return np.frombuffer(bytes(out), dtype=np.uint8)[::-1].copy()


def ref_is_codeword(n: int, k: int, row: np.ndarray) -> bool:
    return ref_codec(n, k).check(bytes(row[::-1].tolist()))[0]


def corrupt(
    rng: np.random.Generator, cw: np.ndarray, n_err: int, n_eras: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: n_err symbol errors (nonzero) and n_eras erased positions (value random,
    maybe unchanged); returns (received, erasure mask, error mask)."""
    rows, n = cw.shape
    recv = cw.copy()
    eras = np.zeros(cw.shape, dtype=bool)
    errs = np.zeros(cw.shape, dtype=bool)
    for i in range(rows):
        pos = rng.choice(n, n_err + n_eras, replace=False)
        ep, sp = pos[:n_err], pos[n_err:]
        recv[i, ep] ^= rng.integers(1, 256, ep.size).astype(np.uint8)
        recv[i, sp] = rng.integers(0, 256, sp.size).astype(np.uint8)
        errs[i, ep] = True
        eras[i, sp] = True
    return recv, eras, errs


def random_codewords(rng: np.random.Generator, code: RSCode, rows: int) -> np.ndarray:
    return code.codewords(rng.integers(0, 256, (rows, code.k), dtype=np.uint8))


# ------------------------------------------------------------------- encoding


def test_spec_vectors() -> None:
    d = np.arange(83, dtype=np.uint8)[None, :]
    assert rs_code(93, 83).encode(d)[0].tobytes() == bytes.fromhex("BD BB 92 C2 00 19 98 94 78 5A")
    d = np.arange(235, dtype=np.uint8)[None, :]
    expected = "BE72AB290B18FCDE3C5054C8E8C0AE42440631FE"
    assert rs_code(255, 235).encode(d)[0].tobytes() == bytes.fromhex(expected)


@pytest.mark.parametrize(("n", "k"), FORMAT_CODES)
def test_encode_matches_reedsolo(n: int, k: int) -> None:
    rng = np.random.default_rng(n * 1000 + k)
    code = rs_code(n, k)
    data = rng.integers(0, 256, (40, k), dtype=np.uint8)
    data[0] = 0
    data[1] = 255
    cw = code.codewords(data)
    assert cw.shape == (40, n)
    for i in range(len(data)):
        assert np.array_equal(cw[i], ref_codeword(n, k, data[i]))
    assert not code.syndromes(cw).any()


def test_encode_shapes_and_errors() -> None:
    code = rs_code(93, 83)
    assert code.encode(np.zeros((0, 83), np.uint8)).shape == (0, 10)
    with pytest.raises(ValueError):
        code.encode(np.zeros((3, 82), np.uint8))
    with pytest.raises(ValueError):
        code.decode(np.zeros((3, 92), np.uint8))
    with pytest.raises(ValueError):
        code.decode(np.zeros((3, 93), np.uint8), np.zeros((3, 92), bool))
    with pytest.raises(ValueError):
        RSCode(10, 10)


@pytest.mark.parametrize(("n", "k"), [(68, 60), (93, 83), (255, 235)])
def test_syndromes_are_evaluations_at_alpha_powers(n: int, k: int) -> None:
    """S_i = r(alpha^i), checked against reedsolo's polynomial evaluation."""
    rng = np.random.default_rng(7)
    code = rs_code(n, k)
    ref_codec(n, k)  # sets reedsolo's global tables for prim 0x11D
    recv = rng.integers(0, 256, (20, n), dtype=np.uint8)
    recv[0] = 0
    recv[1] = 255
    synd = code.syndromes(recv)
    assert synd.shape == (20, n - k)
    for i in range(len(recv)):
        poly = list(recv[i][::-1])  # highest degree first, as reedsolo expects
        ref = [reedsolo.gf_poly_eval(poly, reedsolo.gf_pow(2, j)) for j in range(1, n - k + 1)]
        assert synd[i].tolist() == ref


# ------------------------------------------------------------- within capacity


def capacity_patterns(nsym: int) -> list[tuple[int, int]]:
    """(errors, erasures) pairs on and inside the capacity boundary."""
    t = nsym // 2
    pats = {(1, 0), (t, 0), (0, 1), (0, nsym), (t - 1, 2), (1, nsym - 2)}
    pats |= {(e, nsym - 2 * e) for e in range(t + 1)}
    return sorted(pats)


@pytest.mark.parametrize(("n", "k"), FORMAT_CODES)
def test_decode_within_capacity(n: int, k: int) -> None:
    rng = np.random.default_rng(n * 7 + k)
    code = rs_code(n, k)
    for n_err, n_eras in capacity_patterns(n - k):
        cw = random_codewords(rng, code, 30)
        recv, eras, errs = corrupt(rng, cw, n_err, n_eras)
        res = code.decode(recv, eras)
        assert res.ok.all(), (n_err, n_eras)
        assert np.array_equal(res.corrected, cw)
        expected_changed = recv != cw
        assert np.array_equal(res.changed, expected_changed)
        assert np.array_equal(res.n_corrected, expected_changed.sum(axis=1))
        assert not (res.changed & ~(errs | eras)).any()


@pytest.mark.parametrize(("n", "k"), FORMAT_CODES)
def test_decode_agrees_with_reedsolo(n: int, k: int) -> None:
    """reedsolo's own errors-and-erasures decoder recovers the same codewords."""
    rng = np.random.default_rng(n + 31 * k)
    code = rs_code(n, k)
    t = (n - k) // 2
    cw = random_codewords(rng, code, 12)
    recv, eras, _ = corrupt(rng, cw, t - 1, 2)
    res = code.decode(recv, eras)
    ref = ref_codec(n, k)
    for i in range(len(recv)):
        erase_pos = [n - 1 - int(j) for j in np.flatnonzero(eras[i])]
        _, full, _ = ref.decode(bytes(recv[i][::-1].tolist()), erase_pos=erase_pos)
        assert res.ok[i]
        assert np.array_equal(res.corrected[i], np.frombuffer(bytes(full), np.uint8)[::-1])


def test_clean_rows_and_erased_but_correct_symbols() -> None:
    rng = np.random.default_rng(3)
    code = rs_code(255, 235)
    cw = random_codewords(rng, code, 10)
    eras = np.zeros(cw.shape, dtype=bool)
    eras[:, 20:45] = True  # more than 2t erasures, but nothing is actually wrong
    for mask in (None, eras):
        res = code.decode(cw, mask)
        assert res.ok.all()
        assert np.array_equal(res.corrected, cw)
        assert not res.changed.any() and not res.n_corrected.any()


def test_empty_batch() -> None:
    code = rs_code(93, 83)
    res = code.decode(np.zeros((0, 93), np.uint8), np.zeros((0, 93), bool))
    assert res.corrected.shape == (0, 93) and res.changed.shape == (0, 93)
    assert res.ok.shape == (0,) and res.n_corrected.shape == (0,)
    assert code.syndromes(np.zeros((0, 93), np.uint8)).shape == (0, 10)


def test_mixed_batch_and_readonly_broadcast_erasures() -> None:
    """Clean, correctable and uncorrectable rows side by side; a broadcast mask works."""
    rng = np.random.default_rng(11)
    code = rs_code(255, 235)
    cw = random_codewords(rng, code, 9)
    recv = cw.copy()
    mask_row = np.zeros(255, dtype=bool)
    mask_row[[0, 5, 40, 100, 254]] = True
    recv[3:6, mask_row] ^= 0x5A  # correctable through the erasures
    recv[6:9, 50:70] ^= 0xA5  # 20 errors outside the erasures: beyond capacity
    eras = np.broadcast_to(mask_row, recv.shape)
    res = code.decode(recv, eras)
    assert res.ok[:6].all() and not res.ok[6:].any()
    assert np.array_equal(res.corrected[:6], cw[:6])
    assert np.array_equal(res.corrected[6:], recv[6:])
    assert res.n_corrected.tolist() == [0, 0, 0, 5, 5, 5, 0, 0, 0]


@pytest.mark.parametrize(("n", "k"), [(255, 235), (93, 83), (68, 60)])
@pytest.mark.parametrize("fraction", [0.5, 1.0])
def test_shared_erasure_pattern(n: int, k: int, fraction: float) -> None:
    """Many rows with one erasure pattern (an EP lost sector): erasure-only rows, rows
    with extra errors inside and beyond capacity, and clean rows, in one batch."""
    rng = np.random.default_rng(n + int(fraction * 10))
    code = rs_code(n, k)
    nsym = n - k
    e = int(nsym * fraction)
    spare = (nsym - e) // 2  # errors still correctable besides the erasures
    cw = random_codewords(rng, code, 80)
    pattern = np.zeros(n, dtype=bool)
    pattern[rng.choice(n, e, replace=False)] = True
    recv = cw.copy()
    recv[:60, pattern] = rng.integers(0, 256, (60, e), dtype=np.uint8)
    outside = np.flatnonzero(~pattern)
    for i in range(20, 40):  # correctable extra errors (if any capacity is left)
        if spare:
            recv[i, rng.choice(outside, spare, replace=False)] ^= np.uint8(0x11)
    for i in range(40, 60):  # beyond capacity
        recv[i, rng.choice(outside, spare + 2, replace=False)] ^= np.uint8(0x22)
    eras = np.broadcast_to(pattern, recv.shape)
    res = code.decode(recv, eras)
    assert res.ok[:40].all() and res.ok[60:].all()
    assert np.array_equal(res.corrected[:40], cw[:40])
    assert np.array_equal(res.corrected[60:], cw[60:])
    assert np.array_equal(res.changed[:40], recv[:40] != cw[:40])
    assert np.array_equal(res.n_corrected, res.changed.sum(axis=1))
    check_beyond_capacity(code, recv[40:60], eras[40:60])
    # reedsolo decodes the erasure-only rows to the same codewords
    ref = ref_codec(n, k)
    erase_pos = [n - 1 - int(j) for j in np.flatnonzero(pattern)]
    for i in range(3):
        _, full, _ = ref.decode(bytes(recv[i][::-1].tolist()), erase_pos=erase_pos)
        assert np.array_equal(res.corrected[i], np.frombuffer(bytes(full), np.uint8)[::-1])


def test_large_batch_across_chunks() -> None:
    """More dirty rows than one internal chunk, mixed error counts and mask kinds."""
    rng = np.random.default_rng(21)
    code = rs_code(255, 235)
    rows = 9000
    cw = random_codewords(rng, code, rows)
    recv = cw.copy()
    eras = np.zeros(cw.shape, dtype=bool)
    n_err = rng.integers(0, 4, rows)
    for i in np.flatnonzero(n_err):
        pos = rng.choice(255, int(n_err[i]) + 2, replace=False)
        recv[i, pos[: n_err[i]]] ^= rng.integers(1, 256, n_err[i]).astype(np.uint8)
        eras[i, pos[n_err[i] :]] = True
        recv[i, pos[n_err[i] :]] = 0
    res = code.decode(recv, eras.astype(np.uint8))  # any 0/1 mask dtype is accepted
    assert res.ok.all()
    assert np.array_equal(res.corrected, cw)
    assert np.array_equal(res.changed, recv != cw)


def test_shared_pattern_runs_with_too_many_erasures_and_clean_rows() -> None:
    """Runs of one pattern: e > 2t (general path fails them unless already codewords),
    e = 0 rows inside the run, and a run shorter than the shared-solver threshold."""
    rng = np.random.default_rng(5)
    code = rs_code(93, 83)
    cw = random_codewords(rng, code, 100)
    recv = cw.copy()
    eras = np.zeros(cw.shape, dtype=bool)
    eras[0:40, 0:11] = True  # 11 > 2t erasures
    recv[0:20, 0:11] ^= 1  # damaged: must fail
    eras[40:80, 50:55] = True  # 5 erasures, correctable
    recv[40:80, 50:55] = 7
    eras[80:85, 60:70] = True  # short run, full 2t erasures
    recv[80:85, 60:70] = 9
    res = code.decode(recv, eras)
    assert not res.ok[:20].any() and res.ok[20:].all()
    assert np.array_equal(res.corrected[:20], recv[:20])
    assert np.array_equal(res.corrected[20:], cw[20:])


# ------------------------------------------------------------- beyond capacity


def check_beyond_capacity(code: RSCode, recv: np.ndarray, eras: np.ndarray) -> int:
    """Failures leave rows untouched; successes are codewords inside the decoding radius.
    Returns the number of accepted rows."""
    res = code.decode(recv, eras)
    bad = ~res.ok
    assert np.array_equal(res.corrected[bad], recv[bad])
    assert not res.changed[bad].any() and not res.n_corrected[bad].any()
    good = np.flatnonzero(res.ok)
    assert not code.syndromes(res.corrected[good]).any()
    for i in good:
        assert ref_is_codeword(code.n, code.k, res.corrected[i])
        outside = (res.changed[i] & ~eras[i]).sum()
        assert 2 * outside + eras[i].sum() <= code.nsym
    return good.size


def sphere_fraction(n: int, nsym: int, n_eras: int) -> float:
    """Fraction of all words within the decoding radius of the code punctured at the
    erasures: length n - e, redundancy r = 2t - e, radius floor(r / 2)."""
    r = nsym - n_eras
    if r < 0:
        return 0.0
    return sum(comb(n - n_eras, i) * 255**i for i in range(r // 2 + 1)) / 256**r


@pytest.mark.parametrize(("n", "k"), FORMAT_CODES)
def test_decode_beyond_capacity_never_silent(n: int, k: int) -> None:
    """Beyond capacity a row fails or lands on a codeword inside the decoding radius; the
    acceptance rate matches the fraction of words inside the decoding spheres (the rate
    at which a bounded-distance decoder must miscorrect), binomial 5 sigma."""
    rng = np.random.default_rng(n * 13 + k)
    code = rs_code(n, k)
    nsym = n - k
    t = nsym // 2
    rows = 300
    patterns = [(t + 1, 0), (t + 3, 0), (2, nsym - 2), (3, nsym - 3), (1, nsym), (0, nsym + 1)]
    for n_err, n_eras in patterns:
        cw = random_codewords(rng, code, rows)
        recv, eras, _ = corrupt(rng, cw, n_err, n_eras)
        if n_err == 0:  # make sure the erased symbols really are wrong
            recv[eras] = cw[eras] ^ np.uint8(0x3C)
        accepted = check_beyond_capacity(code, recv, eras)
        p = sphere_fraction(n, nsym, n_eras)
        sigma = (rows * p * (1 - p)) ** 0.5
        assert abs(accepted - rows * p) <= 5 * sigma + 2, (n_err, n_eras, accepted, rows * p)
        if n_eras == 0:
            assert accepted <= 2  # p < 2e-4 for every format code


@pytest.mark.parametrize(("n", "k", "rows"), [(20, 18, 4000), (30, 26, 20000)])
def test_miscorrection_rate_of_uniform_words(n: int, k: int, rows: int) -> None:
    """A bounded-distance decoder accepts exactly the words within t of a codeword:
    fraction sum_{i<=t} C(n,i) 255^i / 256^(n-k) of all words (perfect packing of spheres
    is impossible, but the spheres are disjoint, so the fraction is exact)."""
    rng = np.random.default_rng(n)
    code = RSCode(n, k)
    t = (n - k) // 2
    recv = rng.integers(0, 256, (rows, n), dtype=np.uint8)
    eras = np.zeros(recv.shape, dtype=bool)
    res = code.decode(recv, eras)
    p = sum(comb(n, i) * 255**i for i in range(t + 1)) / 256 ** (n - k)
    expected = p * rows
    sigma = (rows * p * (1 - p)) ** 0.5
    assert abs(res.ok.sum() - expected) < 5 * sigma + 1, (res.ok.sum(), expected)
    good = np.flatnonzero(res.ok)
    assert not code.syndromes(res.corrected[good]).any()
    assert (res.n_corrected[good] <= t).all()
    for i in good[:50]:
        assert ref_is_codeword(n, k, res.corrected[i])


# ------------------------------------------------------------- properties


@st.composite
def decode_cases(draw: st.DrawFn) -> tuple[int, int, bytes, list[int], list[int], list[int]]:
    n, k = draw(st.sampled_from(FORMAT_CODES))
    data = draw(st.binary(min_size=k, max_size=k))
    nsym = n - k
    n_eras = draw(st.integers(0, nsym))
    n_err = draw(st.integers(0, (nsym - n_eras) // 2))
    positions = draw(
        st.lists(
            st.integers(0, n - 1), min_size=n_err + n_eras, max_size=n_err + n_eras, unique=True
        )
    )
    flips = draw(st.lists(st.integers(1, 255), min_size=n_err, max_size=n_err))
    eras_vals = draw(st.lists(st.integers(0, 255), min_size=n_eras, max_size=n_eras))
    return n, k, data, positions, flips, eras_vals


@settings(max_examples=150, deadline=None)
@given(decode_cases())
def test_property_recovers_within_capacity(
    case: tuple[int, int, bytes, list[int], list[int], list[int]],
) -> None:
    n, k, data, positions, flips, eras_vals = case
    code = rs_code(n, k)
    d = np.frombuffer(data, dtype=np.uint8)
    cw = ref_codeword(n, k, d)
    recv = cw.copy()[None, :]
    eras = np.zeros((1, n), dtype=bool)
    err_pos, eras_pos = positions[: len(flips)], positions[len(flips) :]
    for p, f in zip(err_pos, flips, strict=True):
        recv[0, p] ^= f
    for p, v in zip(eras_pos, eras_vals, strict=True):
        recv[0, p] = v
        eras[0, p] = True
    res = code.decode(recv, eras)
    assert res.ok[0]
    assert np.array_equal(res.corrected[0], cw)
    assert res.n_corrected[0] == (recv[0] != cw).sum()


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(FORMAT_CODES),
    st.integers(0, 2**32 - 1),
    st.integers(1, 12),
)
def test_property_any_word_decodes_to_codeword_or_fails(
    code_nk: tuple[int, int], seed: int, rows: int
) -> None:
    n, k = code_nk
    code = rs_code(n, k)
    rng = np.random.default_rng(seed)
    cw = random_codewords(rng, code, rows)
    n_err = int(rng.integers(0, n - k + 3))
    n_eras = int(rng.integers(0, n - k + 2))
    n_eras = min(n_eras, n - n_err)
    recv, eras, _ = corrupt(rng, cw, n_err, n_eras)
    check_beyond_capacity(code, recv, eras)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(FORMAT_CODES),
    st.integers(0, 2**32 - 1),
    st.integers(16, 40),
    st.data(),
)
def test_property_shared_pattern_with_errors(
    code_nk: tuple[int, int], seed: int, rows: int, data: st.DataObject
) -> None:
    """Rows sharing one erasure pattern plus per-row errors within the remaining capacity
    are recovered exactly, whichever internal path handles them."""
    n, k = code_nk
    nsym = n - k
    code = rs_code(n, k)
    rng = np.random.default_rng(seed)
    e = data.draw(st.integers(1, nsym))
    cw = random_codewords(rng, code, rows)
    pattern = np.zeros(n, dtype=bool)
    pattern[rng.choice(n, e, replace=False)] = True
    recv = cw.copy()
    recv[:, pattern] = rng.integers(0, 256, (rows, e), dtype=np.uint8)
    outside = np.flatnonzero(~pattern)
    for i in range(rows):
        m = int(rng.integers(0, (nsym - e) // 2 + 1))
        recv[i, rng.choice(outside, m, replace=False)] ^= rng.integers(1, 256, m).astype(np.uint8)
    res = code.decode(recv, np.broadcast_to(pattern, recv.shape))
    assert res.ok.all()
    assert np.array_equal(res.corrected, cw)
    assert np.array_equal(res.n_corrected, (recv != cw).sum(axis=1))

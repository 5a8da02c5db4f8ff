"""gf_linear.LinearMap in both layouts against a bitwise GF(256) matrix product."""

from __future__ import annotations

import numpy as np
import pytest

from backerd.format.gf_linear import LinearMap, word_dtypes
from testkit.gfref import slow_matmul


@pytest.mark.parametrize("nbytes", [1, 2, 3, 4, 5, 8, 9, 10, 16, 20])
def test_word_dtypes_cover_the_bytes(nbytes: int) -> None:
    sizes = [dt.itemsize for dt in word_dtypes(nbytes)]
    assert sum(sizes) >= nbytes and sum(sizes) - sizes[-1] < nbytes
    assert all(s == 8 for s in sizes[:-1])


# (positions, output bytes, vectors): tails of every width, few and many vectors; the
# column layout gathers blocks of positions (``_BLOCK_ELEMENTS`` table entries at most):
# one block, several uneven ones, and one position per block (more vectors than that).
CASES = [(3, 1, 5), (10, 10, 40), (17, 2, 300), (8, 20, 4100), (5, 9, 1), (4, 3, 0),
         (70, 3, 5000), (3, 2, (1 << 18) + 7)]


@pytest.mark.parametrize(("npos", "nbytes", "count"), CASES)
def test_rows_and_columns_are_the_same_map(npos: int, nbytes: int, count: int) -> None:
    rng = np.random.default_rng(npos * 100 + nbytes)
    coeffs = rng.integers(0, 256, (npos, nbytes), dtype=np.uint8)
    x = rng.integers(0, 256, (count, npos), dtype=np.uint8)
    lin = LinearMap(coeffs)
    sample = slice(0, 60)  # the bitwise oracle is slow: check a sample of the rows
    expected = slow_matmul(x[sample], coeffs)
    rows = lin.apply_rows(x)
    assert rows.shape == (count, nbytes)
    assert np.array_equal(rows[sample], expected)
    cols = lin.apply_columns(np.ascontiguousarray(x.T))
    assert cols.shape == (nbytes, count)
    assert np.array_equal(cols.T, rows)


def test_columns_accept_strided_trailing_axes() -> None:
    rng = np.random.default_rng(3)
    coeffs = rng.integers(0, 256, (6, 4), dtype=np.uint8)
    sectors = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)  # (rows, k, I) as in sector
    view = sectors.transpose(1, 0, 2)  # (k, rows, I), not contiguous
    out = LinearMap(coeffs).apply_columns(view)
    expected = slow_matmul(sectors.transpose(0, 2, 1).reshape(-1, 6), coeffs)
    assert np.array_equal(out.T, expected)


def test_pack_and_sum_segments_agree_with_apply_rows() -> None:
    rng = np.random.default_rng(4)
    coeffs = rng.integers(0, 256, (12, 10), dtype=np.uint8)
    lin = LinearMap(coeffs)
    x = np.zeros((3, 12), np.uint8)
    x[0, [1, 5]] = [7, 200]
    x[1, [0]] = [1]
    x[2, [2, 3, 11]] = [9, 9, 255]
    pos, sym = np.nonzero(x)[1], x[np.nonzero(x)]
    starts = np.array([0, 2, 3])
    got = lin.sum_segments(pos.astype(np.intp), sym.astype(np.intp), starts)
    for g, want in zip(got, lin.pack(lin.apply_rows(x)), strict=True):
        assert np.array_equal(g, want)


def test_columns_reject_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"expected \(4, M\)"):
        LinearMap(np.ones((4, 2), np.uint8)).apply_columns(np.zeros((3, 5), np.uint8))

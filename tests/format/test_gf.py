"""GF(256) tables against an independent bitwise implementation and the spec vectors."""

import numpy as np
import pytest

from backerd.format import gf
from testkit.gfref import slow_matmul, slow_mul


def test_mul_table_matches_bitwise_multiply() -> None:
    a = np.arange(256)
    expected = np.array([[slow_mul(int(x), int(y)) for y in a] for x in a], dtype=np.uint8)
    assert np.array_equal(gf.MUL, expected)


def test_exp_log_are_inverse_and_alpha_is_primitive() -> None:
    assert len(set(gf.EXP[:255].tolist())) == 255
    assert gf.EXP[0] == 1 and gf.EXP[1] == 2
    for x in range(1, 256):
        assert gf.EXP[gf.LOG[x]] == x


def test_inverse() -> None:
    for x in range(1, 256):
        assert slow_mul(x, gf.gf_inv(x)) == 1
    with pytest.raises(ZeroDivisionError):
        gf.gf_inv(0)


@pytest.mark.parametrize(
    ("nsym", "hexcoeffs"),
    [
        (8, "25 E0 08 AC 47 B2 2C E3 01"),
        (10, "A0 D4 44 BC 1E C5 BE 8C 2F AD 01"),
        (20, "59 A6 F4 7A 96 B3 47 D9 8B F7 AE B2 64 27 E5 61 50 D3 DE 2D 01"),
    ],
)
def test_generator_poly_spec_vectors(nsym: int, hexcoeffs: str) -> None:
    assert gf.generator_poly(nsym).tobytes() == bytes.fromhex(hexcoeffs)


def test_inverse_table_matches_bitwise_multiply() -> None:
    assert all(slow_mul(x, int(gf.INV[x])) == 1 for x in range(1, 256))



@pytest.mark.parametrize("size", [1, 2, 7, 20])
def test_matrix_inverse(size: int) -> None:
    # A Vandermonde matrix of distinct nonzero points is nonsingular (the erasure systems).
    rng = np.random.default_rng(size)
    points = rng.choice(np.arange(1, 256), size, replace=False)
    a = np.array([[gf.EXP[(int(gf.LOG[p]) * (r + 1)) % 255] for p in points]
                  for r in range(size)], np.uint8)
    inv = gf.matrix_inverse(a)
    assert np.array_equal(slow_matmul(a, inv), np.eye(size, dtype=np.uint8))
    assert np.array_equal(slow_matmul(inv, a), np.eye(size, dtype=np.uint8))

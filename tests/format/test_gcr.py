"""8/9 GCR against spec 5: vectors, code-book checksum, a bit-string reference."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.format import gcr


def reference_modulate(data: bytes) -> bytes:
    """Spec 5 pseudo-code with an explicit bit string."""
    bits, prev = [], 0
    for v in data:
        t = int(gcr.CODEBOOK[v])
        if prev & 1:
            t ^= 0x1FF
        bits.extend((t >> (8 - i)) & 1 for i in range(9))
        prev = t
    return bytes(
        int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8)
    )


def test_codebook_matches_spec_checksum() -> None:
    assert zlib.crc32(gcr.CODEBOOK.astype(">u2").tobytes()) == 0x421B2633
    assert gcr.CODEBOOK[0] == 0x089 and gcr.CODEBOOK[255] == 0x1EE
    assert (np.diff(gcr.CODEBOOK.astype(int)) > 0).all()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (bytes(range(8)), "44DD6E88C46DC6DC92"),
        (bytes(8), "44DD9137644DD91376"),
        (b"\xff" * 8, "F77BBDDEEF77BBDDEE"),
    ],
)
def test_spec_vectors(data: bytes, expected: str) -> None:
    out = gcr.modulate(np.frombuffer(data, np.uint8)[None, :])
    assert out[0].tobytes().hex().upper() == expected
    back, invalid = gcr.demodulate(out)
    assert back[0].tobytes() == data
    assert not invalid.any()


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(st.binary(min_size=64, max_size=64), min_size=1, max_size=4))
def test_modulate_equals_reference_and_round_trips(rows: list[bytes]) -> None:
    data = np.array([np.frombuffer(r, np.uint8) for r in rows])
    out = gcr.modulate(data)
    assert out.shape == (len(rows), 72)
    for r, o in zip(rows, out, strict=True):
        assert o.tobytes() == reference_modulate(r)
    back, invalid = gcr.demodulate(out)
    assert (back == data).all() and not invalid.any()


def test_word_not_in_table_decodes_to_ff_and_is_flagged() -> None:
    # 0x000 is not a code word; with t_-1 = 0 it is received as is.
    stream = np.zeros((1, 9), np.uint8)
    back, invalid = gcr.demodulate(stream)
    assert back[0, 0] == 0xFF and invalid[0, 0]


def test_single_bit_error_corrupts_at_most_two_bytes() -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, (1, 816), dtype=np.uint8)
    clean = gcr.modulate(data)
    for bit in rng.choice(918 * 8, 40, replace=False):
        noisy = clean.copy()
        noisy[0, bit // 8] ^= 0x80 >> (bit % 8)
        back, _ = gcr.demodulate(noisy)
        assert 1 <= int((back != data).sum()) <= 2


def test_rejects_bad_widths() -> None:
    with pytest.raises(ValueError):
        gcr.modulate(np.zeros((1, 7), np.uint8))
    with pytest.raises(ValueError):
        gcr.demodulate(np.zeros((1, 10), np.uint8))


def reference_demodulate(stream: bytes) -> tuple[bytes, list[bool]]:
    """Spec 5 inverse with an explicit bit string: undo the inversion by the previous
    *received* word, then look the word up in the code book (0xFF and flagged if absent)."""
    bits = "".join(f"{b:08b}" for b in stream)
    book = {int(w): v for v, w in enumerate(gcr.CODEBOOK)}
    out, bad, prev = bytearray(), [], 0
    for i in range(0, len(bits) - 8, 9):
        received = int(bits[i : i + 9], 2)
        word = received ^ 0x1FF if prev & 1 else received
        out.append(book.get(word, 0xFF))
        bad.append(word not in book)
        prev = received
    return bytes(out), bad


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.binary(min_size=27, max_size=27), min_size=1, max_size=3))
def test_demodulate_arbitrary_streams_equals_reference(rows: list[bytes]) -> None:
    back, invalid = gcr.demodulate(np.array([np.frombuffer(r, np.uint8) for r in rows]))
    for r, b, bad in zip(rows, back, invalid, strict=True):
        ref, ref_bad = reference_demodulate(r)
        assert b.tobytes() == ref and bad.tolist() == ref_bad


def test_demodulate_strided_and_empty_input() -> None:
    data = np.random.default_rng(5).integers(0, 256, (6, 64), dtype=np.uint8)
    stream = gcr.modulate(data)
    back, invalid = gcr.demodulate(np.asfortranarray(stream)[::2])
    assert (back == data[::2]).all() and not invalid.any()
    back, invalid = gcr.demodulate(np.zeros((0, 918), np.uint8))
    assert back.shape == (0, 816) and invalid.shape == (0, 816)

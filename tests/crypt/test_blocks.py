"""Sealed tape blocks: known answers against independent oracles, and what must fail."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("cryptography")

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from backerd.crypt.blocks import (  # noqa: E402
    OVERHEAD,
    BlockPlace,
    Opened,
    Opener,
    Rejected,
    Sealer,
    StreamOpener,
    parse_header,
)
from backerd.crypt.keys import UnitKey  # noqa: E402

KEY = UnitKey.from_secret(bytes(range(32)))
SALT = bytes(range(100, 116))
CASSETTE = bytes.fromhex("0123456789abcdef0123456789abcdef")


def hkdf_oracle(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 with the standard library's HMAC: extract, then expand."""
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def test_hkdf_oracle_matches_rfc5869_test_case_1() -> None:
    okm = hkdf_oracle(bytes([0x0B] * 22), bytes(range(13)), bytes(range(0xF0, 0xFA)), 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


def test_aes_gcm_primitive_matches_the_gcm_paper_test_case_14() -> None:
    sealed = AESGCM(bytes(32)).encrypt(bytes(12), bytes(16), None)
    assert sealed.hex() == ("cea7403d4d606b6e074ec5d3baf39d18"
                            "d0d1c8a799996bf0265b98b5d48ab919")


def test_fingerprint_is_hkdf_of_the_key() -> None:
    assert KEY.fingerprint == hkdf_oracle(KEY.secret, b"", b"backerd key fingerprint v1", 8)


@pytest.mark.parametrize("last", [False, True])
def test_seal_is_the_documented_construction(last: bool) -> None:
    data = b"tar block " * 1024
    place = BlockPlace(CASSETTE, 7, 300)
    sealed = Sealer(KEY, SALT).seal(data, place, last=last)
    flags = 1 if last else 0
    header = b"BKE1" + bytes([flags]) + bytes(3) + KEY.fingerprint + SALT + struct.pack(
        ">I", len(data))
    key = hkdf_oracle(KEY.secret, SALT, b"backerd recording key v1", 32)
    nonce = (300).to_bytes(8, "big") + bytes([flags]) + bytes(3)
    aad = header + b"backerd block v1" + CASSETTE + (7).to_bytes(4, "big") + (300).to_bytes(
        8, "big")
    assert sealed == header + AESGCM(key).encrypt(nonce, data, aad)
    assert len(sealed) == len(data) + OVERHEAD


@given(st.binary(max_size=3000), st.integers(0, 2**32 - 1), st.integers(0, 2**40),
       st.booleans())
def test_open_returns_what_was_sealed(data: bytes, file: int, block: int, last: bool) -> None:
    place = BlockPlace(CASSETTE, file, block)
    assert Opener(KEY).open(Sealer(KEY, SALT).seal(data, place, last=last), place) == Opened(
        data, last)


@given(st.binary(min_size=1, max_size=600), st.data())
def test_any_changed_byte_rejects_the_block(data: bytes, draw: st.DataObject) -> None:
    place = BlockPlace(CASSETTE, 1, 5)
    sealed = bytearray(Sealer(KEY, SALT).seal(data, place, last=False))
    at = draw.draw(st.integers(0, len(sealed) - 1))
    sealed[at] ^= draw.draw(st.integers(1, 255))
    assert isinstance(Opener(KEY).open(bytes(sealed), place), Rejected)


@given(st.sampled_from(["block", "file", "cassette"]), st.integers(1, 1000))
def test_a_block_in_another_place_is_rejected(what: str, delta: int) -> None:
    place = BlockPlace(CASSETTE, 3, 10)
    sealed = Sealer(KEY, SALT).seal(b"x" * 100, place, last=False)
    moved = {"block": BlockPlace(CASSETTE, 3, 10 + delta),
             "file": BlockPlace(CASSETTE, 3 + delta, 10),
             "cassette": BlockPlace(bytes(16), 3, 10)}[what]
    assert isinstance(Opener(KEY).open(sealed, moved), Rejected)


def test_another_key_is_named_before_any_tag_is_tried() -> None:
    other = UnitKey.from_secret(bytes(32))
    place = BlockPlace(CASSETTE, 0, 0)
    out = Opener(other).open(Sealer(KEY, SALT).seal(b"data", place, last=True), place)
    assert isinstance(out, Rejected) and out.wrong_key and KEY.fingerprint_hex in out.reason


@given(st.binary(max_size=200))
def test_header_parser_never_raises(data: bytes) -> None:
    parse_header(data)
    assert isinstance(Opener(KEY).open(data, BlockPlace(CASSETTE, 0, 0)), Rejected | Opened)


def sealed_recording(blocks: list[bytes], file: int = 2) -> list[bytes]:
    sealer = Sealer(KEY, SALT)
    return [sealer.seal(b, BlockPlace(CASSETTE, file, i), last=i == len(blocks) - 1)
            for i, b in enumerate(blocks)]


def unseal_stream(stream: bytes, file: int = 2, chunk: int = 777) -> tuple[bytes, list[str]]:
    out: list[bytes] = []
    opener = StreamOpener(KEY, CASSETTE, file)
    for i in range(0, len(stream), chunk):
        opener.feed(stream[i:i + chunk], out.append)
    opener.finish()
    return b"".join(out), opener.problems


BLOCKS = [bytes([i]) * (1000 + 37 * i) for i in range(6)]


def test_stream_of_sealed_blocks_opens_in_any_chunking() -> None:
    stream = b"".join(sealed_recording(BLOCKS))
    for chunk in (1, 100, 10_000):
        assert unseal_stream(stream, chunk=chunk) == (b"".join(BLOCKS), [])


def test_stream_damage_loses_only_that_block() -> None:
    sealed = sealed_recording(BLOCKS)
    bad = bytearray(sealed[2])
    bad[500] ^= 1
    plain, problems = unseal_stream(b"".join([*sealed[:2], bytes(bad), *sealed[3:]]))
    assert plain == b"".join(BLOCKS[:2] + BLOCKS[3:])
    assert len(problems) == 1 and "block 2 of file 2" in problems[0]


def test_stream_damaged_header_resynchronises_at_the_next_block() -> None:
    sealed = sealed_recording(BLOCKS)
    bad = b"XXXX" + sealed[1][4:]
    plain, problems = unseal_stream(b"".join([sealed[0], bad, *sealed[2:]]))
    assert plain == b"".join(BLOCKS[:1] + BLOCKS[2:])
    assert problems and "no BKE1 header" in problems[0]


def test_stream_without_its_last_block_is_truncated() -> None:
    plain, problems = unseal_stream(b"".join(sealed_recording(BLOCKS)[:-1]))
    assert plain == b"".join(BLOCKS[:-1])
    assert problems == ["the recording ends without its last block (truncated)"]


def test_stream_with_blocks_swapped_fails_both() -> None:
    sealed = sealed_recording(BLOCKS)
    plain, problems = unseal_stream(b"".join([sealed[0], sealed[2], sealed[1], *sealed[3:]]))
    assert plain == b"".join([BLOCKS[0], *BLOCKS[3:]])
    assert len(problems) == 2


@given(st.lists(st.one_of(st.binary(max_size=120), st.just(b"BKE1"),
                          st.just(b"BKE1\x00\x00\x00\x00")), max_size=12))
def test_stream_opener_never_raises_on_any_bytes(pieces: list[bytes]) -> None:
    out: list[bytes] = []
    opener = StreamOpener(KEY, CASSETTE, 0, resync_window=4)
    opener.feed(b"".join(pieces), out.append)
    opener.finish()
    assert out == [] and opener.problems  # nothing opens, and it says so


@given(st.lists(st.binary(max_size=3000), max_size=6), st.integers(1, 5000))
def test_plaintext_of_a_recording_is_what_the_stream_opens(blocks: list[bytes],
                                                          chunk: int) -> None:
    stream = b"".join(sealed_recording(blocks))
    opener = StreamOpener(KEY, CASSETTE, 2)
    got = b"".join(opener.plaintext(stream[i:i + chunk]
                                    for i in range(0, len(stream), chunk)))
    assert (got, opener.problems) == unseal_stream(stream, chunk=chunk)
    assert opener.opened == len(blocks) and got == b"".join(blocks)


def test_plaintext_under_another_key_stops_at_the_first_block() -> None:
    chunks = iter(sealed_recording(BLOCKS))
    opener = StreamOpener(UnitKey.from_secret(bytes(32)), CASSETTE, 2)
    assert list(opener.plaintext(chunks)) == [] and opener.opened == 0
    assert opener.wrong_key is not None and len(list(chunks)) == len(BLOCKS) - 1
    opener.feed(b"".join(sealed_recording(BLOCKS)), lambda data: None)
    assert len(opener.problems) > 1  # one line each, summed up as one
    assert opener.summary() == opener.problems[0] and "not with this key" in opener.problems[0]

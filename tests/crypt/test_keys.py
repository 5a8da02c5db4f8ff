"""Unit keys: the key file, the passphrase-wrapped copy, the paper key."""

from __future__ import annotations

import base64
import contextlib
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("cryptography")

from backerd.crypt import keys  # noqa: E402
from backerd.errors import CryptError  # noqa: E402

FAST = {"n": 1 << 10, "r": 8, "p": 1}  # scrypt cost for tests; the default is 2^15


@given(st.binary(min_size=32, max_size=32))
def test_paper_key_round_trip(secret: bytes) -> None:
    key = keys.UnitKey.from_secret(secret)
    paper = keys.paper_key(key)
    assert keys.parse_paper_key(paper) == key
    assert keys.parse_paper_key(paper.lower()) == key  # typed in lower case
    lines = paper.splitlines()
    assert len(lines) == 5 and key.fingerprint_hex in lines[0]
    # the data lines hold the key in base32, groups of four
    chars = "".join("".join(line.split(":")[1].split()[:-1]) for line in lines[1:])
    assert base64.b32decode(chars + "====") == secret


@given(st.binary(min_size=32, max_size=32), st.data())
def test_a_typo_is_pinned_to_its_line(secret: bytes, data: st.DataObject) -> None:
    lines = keys.paper_key(keys.UnitKey.from_secret(secret)).splitlines()
    row = data.draw(st.integers(1, 4))
    number, rest = lines[row].split(":", 1)
    at = data.draw(st.sampled_from([i for i, c in enumerate(rest[:-4]) if c.isalnum()]))
    typo = "A" if rest[at] != "A" else "B"
    lines[row] = f"{number}:{rest[:at]}{typo}{rest[at + 1:]}"
    # never accepted: named by its line's check characters, or, when those collide
    # (10 bits: one typo in 1024), by the fingerprint in the heading
    with pytest.raises(CryptError, match=f"line {row} does not match|heading says"):
        keys.parse_paper_key("\n".join(lines))


def test_the_check_characters_catch_most_typos_by_themselves() -> None:
    key = keys.UnitKey.from_secret(bytes(range(32)))
    lines = keys.paper_key(key).splitlines()
    pinned = 0
    for at in range(3, 7):  # the first group of line 1
        for typo in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567":
            if lines[1][at] == typo:
                continue
            changed = [lines[0], lines[1][:at] + typo + lines[1][at + 1:], *lines[2:]]
            try:
                keys.parse_paper_key("\n".join(changed))
            except CryptError as exc:
                pinned += "line 1 does not match" in exc.message
    assert pinned >= 4 * 31 - 2


def test_swapped_or_missing_lines_are_refused() -> None:
    lines = keys.paper_key(keys.UnitKey.generate()).splitlines()
    swapped = [lines[0], lines[2].replace("2:", "1:", 1), lines[1].replace("1:", "2:", 1),
               *lines[3:]]
    with pytest.raises(CryptError, match="line 1 does not match"):
        keys.parse_paper_key("\n".join(swapped))
    with pytest.raises(CryptError, match="expected lines 1..4"):
        keys.parse_paper_key("\n".join([lines[0], lines[1], lines[3], lines[4]]))
    other = keys.UnitKey.generate().fingerprint_hex
    with pytest.raises(CryptError, match="heading says"):
        keys.parse_paper_key("\n".join([lines[0][:-16] + other, *lines[1:]]))


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_key_parsers_raise_only_crypt_errors(text: str) -> None:
    with contextlib.suppress(CryptError):
        keys.parse_any_key(text)


def test_wrap_unwrap_and_wrong_passphrase() -> None:
    key = keys.UnitKey.generate()
    wrap = keys.wrap_key(key, b"open sesame", **FAST)
    assert wrap["kdf"] == "scrypt" and wrap["n"] == 1 << 10
    assert keys.unwrap_key(wrap, b"open sesame") == key
    with pytest.raises(CryptError, match="wrong passphrase"):
        keys.unwrap_key(wrap, b"open sesame!")
    tampered = dict(wrap, fingerprint=keys.UnitKey.generate().fingerprint_hex)
    with pytest.raises(CryptError):
        keys.unwrap_key(tampered, b"open sesame")
    for bad in ({"n": 3}, {"n": 1 << 20, "r": 32}, {"p": 0}):
        with pytest.raises(CryptError, match="implausible"):
            keys.unwrap_key(dict(wrap, **bad), b"open sesame")
    with pytest.raises(CryptError, match="empty passphrase"):
        keys.wrap_key(key, b"")


def test_key_file_is_private_and_never_replaced_unasked(tmp_path: Path) -> None:
    key = keys.UnitKey.generate()
    key = keys.UnitKey.from_secret(key.secret, wrap=keys.wrap_key(key, b"pw", **FAST))
    path = tmp_path / "unit.key"
    keys.save_key_file(path, key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = keys.load_key_file(path)
    assert loaded == key and loaded.wrap == key.wrap
    with pytest.raises(CryptError, match="never replaced"):
        keys.save_key_file(path, keys.UnitKey.generate())
    keys.save_key_file(path, keys.UnitKey.generate(), force=True)
    assert keys.load_key_file(path) != key
    with pytest.raises(CryptError, match="does not exist"):
        keys.load_key_file(tmp_path / "nope.key")


def test_a_damaged_key_file_is_caught_by_its_fingerprint(tmp_path: Path) -> None:
    key = keys.UnitKey.generate()
    text = keys.key_document(key).replace(key.fingerprint_hex, "0" * 16)
    with pytest.raises(CryptError, match="does not match its fingerprint"):
        keys.parse_key_document(text)
    assert "secret" not in repr(key) and key.secret.hex() not in repr(key)

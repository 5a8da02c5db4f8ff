"""The label codec: round trip, rejection of everything else, text rules."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backerd.catalog.label import MAGIC, Label, encode_label, new_label, parse_label
from backerd.errors import UsageError

texts = st.text(min_size=1, max_size=64).filter(lambda t: t.isprintable() and t == t.strip())


@given(texts, st.sampled_from(["PAL", "NTSC"]), st.integers(0, 10**6), st.booleans())
def test_round_trip(text, standard, length, encrypted) -> None:
    label = new_label(text, standard, length, encrypted=encrypted)
    data = encode_label(label)
    assert data.startswith(MAGIC)
    assert parse_label(data) == label


@given(st.binary(max_size=5000))
def test_other_bytes_are_not_labels(data) -> None:
    assert parse_label(data) is None or data.startswith(MAGIC)


def test_readable_by_an_independent_json_reader() -> None:
    label = new_label("MONDAY-01", "PAL", 10800, encrypted=True)
    head, body = encode_label(label).split(b"\n", 1)
    assert head == b"BACKERD LABEL 1"
    fields = json.loads(body)
    assert fields["text"] == "MONDAY-01" and fields["encrypted"] is True
    assert fields["length_seconds"] == 10800 and fields["standard"] == "PAL"


def test_unknown_keys_survive_and_bad_types_are_rejected() -> None:
    label = new_label("A", "NTSC", 7200)
    body = json.loads(encode_label(label)[len(MAGIC):])
    body["key_fingerprint"] = "ab" * 32
    assert parse_label(MAGIC + json.dumps(body).encode()).extra == {
        "key_fingerprint": "ab" * 32}
    body["length_seconds"] = True
    assert parse_label(MAGIC + json.dumps(body).encode()) is None
    body["length_seconds"] = 1
    body["uuid"] = "not-a-uuid"
    assert parse_label(MAGIC + json.dumps(body).encode()) is None
    assert parse_label(MAGIC + b"[1, 2]") is None


@pytest.mark.parametrize("text", ["", " x", "x" * 65, "a\nb", "tab\there"])
def test_bad_text_is_refused(text: str) -> None:
    with pytest.raises(UsageError):
        new_label(text, "PAL", 0)


def test_label_is_a_value() -> None:
    a = Label("A", "00000000-0000-4000-8000-000000000000", "PAL", 1, "2026-01-01T00:00:00+00:00")
    assert parse_label(encode_label(a)) == a

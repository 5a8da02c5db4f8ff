"""The cassette image format: superblock and index validation, pure and fuzzed."""

from __future__ import annotations

import json
import stat
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.errors import UsageError
from backerd.vcr import image
from backerd.vcr.base import OpenRecording, Recording
from backerd.vcr.image import (
    Damage,
    IndexState,
    Superblock,
    parse_length,
    parse_superblock,
    validate_index,
    validate_superblock,
)

# What create writes for an NTSC T-15, spelled out here rather than taken from the code.
T15 = {"standard": "ntsc", "length_name": "T-15", "minutes": 15, "slots": 15 * 60 * 60,
       "slot_size": 3072, "data_offset": 4096 + 2 * (4 << 20), "index_size": 4 << 20}
T15_SIZE = 4096 + 2 * (4 << 20) + 15 * 60 * 60 * 3072

json_scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70)
                | st.floats(allow_nan=False) | st.text(max_size=12)
                | st.sampled_from(["ntsc", "pal", "secam", "", "T-15", "nls", "3.102"]))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


def _is_damage_or(kind: type, result: object) -> bool:
    return isinstance(result, Damage | kind)


# -- lengths ---------------------------------------------------------------------------


def test_lengths_are_bounded_to_what_exists() -> None:
    assert parse_length("E-300") == ("E-300", 300)
    assert parse_length("600") == ("600 min", 600)
    assert parse_length("95min") == ("95 min", 95)
    for text in ("601", "1000", "0", "99999999999999999999999"):
        with pytest.raises(UsageError, match="minutes|unknown"):
            parse_length(text)


# -- the superblock --------------------------------------------------------------------


def test_superblock_round_trips() -> None:
    for standard, length in (("ntsc", "T-15"), ("pal", "E-300"), ("pal", "600")):
        sb = Superblock.new(standard, length)
        assert parse_superblock(sb.to_bytes(), sb.image_size) == sb
    assert parse_superblock(Superblock.new("ntsc", "T-15").to_bytes(), T15_SIZE) == Superblock(
        "ntsc", "T-15", 15, 54000)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"slots": "abc"}, "slots is 'abc', expected integer"),
        ({"slots": -5}, "slots is -5"),
        ({"slots": 54001}, "slots must be minutes"),
        ({"minutes": True}, "minutes is True, expected integer"),
        ({"standard": "secam"}, "standard is 'secam', expected ntsc or pal"),
        ({"slot_size": 4096}, "slot_size"),
        ({"data_offset": None}, "data_offset is None"),
    ],
)
def test_superblock_damage_is_named(change: dict, message: str) -> None:
    result = validate_superblock({**T15, **change}, T15_SIZE)
    assert isinstance(result, Damage) and message in result.message


def test_superblock_checked_against_the_file_size() -> None:
    assert isinstance(validate_superblock(T15, T15_SIZE), Superblock)
    assert isinstance(validate_superblock(T15, T15_SIZE - 10**6), Superblock)  # truncated
    too_long = validate_superblock(T15, T15_SIZE + 3072)
    assert isinstance(too_long, Damage) and "longer than the tape" in too_long.message
    no_index = validate_superblock(T15, 4096 + 100)
    assert isinstance(no_index, Damage) and "index copies" in no_index.message
    listed = validate_superblock([T15], T15_SIZE)
    assert isinstance(listed, Damage) and "expected an object" in listed.message


def _superblock_value_valid(key: str, value: Any) -> bool:
    """Independent oracle: which single-key changes of T15 still describe that tape."""
    if key not in T15:
        return True  # unknown keys are ignored
    if key == "length_name":
        return type(value) is str and 0 < len(value) <= 16 and value.isprintable()
    return type(value) is type(T15[key]) and value == T15[key]


@settings(max_examples=400)
@given(key=st.sampled_from([*T15, "extra"]), value=json_values)
def test_superblock_every_field_any_value(key: str, value: Any) -> None:
    result = validate_superblock({**T15, key: value}, T15_SIZE)
    assert _is_damage_or(Superblock, result)
    assert isinstance(result, Superblock) == _superblock_value_valid(key, value), result
    if isinstance(result, Superblock):
        assert (result.standard, result.slots) == ("ntsc", 54000)


@given(key=st.sampled_from(list(T15)))
def test_superblock_missing_field(key: str) -> None:
    meta = {k: v for k, v in T15.items() if k != key}
    result = validate_superblock(meta, T15_SIZE)
    assert isinstance(result, Superblock) == (key == "index_size")


@given(meta=json_values, size=st.integers(-1, 2**64))
def test_superblock_any_json_never_raises(meta: Any, size: int) -> None:
    assert _is_damage_or(Superblock, validate_superblock(meta, size))


@given(data=st.binary(max_size=300), size=st.integers(0, 2**40))
def test_superblock_any_bytes_never_raise(data: bytes, size: int) -> None:
    assert _is_damage_or(Superblock, parse_superblock(data, size))
    assert _is_damage_or(Superblock, parse_superblock(image.MAGIC + data, size))


@given(data=st.data())
def test_superblock_byte_flips(data: st.DataObject) -> None:
    raw = bytearray(Superblock.new("pal", "E-30").to_bytes())
    end = raw.index(b"\0")
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, end))] = data.draw(st.integers(0, 255))
    result = parse_superblock(bytes(raw), data.draw(st.integers(0, 2**40)))
    assert _is_damage_or(Superblock, result)


# -- the index -------------------------------------------------------------------------

SLOTS = 54000


@st.composite
def valid_states(draw: st.DrawFn) -> IndexState:
    """Index states the cassette can write: recordings in order, inside the tape."""
    recordings = []
    at = 0
    for _ in range(draw(st.integers(0, 5))):
        start = at + draw(st.integers(0, 100))
        fields = draw(st.integers(0, 1000))
        if start + fields > SLOTS:
            break
        blocks = draw(st.none() | st.lists(
            st.tuples(st.integers(0, 10000), st.integers(1, 50)), max_size=3))
        if blocks is not None and sum(s * c for s, c in blocks) > max(fields, 1) * 3068:
            blocks = []
        recordings.append(Recording(
            start, fields, draw(st.sampled_from(["nls", "phe", "nhr"])),
            draw(st.sampled_from(["3.102", "3.101", "3.3", "auto"])),
            draw(st.none() | st.integers(0, fields * 3068)),
            None if blocks is None else tuple(blocks), draw(st.booleans()),
            draw(st.sampled_from(["medium", "record", "recovered"]))))
        at = start + fields
    open_at = draw(st.none() | st.integers(at, SLOTS - 1))
    return IndexState(tuple(recordings),
                      None if open_at is None else OpenRecording(open_at, "nhs", "3.102"),
                      draw(st.booleans()),
                      (("passes", draw(st.integers(0, 10**6))),
                       ("fields", draw(st.integers(0, 10**9)))))


def _holds_invariants(state: IndexState) -> bool:
    """Independent oracle of a loadable index: what the rest of the product relies on."""
    end = 0
    for r in state.recordings:
        if not (end <= r.start and r.fields >= 0 and r.start + r.fields <= SLOTS):
            return False
        if r.user_bytes is not None and not 0 <= r.user_bytes <= r.fields * 3068:
            return False
        if r.blocks is not None and any(s < 0 or c < 1 for s, c in r.blocks):
            return False
        end = r.start + r.fields
    if state.open is not None and not 0 <= state.open.start < SLOTS:
        return False
    return all(type(v) is int and v >= 0 for _, v in state.wear)


@given(state=valid_states())
def test_index_round_trips(state: IndexState) -> None:
    copy = image.encode_index(state, 7)
    decoded = image.decode_index_copy(copy)
    assert not isinstance(decoded, Damage)
    assert decoded[0] == 7
    assert validate_index(decoded[1], SLOTS) == state


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document a value sits (keys and list indexes)."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _replaced(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    doc = json.loads(json.dumps(doc))
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


@settings(max_examples=400)
@given(state=valid_states(), data=st.data())
def test_index_every_field_any_value(state: IndexState, data: st.DataObject) -> None:
    doc = state.to_json()
    path = data.draw(st.sampled_from(_paths(doc)))
    value = data.draw(json_values | st.integers(-2, SLOTS + 2))
    result = validate_index(_replaced(doc, path, value), SLOTS)
    assert _is_damage_or(IndexState, result)
    if isinstance(result, IndexState):  # a correct load: sound, and stable when rewritten
        assert _holds_invariants(result)
        assert validate_index(result.to_json(), SLOTS) == result


@given(doc=json_values, slots=st.integers(0, SLOTS))
def test_index_any_json_never_raises(doc: Any, slots: int) -> None:
    assert _is_damage_or(IndexState, validate_index(doc, slots))


def test_index_damage_is_named() -> None:
    state = IndexState((Recording(0, 10, "nls", user_bytes=5, blocks=((5, 1),)),),
                       OpenRecording(10, "nls"))
    doc = state.to_json()
    cases = [
        (("open", "start"), 10**15, "open: start is 1000000000000000, expected 0..53999"),
        (("recordings", 0, "mode"), "xyz", "recordings[0]: mode is 'xyz'"),
        (("recordings", 0, "start"), SLOTS - 5, "ends past the end of the tape"),
        (("recordings", 0, "blocks", 0), [5, 0], "recordings[0].blocks[0] is [5, 0]"),
        (("recordings",), {"0": 1}, "recordings is an object of 1 keys, expected list"),
        (("wear", "passes"), -1, "wear: passes is -1"),
        ((), [1, 2], "expected an object"),
    ]
    for path, value, message in cases:
        result = validate_index(_replaced(doc, path, value), SLOTS)
        assert isinstance(result, Damage) and message in result.message, (path, result)


def test_index_copy_damage() -> None:
    copy = bytearray(image.encode_index(IndexState(), 3))
    assert isinstance(image.decode_index_copy(bytes(copy)), tuple)
    copy[-1] ^= 1
    assert isinstance(image.decode_index_copy(bytes(copy)), Damage)  # torn: CRC
    bomb = zlib.compress(b"[" + b" " * (image.MAX_INDEX_JSON + 10) + b"]", 9)
    forged = image.INDEX_HEADER.pack(image.INDEX_MAGIC, 9, len(bomb), zlib.crc32(bomb)) + bomb
    result = image.decode_index_copy(forged)
    assert isinstance(result, Damage) and "bounded size" in result.message
    deep = zlib.compress(b"[" * 100000 + b"]" * 100000)
    forged = image.INDEX_HEADER.pack(image.INDEX_MAGIC, 9, len(deep), zlib.crc32(deep)) + deep
    assert isinstance(image.decode_index_copy(forged), Damage)


def test_newest_intact_copy_wins_and_a_forged_one_is_reported() -> None:
    old = image.encode_index(IndexState(write_protected=True), 4)
    new = image.encode_index(IndexState(), 5)
    picked = image.pick_index([old, new], SLOTS)
    assert not isinstance(picked, Damage) and picked[0] == 5
    torn = new[:-3] + b"xyz"
    picked = image.pick_index([old, torn], SLOTS)
    assert not isinstance(picked, Damage) and picked == (4, IndexState(write_protected=True))
    payload = zlib.compress(b'{"open": {"start": -1, "mode": "nls"}}')
    forged = image.INDEX_HEADER.pack(image.INDEX_MAGIC, 6, len(payload),
                                     zlib.crc32(payload)) + payload
    picked = image.pick_index([old, forged], SLOTS)
    assert isinstance(picked, Damage) and "open: start is -1" in picked.message
    assert isinstance(image.pick_index([], SLOTS), Damage)


def test_recordings_past_the_end_of_a_truncated_file() -> None:
    recs = [Recording(0, 10, "nls"), Recording(10, 0, "nls"), Recording(10, 5, "nls"),
            Recording(20, 5, "nls")]
    full = image.DATA_OFFSET + SLOTS * image.SLOT_SIZE
    assert image.recordings_past_end(recs, full) == ()
    assert image.recordings_past_end(recs, image.DATA_OFFSET + 15 * image.SLOT_SIZE) == (3,)
    assert image.recordings_past_end(recs, image.DATA_OFFSET + 14 * image.SLOT_SIZE + 3000) \
        == (2, 3)
    assert image.recordings_past_end(recs, 100) == (0, 2, 3)
    text = image.describe_past_end(recs, (2, 3), full - 1, SLOTS)
    assert text is not None and "recordings 2..3 lie" in text and f"of {SLOTS}" in text
    assert image.describe_past_end(recs, (), full, SLOTS) is None


def test_deeply_nested_values_are_described_not_printed() -> None:
    nested = json.loads("[" * 900 + "]" * 900)  # as deep as a JSON parser goes
    result = validate_index({"recordings": [nested]}, SLOTS)
    assert isinstance(result, Damage)
    assert result.message == "cassette index: recordings[0]: expected an object, got a list " \
        "of 1 items"


@pytest.mark.parametrize(
    ("kind", "refused_as"),
    [(stat.S_IFDIR, "a directory"), (stat.S_IFLNK, "a symbolic link"),
     (stat.S_IFCHR, "a device node"), (stat.S_IFBLK, "a device node"),
     (stat.S_IFIFO, "a FIFO"), (stat.S_IFSOCK, "a socket")],
)
def test_only_regular_files_are_replaced(kind: int, refused_as: str) -> None:
    for force in (False, True):
        refusal = image.replace_refusal(kind | 0o644, force)
        assert refusal == f"is {refused_as}: refusing to replace it with a cassette image"
    assert image.replace_refusal(None, False) is None
    assert image.replace_refusal(stat.S_IFREG | 0o600, True) is None
    assert "--force" in (image.replace_refusal(stat.S_IFREG | 0o600, False) or "")

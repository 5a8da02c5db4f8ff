"""Decoding every stored tape vector gives back the recorded input (by SHA-256)."""

from __future__ import annotations

import hashlib
import json
import lzma
from functools import cache
from pathlib import Path

import pytest

from backerd.format.player import EndOfRecord, FormatDetected, Player, SectorLost

DATA = Path(__file__).resolve().parents[1] / "data"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
TAPES = [e for e in MANIFEST if e["tape"]]
CLEAN = [e for e in TAPES if "noise" not in e]


@cache
def tape(name: str) -> bytes:
    return lzma.decompress((DATA / name).read_bytes())


def expected_input(entry: dict) -> bytes:
    assert entry["input"]["kind"] == "mod251"
    return bytes(i % 251 for i in range(entry["input"]["length"]))


def decode(entry: dict, fmt: str = "auto", chunk: int = 1 << 16):
    player = Player(entry["mode"], fmt, bkrenhanced=entry.get("outer_code") == "bkrenhanced")
    raw = tape(entry["tape"])
    outs = [player.feed(raw[i : i + chunk]) for i in range(0, len(raw), chunk)]
    outs.append(player.finish())
    data = b"".join(o.data for o in outs)
    events = [e for o in outs for e in o.events]
    return player, data, events, any(o.end_of_record for o in outs)


def test_manifest_has_every_format():
    assert {e["format"] for e in CLEAN} == {"3.102", "3.101", "3.3"}
    assert any(e.get("outer_code") == "bkrenhanced" for e in CLEAN)


@pytest.mark.parametrize("entry", CLEAN, ids=[e["name"] for e in CLEAN])
def test_clean_vector_decodes(entry):
    player, data, events, ended = decode(entry)
    assert hashlib.sha256(data).hexdigest() == entry["decoded_sha256"]
    assert data == expected_input(entry)
    assert ended
    assert player.fmt == entry["format"]
    assert FormatDetected(entry["format"]) in events
    assert EndOfRecord(len(data)) in events
    assert not [e for e in events if isinstance(e, SectorLost)]
    assert player.stats.bad_sectors == 0
    assert player.stats.byte_errors == 0
    assert player.stats.worst_key == player.stats.key_length
    # The record ends inside the stream, after the data and before its end.
    assert 0 < player.raw_consumed <= len(tape(entry["tape"]))


@pytest.mark.parametrize("entry", CLEAN, ids=[e["name"] for e in CLEAN])
def test_forced_format_decodes(entry):
    _, data, events, _ = decode(entry, fmt=entry["format"])
    assert hashlib.sha256(data).hexdigest() == entry["decoded_sha256"]
    assert not [e for e in events if isinstance(e, FormatDetected)]


def test_bkrenhanced_off_delivers_the_bare_sector_layer():
    entry = next(e for e in CLEAN if e.get("outer_code") == "bkrenhanced")
    player = Player(entry["mode"])
    raw = tape(entry["tape"])
    data = player.feed(raw).data + player.finish().data
    # The bare layer holds the whole outer-code group (255 sectors of C bytes, parity
    # first), so it is longer than the input and does not equal it.
    assert len(data) == 255 * 716
    assert data != expected_input(entry)


ODD_CHUNKS = [
    (name, chunk)
    for name in ["3.102-nls-m827", "3.102-phe-m1000", "3.102-nle-m168257", "3.101-nhs-m1000",
                 "3.3-ple-m1000", "3.3-nle-bkrenhanced-m1000"]
    for chunk in [4096 + 3, 250_001]
] + [("3.102-nls-m827", 997), ("3.3-ple-m1000", 997)]


@pytest.mark.parametrize(("name", "chunk"), ODD_CHUNKS)
def test_odd_chunk_sizes_give_identical_results(name, chunk):
    entry = next(e for e in CLEAN if e["name"] == name)
    ref_player, ref, ref_events, _ = decode(entry, chunk=1 << 30)
    player, data, events, ended = decode(entry, chunk=chunk)
    assert data == ref
    assert events == ref_events
    assert ended
    assert player.raw_consumed == ref_player.raw_consumed
    assert player.stats.as_dict() == ref_player.stats.as_dict()


def test_feeding_after_the_end_of_record_is_ignored():
    entry = next(e for e in CLEAN if e["name"] == "3.102-nls-m1000")
    raw = tape(entry["tape"])
    player = Player("nls")
    out = player.feed(raw)
    assert out.end_of_record
    assert player.feed(raw).data == b""
    assert player.finish().data == b""

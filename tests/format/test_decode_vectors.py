"""Decoding every stored tape vector gives back the recorded input (by SHA-256)."""

from __future__ import annotations

import hashlib
import json
import lzma
from functools import cache
from pathlib import Path

import numpy as np
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


# ---------------------------------------------------------------------------- the command
def backerd_decode(args: list[str], stdin: bytes):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "backerd", "decode", *args], input=stdin,
                          capture_output=True, check=False)


def entry_named(name: str) -> dict:
    return next(e for e in TAPES if e["name"] == name)


def test_cli_decodes_a_vector():
    entry = entry_named("3.3-nle-bkrenhanced-m1000")
    done = backerd_decode(["--mode", "nle", "--bkrenhanced"], tape(entry["tape"]))
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(done.stdout).hexdigest() == entry["decoded_sha256"]
    assert b"Bad Sectors" in done.stderr and b"3.3" in done.stderr


def test_cli_json_statistics_and_lost_ranges():
    entry = entry_named("3.102-nle-m100000-noise-e2-w21")
    done = backerd_decode(["--mode", "nle", "--json"], tape(entry["tape"]))
    assert done.returncode == 4  # MediumError: not every byte recovered
    report = json.loads(done.stderr.decode().splitlines()[0])
    assert report["format"] == "3.102" and report["end_of_record"]
    assert report["user_bytes"] == len(done.stdout) == 100_000
    assert report["lost"] and report["statistics"]["lost_sectors"] >= len(report["lost"])
    expected = expected_input(entry)
    good = np.ones(len(expected), bool)
    for r in report["lost"]:
        good[r["offset"] : r["offset"] + r["length"]] = False
    got = np.frombuffer(done.stdout, np.uint8)
    assert np.array_equal(got[good], np.frombuffer(expected, np.uint8)[good])
    assert "could not be recovered" in done.stderr.decode().splitlines()[-1]


def test_cli_strict_stops_at_the_damage():
    entry = entry_named("3.102-phe-m100000-noise-e2-w21")
    done = backerd_decode(["--mode", "phe", "--strict"], tape(entry["tape"]))
    assert done.returncode == 4
    assert 0 < len(done.stdout) < 100_000
    assert done.stdout == expected_input(entry)[: len(done.stdout)]
    assert done.stderr.decode().splitlines()[-1].startswith("backerd decode: unrecoverable")


@pytest.mark.parametrize(
    ("args", "stdin", "status", "message"),
    [
        (["--mode", "xyz"], b"", 2, "unknown mode"),
        (["--mode", "nls"], b"", 3, "empty"),
        (["--mode", "nls"], bytes(range(256)) * 4000, 3, "no signal"),
        (["--mode", "nhs"], "3.102-nls-m1000.raw.xz", 3, "looks like mode nls"),
        (["--mode", "nls", "--format", "3.3"], "3.102-nls-m1000.raw.xz", 3, "looks like mode nls"),
        (["--mode", "pls"], "3.102-pls-m977.raw.xz:200000", 3, "truncated stream"),
    ],
)
def test_cli_one_line_errors(args, stdin, status, message):
    if isinstance(stdin, str):
        name, _, cut = stdin.partition(":")
        stdin = tape(name)[: int(cut)] if cut else tape(name)
    done = backerd_decode(args, stdin)
    assert done.returncode == status
    last = done.stderr.decode().strip().splitlines()[-1]
    assert last.startswith("backerd decode: ") and message in last
    assert "Traceback" not in done.stderr.decode()

"""The 3.102 writer against the original's streams (tests/data/manifest.json, spec 15/16)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from backerd.format.params import FORMATTED_MODES, mode
from backerd.format.recorder import Recorder, encode_recording

DATA = Path(__file__).resolve().parents[1] / "data"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
# Every clean 3.102 entry, including those without a tape file (only the hash is stored).
ENTRIES = [e for e in MANIFEST if e["format"] == "3.102" and "noise" not in e["name"]]


def mod251(length: int) -> bytes:
    return (bytes(range(251)) * (length // 251 + 1))[:length]


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def test_manifest_covers_every_mode() -> None:
    assert {e["mode"] for e in ENTRIES} == set(FORMATTED_MODES)
    assert all(e["input"]["kind"] == "mod251" for e in ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_encoder_reproduces_manifest_stream(entry: dict) -> None:
    raw = encode_recording(mod251(entry["input"]["length"]), entry["mode"])
    assert len(raw) == entry["tape_length"]
    assert sha(raw) == entry["tape_sha256"]


# Spec section 16: output bytes for 32 MiB of input (a length check of the whole pipeline).
SPEC_16_32MIB = {
    "nls": 41557776, "nhs": 40367340, "pls": 42309600, "phs": 40070900,
    "nle": 52079040, "nhe": 51333750, "ple": 50764200, "phe": 49916300,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["nls", "phe"])
def test_output_length_for_32_mib(name: str) -> None:
    rec = Recorder(name)
    total = 0
    chunk = bytes(1 << 20)
    for _ in range(32):
        total += len(rec.write(chunk))
    total += len(rec.close())
    assert total == SPEC_16_32MIB[name]


# Chunkings that straddle sector (C) and group (Cg) boundaries in every mode.
CHUNKS = [1, 0, 3, 825, 826, 827, 2155, 4096, 7, 65537, 1]


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e["input"]["length"] >= 1000],
                         ids=lambda e: e["name"])
def test_odd_chunk_sizes_give_the_same_stream(entry: dict) -> None:
    data = mod251(entry["input"]["length"])
    rec = Recorder(entry["mode"])
    parts, pos, i = [], 0, 0
    while pos < len(data):
        size = CHUNKS[i % len(CHUNKS)]
        parts.append(rec.write(data[pos : pos + size]))
        pos += size
        i += 1
    parts.append(rec.close())
    raw = b"".join(parts)
    assert sha(raw) == entry["tape_sha256"]
    g = mode(entry["mode"]).geometry
    assert rec.fields_emitted % 2 == 0
    assert sum(g.field_length(i) for i in range(rec.fields_emitted)) == len(raw)


# ---------------------------------------------------------------- backerd encode
def backerd(*args: str, data: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backerd", "encode", *args], input=data,
        capture_output=True, check=False, timeout=120,
    )


@pytest.mark.parametrize("name", ["nhs", "ple"])
def test_encode_command_matches_manifest(name: str) -> None:
    entry = next(e for e in ENTRIES if e["mode"] == name and e["input"]["length"] == 100000)
    proc = backerd("--mode", name, data=mod251(100000))
    assert proc.returncode == 0 and proc.stderr == b""
    assert sha(proc.stdout) == entry["tape_sha256"]


@pytest.mark.parametrize(
    "name", ["3.101-nls-m1000", "3.3-phe-m1000", "3.101-nle-bkrenhanced-m1000"]
)
def test_encode_command_writes_old_formats_as_their_bkrencode(name: str) -> None:
    entry = next(e for e in MANIFEST if e["name"] == name)
    extra = ["--bkrenhanced"] if entry.get("outer_code") == "bkrenhanced" else []
    proc = backerd("--mode", entry["mode"], "--format", entry["format"], *extra,
                   data=mod251(entry["input"]["length"]))
    assert proc.returncode == 0 and proc.stderr == b""
    assert len(proc.stdout) == entry["tape_length"]
    assert sha(proc.stdout) == entry["tape_sha256"]


def test_encode_command_streams_large_input_in_chunks() -> None:
    data = mod251(3 << 20)
    proc = backerd("--mode", "nle", data=data)
    assert proc.returncode == 0
    assert sha(proc.stdout) == sha(encode_recording(data, "nle"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "xyz"], b"unknown mode 'xyz'"),
        (["--mode", "nlr", "--format", "3.101"], b"raw mode nlr has no format"),
        (["--mode", "nle", "--bkrenhanced"], b"--bkrenhanced is for formats 3.101 and 3.3"),
        (["--mode", "nls", "--format", "3.3", "--bkrenhanced"], b"EP modes only"),
        (["--mode", "nls", "--format", "4.0"], b"unknown format"),
    ],
)
def test_encode_command_errors_are_one_line(args: list[str], message: bytes) -> None:
    proc = backerd(*args, data=b"abc")
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert message in proc.stderr and proc.stderr.count(b"\n") == 1
    assert proc.stderr.startswith(b"backerd encode: ")

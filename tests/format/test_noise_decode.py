"""Damaged streams: the stored noise vectors and fresh noise of the same model."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import lzma
from pathlib import Path

import numpy as np
import pytest

from backerd.format.params import FORMATTED_MODES, mode
from backerd.format.player import EndOfRecord, Player, SectorLost
from backerd.format.recorder import encode_recording

DATA = Path(__file__).resolve().parents[1] / "data"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
NOISY = [e for e in MANIFEST if e["tape"] and "noise" in e]


def _noise_module():
    spec = importlib.util.spec_from_file_location("backer_noise", DATA / "noise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


noise = _noise_module()


def mod251(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


def play(name: str, raw: bytes, chunk: int = 1 << 18):
    player = Player(name)
    outs = [player.feed(raw[i : i + chunk]) for i in range(0, len(raw), chunk)]
    outs.append(player.finish())
    data = b"".join(o.data for o in outs)
    events = [e for o in outs for e in o.events]
    return player, data, events


def check_damage_report(out: bytes, expected: bytes, events: list) -> list[SectorLost]:
    """Output keeps every byte's place; all bytes outside the lost ranges are right."""
    lost = [e for e in events if isinstance(e, SectorLost)]
    assert len(out) == len(expected)
    keep = np.ones(len(expected), bool)
    for e in lost:
        assert e.offset >= 0 and e.offset + e.length <= len(expected)
        keep[e.offset : e.offset + e.length] = False
    a, b = np.frombuffer(out, np.uint8), np.frombuffer(expected, np.uint8)
    assert np.array_equal(a[keep], b[keep])
    return lost


def test_stored_noise_cases_cover_both_outcomes():
    assert {e["recoverable"] for e in NOISY} == {True, False}


@pytest.mark.parametrize("entry", NOISY, ids=[e["name"] for e in NOISY])
def test_stored_noise_vector(entry):
    raw = lzma.decompress((DATA / entry["tape"]).read_bytes())
    expected = mod251(entry["input"]["length"])
    player, out, events = play(entry["mode"], raw)
    assert events[-1] == EndOfRecord(len(expected))
    if entry["recoverable"]:
        assert hashlib.sha256(out).hexdigest() == entry["decoded_sha256"]
        assert not [e for e in events if isinstance(e, SectorLost)]
        return
    lost = check_damage_report(out, expected, events)
    assert lost, "an unrecoverable case must report what it lost"
    # Each lost range is one data sector (or its part before the end of the data),
    # and no more than the wiped fields of the group could cost.
    cap = mode(entry["mode"]).capacity
    assert all(e.length <= cap for e in lost)
    assert len(lost) <= entry["noise"]["wiped_fields_per_group"]
    # Everything recoverable was recovered: far more than the original decoder managed.
    assert sum(e.length for e in lost) < len(expected) // 4


SP = [m for m in FORMATTED_MODES if mode(m).codec == "sp"]
EP = [m for m in FORMATTED_MODES if mode(m).codec == "ep"]


@pytest.mark.parametrize("name", SP)
@pytest.mark.parametrize("seed", ["a", "b"])
def test_fresh_sp_noise_within_capacity(name, seed):
    # Five byte errors per field can never exceed five in one codeword.
    payload = mod251(25 * mode(name).capacity + 11)
    raw = noise.apply_noise(name, encode_recording(payload, name), f"{name}-{seed}", errors=5)
    player, out, events = play(name, raw)
    assert out == payload
    assert not [e for e in events if isinstance(e, SectorLost)]
    assert player.stats.byte_errors > 0
    assert player.stats.worst_block <= 5


@pytest.mark.parametrize("name", EP)
def test_fresh_ep_noise_and_wipes_within_capacity(name):
    payload = mod251(mode(name).group_capacity + 999)  # two groups
    raw = noise.apply_noise(name, encode_recording(payload, name), f"{name}-w", errors=2,
                            wipe=16)
    player, out, events = play(name, raw)
    assert out == payload
    assert not [e for e in events if isinstance(e, SectorLost)]
    assert player.stats.lost_sectors >= 16


@pytest.mark.parametrize("name", ["nle", "phe"])
def test_fresh_ep_wipes_beyond_capacity_lose_only_wiped_data(name):
    payload = mod251(mode(name).group_capacity + 999)
    raw = noise.apply_noise(name, encode_recording(payload, name), f"{name}-x", errors=1,
                            wipe=24)
    _, out, events = play(name, raw)
    lost = check_damage_report(out, payload, events)
    assert lost
    assert len(lost) <= 24 + 1  # the partial second group has no wipes


@pytest.mark.parametrize("name", ["nls", "phs", "nhe", "ple"])
def test_noise_in_leader_and_trailer_too(name):
    # noise.py touches the active region only; real tapes are noisy everywhere.
    payload = mod251(4 * mode(name).capacity)
    raw = bytearray(encode_recording(payload, name))
    rng = np.random.default_rng(3)
    where = rng.choice(len(raw), len(raw) // 400, replace=False)
    arr = np.frombuffer(raw, np.uint8).copy()
    arr[where] ^= rng.integers(1, 256, where.size, dtype=np.uint8)
    player, out, events = play(name, arr.tobytes())
    assert out == payload
    assert not [e for e in events if isinstance(e, SectorLost)]


@pytest.mark.parametrize("name", ["nhs", "phe"])
def test_slips_and_noise_together(name):
    p = mode(name)
    payload = mod251(20 * p.capacity if p.codec == "sp" else 5000)
    raw = noise.apply_noise(name, encode_recording(payload, name), f"{name}-s", errors=2)
    g = p.geometry
    bpl = g.bytes_per_line
    offs, off, i = [], 0, 0
    while off < len(raw):
        offs.append(off)
        off += g.field_size + (g.interlace if i % 2 == 0 else 0)
        i += 1
    rng = np.random.default_rng(8)
    out = raw
    for k, f in enumerate(range(len(offs) - 3, 4, -4)):
        at = offs[f] + p.leader + bpl * int(rng.integers(0, p.active // bpl))
        out = out[:at] + out[at + bpl :] if k % 2 else out[: at + bpl] + out[at:]
    player, got, events = play(name, out)
    assert got == payload
    assert not [e for e in events if isinstance(e, SectorLost)]
    assert player.stats.line_slips > 0


@pytest.mark.parametrize(("name", "burst"), [("nls", 60), ("pls", 80), ("nle", 60),
                                             ("nhe", 130), ("phe", 140), ("nhs", 120)])
def test_dropout_bursts_beyond_errors_only_correction(name, burst):
    # A burst of random bytes in every field; per codeword it holds more errors than
    # errors-only decoding corrects, so only erasing around the keys it took helps.
    p = mode(name)
    sector_bytes = burst * 8 // 9 if p.codec == "ep" else burst
    assert sector_bytes / p.interleave > p.parity_per_codeword / 2
    payload = mod251(30 * p.capacity if p.codec == "sp" else 30_000)
    raw = encode_recording(payload, name)
    g = p.geometry
    arr = np.frombuffer(raw, np.uint8).copy()
    rng = np.random.default_rng(burst)
    off, i = 0, 0
    while off + g.field_size <= len(arr):
        at = off + p.leader + int(rng.integers(0, p.active - burst))
        arr[at : at + burst] = rng.integers(0, 256, burst, dtype=np.uint8)
        off += g.field_size + (g.interlace if i % 2 == 0 else 0)
        i += 1
    player, out, events = play(name, arr.tobytes())
    assert out == payload
    assert not [e for e in events if isinstance(e, SectorLost)]
    assert player.stats.erasures_used > 0


@pytest.mark.parametrize(
    ("fmt", "name", "bkrenhanced", "errors", "wipe"),
    [("3.101", "nls", False, 5, 0), ("3.3", "phs", False, 3, 0), ("3.3", "ple", False, 3, 0),
     ("3.101", "nle", True, 2, 12), ("3.3", "phe", True, 2, 12)],
)
def test_old_formats_with_noise(fmt, name, bkrenhanced, errors, wipe):
    from backerd.format.legacy import encode_recording as encode_legacy

    payload = mod251(300_000 if bkrenhanced else 40_000)
    raw = encode_legacy(payload, name, fmt, bkrenhanced=bkrenhanced)
    noisy = noise.apply_noise(name, raw, f"{fmt}-{name}", errors=errors, wipe=wipe)
    player = Player(name, bkrenhanced=bkrenhanced)
    out = player.feed(noisy).data + player.finish().data
    assert player.fmt == fmt
    assert out == payload
    assert player.ended
    assert player.stats.byte_errors > 0


def _slip(raw: bytes, at: int, bpl: int, drop: bool) -> bytes:
    return raw[:at] + raw[at + bpl :] if drop else raw[: at + bpl] + raw[at:]


@pytest.mark.parametrize("name", ["nls", "nhs", "phs", "nle", "phe"])
@pytest.mark.parametrize("keys_apart", [0.5, 1, 1.5, 2, 3, 5])
@pytest.mark.parametrize(
    "kinds", [(True, False), (False, True), (True, True), (False, False)],
    ids=["drop-repeat", "repeat-drop", "drop-drop", "repeat-repeat"],
)
def test_two_line_slips_a_few_keys_apart(name, keys_apart, kinds):
    """Two slips in one field, from half a key interval to five apart: cancelling
    (the keys between fit another line) or the same way (a two-line step with keys at
    the middle shift). Every sector must be recovered."""
    p = mode(name)
    bpl, ki = p.geometry.bytes_per_line, p.key_interval
    data = np.random.default_rng(7).integers(0, 256, 60 * p.capacity, dtype=np.uint8).tobytes()
    raw = encode_recording(data, name)
    # Field starts of the clean stream: every field is one sector (spec 8).
    sizes = np.full(2 * len(raw) // p.geometry.frame_size + 2, p.geometry.field_size)
    sizes[0::2] += p.geometry.interlace
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rng = np.random.default_rng(int(keys_apart * 10) + 3 * kinds[0] + kinds[1])
    lines = p.active // bpl
    gap = int(keys_apart * ki) // bpl * bpl + bpl
    out = raw
    damaged = range(p.n_bor + 4, p.n_bor + 40, 4)
    for f in reversed(damaged):
        at = int(offsets[f]) + p.leader + int(rng.integers(1, lines - gap // bpl - 2)) * bpl
        out = _slip(out, at + gap, bpl, kinds[1])
        out = _slip(out, at, bpl, kinds[0])
    player, got, events = play(name, out)
    assert got == data
    assert player.stats.lost_sectors == 0 and player.stats.bad_sectors == 0

"""Partial sectors: a sector whose header decoded but one data codeword did not
delivers the other codewords' bytes and reports only the failed codeword's bytes lost,
through the Player and `backerd decode --json`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from backerd.format.decode_options import DEFAULT, DecoderOptions
from backerd.format.legacy import encode_recording as encode_legacy
from backerd.format.params import mode
from backerd.format.player import Player, SectorLost
from backerd.format.recorder import encode_recording
from backerd.format.sync import FieldSync

SECTOR = 2  # the damaged data sector


def field_start(name: str, fmt: str, raw_len: int, index: int) -> int:
    g = mode(name, fmt).geometry
    sizes = np.full(index + 1, g.field_size)
    sizes[0::2] += g.interlace
    return int(sizes[:index].sum())


def wreck_codeword(name: str, fmt: str, raw: bytes, codeword: int) -> bytes:
    """t + 1 byte errors in one codeword of data sector SECTOR (beyond the code)."""
    p = mode(name, fmt)
    start = field_start(name, fmt, len(raw), p.n_bor + SECTOR) + p.leader
    pos = FieldSync(p).payload_pos
    q = codeword + np.arange(0, p.parity_per_codeword // 2 + 1) * 3 * p.interleave
    arr = np.frombuffer(raw, np.uint8).copy()
    arr[start + pos[q]] ^= 0xA5
    return arr.tobytes()


def play(name: str, fmt: str, raw: bytes, options: DecoderOptions = DEFAULT):
    player = Player(name, fmt, options=options)
    a, b = player.feed(raw), player.finish()
    return player, a.data + b.data, [e for e in a.events + b.events if isinstance(e, SectorLost)]


def lost_mask(events, size: int) -> np.ndarray:
    mask = np.zeros(size, bool)
    for e in events:
        mask[e.offset : e.offset + e.length] = True
    return mask


def expected_loss(name: str, fmt: str, codeword: int, size: int) -> np.ndarray:
    """User bytes of the codeword, from the layout of spec 6.4 / 11.1."""
    p = mode(name, fmt)
    cap = p.capacity
    j = np.arange(cap)
    in_cw = (j // p.rs_k == codeword) if fmt != "3.102" else (j % p.interleave == codeword)
    mask = np.zeros(size, bool)
    mask[SECTOR * cap : (SECTOR + 1) * cap] = in_cw
    return mask


@pytest.mark.parametrize(("fmt", "name", "codeword"),
                         [("3.102", "nhs", 3), ("3.102", "nls", 0), ("3.102", "pls", 9),
                          ("3.101", "nls", 2), ("3.3", "phs", 5)])
def test_one_failed_codeword_loses_only_its_bytes(fmt, name, codeword):
    p = mode(name, fmt)
    data = np.random.default_rng(4).integers(0, 256, 5 * p.capacity, np.uint8).tobytes()
    raw = encode_recording(data, name) if fmt == "3.102" else encode_legacy(data, name, fmt)
    noisy = wreck_codeword(name, fmt, raw, codeword)
    player, got, lost = play(name, fmt, noisy)
    want = expected_loss(name, fmt, codeword, len(data))
    assert lost_mask(lost, len(data)).tolist() == want.tolist()
    assert {e.sector for e in lost} == {SECTOR + (p.n_bor if fmt == "3.3" else 0)}
    a, b = np.frombuffer(got, np.uint8), np.frombuffer(data, np.uint8)
    assert np.array_equal(a[~want], b[~want])
    assert not a[want].any()  # lost bytes read as zeros, as a lost sector's
    assert player.stats.unrecovered_bytes == int(want.sum())
    # The original's granularity: the whole sector.
    _, got, lost = play(name, fmt, noisy, DecoderOptions(partial_sectors=False))
    assert [(e.offset, e.length) for e in lost] == [(SECTOR * p.capacity, p.capacity)]


def test_a_failed_header_codeword_loses_the_sector():
    name = "nhs"
    p = mode(name)
    data = np.random.default_rng(2).integers(0, 256, 5 * p.capacity, np.uint8).tobytes()
    noisy = wreck_codeword(name, "3.102", encode_recording(data, name), p.interleave - 1)
    _, got, lost = play(name, "3.102", noisy)
    assert [(e.sector, e.offset, e.length) for e in lost] == [
        (SECTOR, SECTOR * p.capacity, p.capacity)]


def test_decode_json_lists_the_lost_ranges():
    name, codeword = "nls", 4
    p = mode(name)
    data = np.random.default_rng(3).integers(0, 256, 4 * p.capacity, np.uint8).tobytes()
    noisy = wreck_codeword(name, "3.102", encode_recording(data, name), codeword)
    proc = subprocess.run([sys.executable, "-m", "backerd", "decode", "--mode", name, "--json"],
                          input=noisy, capture_output=True, check=False)
    assert proc.returncode != 0  # bytes were lost
    doc = json.loads(proc.stderr.decode().splitlines()[0])
    ranges = [(e["offset"], e["length"]) for e in doc["lost"]]
    want = [(SECTOR * p.capacity + j, 1) for j in range(codeword, p.capacity, p.interleave)]
    assert ranges == want
    assert len(proc.stdout) == len(data)

"""Field synchronisation: field positions, payloads, streaming, line-slip repair."""

from __future__ import annotations

import lzma
import zlib
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from backerd.format import frame
from backerd.format.params import mode
from backerd.format.stats import BatchStats, Statistics
from backerd.format.sync import FieldBatch, FieldSync

DATA = Path(__file__).resolve().parents[1] / "data"
CASES = [("3.102", "nls"), ("3.102", "nhs"), ("3.102", "pls"), ("3.102", "phe"),
         ("3.102", "nle"), ("3.101", "nhs"), ("3.101", "ple"), ("3.3", "nls"), ("3.3", "phe")]


@cache
def tape(fmt: str, name: str) -> bytes:
    return lzma.decompress((DATA / f"{fmt}-{name}-m1000.raw.xz").read_bytes())


def field_starts(fmt: str, name: str, length: int) -> list[int]:
    """Active-region starts of every field that lies wholly in the stream.

    Independent of the code under test: straight from the geometry table of the spec
    (field 0 odd, NTSC odd fields carry the extra half line).
    """
    p = mode(name, fmt)
    g = p.geometry
    starts, off, i = [], 0, 0
    while off + p.leader + p.active <= length:
        starts.append(off + p.leader)
        off += g.field_size + (g.interlace if i % 2 == 0 else 0)
        i += 1
    return starts


def sync_all(
    params, raw: bytes, chunk: int | None = None
) -> tuple[FieldBatch, FieldSync, Statistics]:
    """All fields, the synchroniser, and the key search statistics its batches give."""
    sync = FieldSync(params)
    chunk = chunk or len(raw) or 1
    parts = [sync.feed(raw[i : i + chunk]) for i in range(0, len(raw), chunk)]
    parts.append(sync.finish())
    stats = Statistics()
    stats.start_stream(params.parity_per_codeword, params.key_length,
                       params.geometry.frame_size)
    for part in parts:
        batch = BatchStats(fields=len(part), closest_non_key=part.closest_non_key)
        batch.note_key_search(part.start, part.matches, part.slips, 0)
        stats.apply(batch)
    return FieldBatch.concat(parts, params.payload), sync, stats


@pytest.mark.parametrize(("fmt", "name"), CASES)
def test_every_field_found_at_its_place(fmt, name):
    raw = tape(fmt, name)
    params = mode(name, fmt)
    fields, sync, stats = sync_all(params, raw)
    expected = field_starts(fmt, name, len(raw))
    assert fields.start.tolist() == expected
    assert (fields.matches == params.key_length).all()
    assert not fields.erasures.any() and not fields.suspect.any()
    assert stats.worst_key == params.key_length
    assert stats.framing_errors == 0
    g = params.geometry
    assert stats.smallest_field == g.field_size
    assert stats.largest_field == g.field_size + g.interlace
    # Payloads agree with the writer's own layout of the active region.
    arr = np.frombuffer(raw, np.uint8)
    active = arr[np.asarray(expected)[:, None] + np.arange(params.active)]
    assert np.array_equal(fields.payload, frame.extract_payload(params, active))


@pytest.mark.parametrize("chunk", [1, 7, 1013, 4099])
def test_chunking_does_not_change_the_fields(chunk):
    raw = tape("3.102", "nhs")[:120_000]
    params = mode("nhs")
    ref, _, _ = sync_all(params, raw)
    got, sync, stats = sync_all(params, raw, chunk)
    for name in ("start", "end", "payload", "erasures", "suspect", "matches", "slips"):
        assert np.array_equal(getattr(got, name), getattr(ref, name)), name
    assert sync.buffered == 0


def test_memory_stays_bounded():
    raw = tape("3.102", "phe")
    params = mode("phe")
    sync = FieldSync(params)
    most = 0
    for i in range(0, len(raw), 50_000):
        sync.feed(raw[i : i + 50_000])
        most = max(most, sync.buffered)
    # less than one field plus the slip margin plus the unconsumed part of a chunk
    assert most < 50_000 + params.geometry.field_size + 64


def test_noise_only_finds_nothing():
    rng = np.random.default_rng(7)
    raw = rng.integers(0, 256, 3_000_000, dtype=np.uint8).tobytes()
    params = mode("nls")
    fields, sync, stats = sync_all(params, raw, 65536)
    assert len(fields) == 0
    assert 0 < stats.closest_non_key < params.threshold
    assert sync.buffered == 0


def test_missing_field_is_a_framing_error():
    fmt, name = "3.102", "pls"
    raw = tape(fmt, name)
    params = mode(name, fmt)
    starts = field_starts(fmt, name, len(raw))
    cut_from, cut_to = starts[40] - params.leader, starts[41] - params.leader
    damaged = raw[:cut_from] + raw[cut_to:]
    fields, sync, stats = sync_all(params, damaged)
    assert len(fields) == len(starts) - 1
    # the field after the cut is where the cut put it; everything else found too
    assert stats.framing_errors == 0  # a cut field is not a gap
    wiped = bytearray(raw)
    wiped[starts[40] : starts[40] + params.active] = bytes(params.active)
    fields, sync, stats = sync_all(params, bytes(wiped))
    assert len(fields) == len(starts) - 1
    assert stats.framing_errors == 1
    assert stats.largest_field == 2 * params.geometry.field_size


def slip(raw: bytes, at: int, bpl: int, drop: bool) -> bytes:
    """Drop the video line starting at `at`, or repeat it."""
    return raw[:at] + raw[at + bpl :] if drop else raw[: at + bpl] + raw[at:]


@pytest.mark.parametrize(("fmt", "name"), CASES)
@pytest.mark.parametrize("drop", [True, False], ids=["dropped", "repeated"])
def test_line_slips_are_realigned(fmt, name, drop):
    raw = tape(fmt, name)
    params = mode(name, fmt)
    bpl = params.geometry.bytes_per_line
    clean, _, _ = sync_all(params, raw)
    starts = clean.start.tolist()
    lines = params.active // bpl
    rng = np.random.default_rng(zlib.crc32(f"{fmt} {name} {drop}".encode()))
    damaged_fields = list(range(3, len(starts) - 2, 5))
    # Work backwards so earlier offsets stay valid; cover the first and last lines too.
    picks = {f: int(rng.integers(0, lines)) for f in damaged_fields}
    picks[damaged_fields[0]] = 0
    picks[damaged_fields[1]] = lines - 1
    picks[damaged_fields[2]] = 1
    out = raw
    for f in reversed(damaged_fields):
        out = slip(out, starts[f] + picks[f] * bpl, bpl, drop)
    got, sync, stats = sync_all(params, out)
    assert len(got) == len(clean)
    wrong = (got.payload != clean.payload) & ~got.erasures
    assert not wrong.any(), np.flatnonzero(wrong.any(axis=1))
    slipped = np.zeros(len(clean), bool)
    slipped[damaged_fields] = True
    assert not got.erasures[~slipped].any()
    assert (got.slips[slipped] <= 1).all()
    # The erased span is local: at most a few key intervals, not the whole field.
    assert got.erasures.sum(axis=1).max() <= 3 * params.key_interval + 2 * bpl
    assert stats.line_slips == got.slips.sum()


def test_suspect_bytes_surround_a_damaged_key():
    raw = bytearray(tape("3.102", "nls"))
    params = mode("nls")
    starts = field_starts("3.102", "nls", len(raw))
    key5 = starts[10] + 5 * params.key_interval
    raw[key5] ^= 0xFF
    fields, _, _ = sync_all(params, bytes(raw))
    assert fields.matches[10] == params.key_length - 1
    sus = np.flatnonzero(fields.suspect[10])
    pos = frame.payload_positions(params)[sus]
    assert sus.size
    assert np.abs(pos - 5 * params.key_interval).max() <= params.geometry.bytes_per_line
    assert not np.delete(fields.suspect, 10, axis=0).any()


def test_rebase_numbers_the_stream_from_the_origin():
    raw = tape("3.102", "nls")
    params = mode("nls")
    ref, _, _ = sync_all(params, raw)
    sync = FieldSync(params)
    sync.rebase(10_000)
    got = FieldBatch.concat([sync.feed(raw), sync.finish()], params.payload)
    assert (got.start == ref.start + 10_000).all()
    with pytest.raises(ValueError):
        sync.rebase(0)


def test_a_deck_that_drops_every_half_line():
    # Some decks never deliver the odd field's half line: all fields are equally long.
    fmt, name = "3.102", "nhs"
    raw = tape(fmt, name)
    params = mode(name, fmt)
    g = params.geometry
    starts = field_starts(fmt, name, len(raw))
    offs = [s - params.leader for s in starts] + [len(raw)]
    cut = b"".join(raw[offs[i] : offs[i + 1] - (g.interlace if i % 2 == 0 else 0)]
                   for i in range(len(offs) - 1))
    ref, _, _ = sync_all(params, raw)
    got, sync, stats = sync_all(params, cut, 50_000)
    assert np.array_equal(got.payload, ref.payload)
    assert stats.smallest_field == stats.largest_field == g.field_size
    assert sync.played_lengths == (g.field_size, g.field_size)


def test_search_passing_a_stale_prediction():
    # Noise where the next field was predicted: the search runs past the prediction,
    # which must then be forgotten (found by a property test of the player).
    params = mode("nls")
    raw = bytearray(tape("3.102", "nls")[3:])
    raw[485 : 485 + 2248] = np.random.default_rng(0).integers(0, 256, 2248, np.uint8).tobytes()
    fields, _, _ = sync_all(params, bytes(raw), 500)
    ref, _, _ = sync_all(params, bytes(raw))
    assert np.array_equal(fields.start, ref.start)
    assert len(fields) > 300

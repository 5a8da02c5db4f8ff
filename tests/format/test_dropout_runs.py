"""Constant-level dropout runs as erasure hints (SP/LP has no other damage marker).

A dropout reads as a run of 0x00 or 0xFF. The hints must cost nothing on good tape
(such runs do not occur in randomised sector data) and must recover sectors whose
burst plus byte errors defeat errors-only decoding; reedsolo is the independent
oracle for the codeword arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest
import reedsolo
from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.format.decode_options import DecoderOptions
from backerd.format.inner_decode import DROPOUT_RUN, GUESS_SPARE, constant_runs
from backerd.format.legacy import encode_recording as encode_legacy
from backerd.format.params import mode
from backerd.format.player import Player, SectorLost
from backerd.format.recorder import encode_recording
from backerd.format.sync import FieldBatch, FieldSync

SP = ("nls", "nhs", "pls", "phs")


def naive_runs(row: np.ndarray, min_run: int) -> np.ndarray:
    out = np.zeros(row.size, bool)
    i = 0
    while i < row.size:
        j = i
        while j < row.size and row[j] == row[i]:
            j += 1
        if row[i] in (0x00, 0xFF) and j - i >= min_run:
            out[i:j] = True
        i = j
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0x00, 0xFF, 0x33, 0x5A]),
                          st.integers(1, 12)), min_size=1, max_size=30),
       st.integers(2, 8))
def test_constant_runs_against_a_naive_scan(pieces, min_run):
    row = np.concatenate([np.full(n, v, np.uint8) for v, n in pieces])
    rows = np.stack([row, row[::-1].copy()])
    got = constant_runs(rows, min_run)
    assert got[0].tolist() == naive_runs(row, min_run).tolist()
    assert got[1].tolist() == naive_runs(row[::-1], min_run).tolist()


def payloads(raw: bytes, name: str, fmt: str = "3.102") -> tuple[FieldSync, FieldBatch]:
    sync = FieldSync(mode(name, fmt))
    return sync, FieldBatch.concat([sync.feed(raw), sync.finish()], sync.payload_size)


@pytest.mark.parametrize("name", SP)
def test_no_run_of_the_threshold_in_clean_data_sectors(name):
    """The measurement behind DROPOUT_RUN: in randomised data a run of L equal bytes
    has probability 2 * 256^-L per byte; shorter runs do occur (headers of low sector
    numbers hold zero bytes), runs of the threshold do not, so a clean sector never
    carries a hint. (Empty BOR/EOR sectors of nhs carry equal parity bytes side by side;
    hints are only used for sectors that fail, so those cost nothing either.)"""
    p = mode(name)
    data = np.random.default_rng(5).integers(0, 256, 300 * p.capacity, np.uint8).tobytes()
    _, fields = payloads(encode_recording(data, name), name)
    numbers = np.arange(len(fields)) - p.n_bor
    data_rows = (numbers >= 0) & (numbers < 300)
    assert data_rows.sum() == 300
    assert not constant_runs(fields.payload[data_rows], DROPOUT_RUN).any()
    # Shorter runs are common enough to be seen at this size: the scan finds them.
    assert constant_runs(fields.payload[data_rows], 3).any()


def field_offsets(name: str, raw_len: int) -> np.ndarray:
    g = mode(name).geometry
    sizes = np.full(2 * raw_len // g.frame_size + 2, g.field_size)
    sizes[0::2] += g.interlace
    return np.concatenate([[0], np.cumsum(sizes)[:-1]])


def damage(name: str, fmt: str, raw: bytes, burst: int):
    """A zero burst between two keys of the third data field, plus byte errors in the
    codeword the burst hits most, so errors-only decoding fails but erasing the burst
    leaves enough parity. Returns the damaged stream and the field's clean payload."""
    p = mode(name, fmt)
    inter, t = p.interleave, p.parity_per_codeword // 2
    sync = FieldSync(p)
    field = p.n_bor + 2
    start = int(field_offsets(name, len(raw))[field]) + p.leader
    arr = np.frombuffer(raw, np.uint8).copy()
    clean = arr[start + sync.payload_pos].copy()
    # Payload indices [q0, q0 + burst) lie in one key group (no key byte is hit).
    group = p.key_interval - 1
    q0 = 3 * group + 1
    assert burst <= group - 2
    burst_q = np.arange(q0, q0 + burst)
    hits = np.bincount(burst_q % inter, minlength=inter)
    b = int(np.argmax(hits))
    e = int(hits[b])
    v = t + 1 - e  # errors-only needs e + v <= t: one too many
    # With the burst erased: within the code, less the parity kept as a check.
    assert e + 2 * v <= 2 * t - GUESS_SPARE
    far = np.arange(p.payload)
    far = far[(far % inter == b) & ((far < q0 - 2 * inter) | (far >= q0 + burst + 2 * inter))]
    extra = np.random.default_rng(burst).choice(far, v, replace=False)
    arr[start + sync.payload_pos[burst_q]] = 0
    arr[start + sync.payload_pos[extra]] ^= 0x5A
    return arr.tobytes(), clean, b, burst_q, extra


# A burst helps once it puts 3 symbols in one codeword (2 erasures and 4 errors would
# need all 10 parity symbols, one more than a guess may spend): 2I + 1 bytes and up.
CASES = [("3.101", "nls", 15), ("3.102", "nls", 21), ("3.102", "nls", 40),
         ("3.102", "pls", 30), ("3.102", "phs", 66), ("3.102", "nhs", 60)]


@pytest.mark.parametrize(("fmt", "name", "burst"), CASES)
def test_dropout_burst_that_errors_only_loses_is_recovered(fmt, name, burst):
    p = mode(name, fmt)
    data = np.random.default_rng(1).integers(0, 256, 6 * p.capacity, np.uint8).tobytes()
    raw = encode_legacy(data, name, fmt) if fmt != "3.102" else encode_recording(data, name)
    noisy, clean, b, burst_q, extra = damage(name, fmt, raw, burst)

    # The oracle: reedsolo fails on that codeword errors-only, and with the burst's
    # symbols as erasures restores it.
    inter, k, t2 = p.interleave, p.rs_k, p.parity_per_codeword
    d = p.data_size
    sync, fields = payloads(noisy, name, fmt)
    row = fields.payload[p.n_bor + 2]
    data_sym, par_sym = row[b + np.arange(k) * inter], row[d + b + np.arange(t2) * inter]
    word = bytearray(data_sym[::-1].tobytes() + par_sym[::-1].tobytes())
    rsc = reedsolo.RSCodec(nsym=t2, fcr=1, prim=0x11D, generator=2, nsize=255)
    with pytest.raises(reedsolo.ReedSolomonError):
        rsc.decode(word)
    hinted = np.flatnonzero(constant_runs(row[None, :])[0])
    assert set(burst_q.tolist()) <= set(hinted.tolist())
    j = [int(q) // inter for q in hinted if q % inter == b and q < d]
    msg, _, _ = rsc.decode(word, erase_pos=[k - 1 - x for x in j])
    assert bytes(msg)[::-1] == clean[b + np.arange(k) * inter].tobytes()

    def play(options: DecoderOptions):
        player = Player(name, fmt, options=options)
        out = player.feed(noisy)
        tail = player.finish()
        return out.data + tail.data, [e for e in out.events + tail.events
                                      if isinstance(e, SectorLost)]

    got, lost = play(DecoderOptions())
    assert got == data and not lost
    off = DecoderOptions(dropout_runs=False, partial_sectors=False)
    got, lost = play(off)
    assert [e.sector for e in lost] == [2]  # without the hints the sector is lost


def test_a_guess_keeps_one_parity_symbol_as_a_check():
    """2t erasures always 'decode': with a stray error beside them the result is wrong.
    Retries (guessed erasures) keep GUESS_SPARE symbols unused and fail instead."""
    from backerd.format.sector import Sector3102Codec

    p = mode("nls")
    codec = Sector3102Codec(p)
    data = np.random.default_rng(9).integers(0, 256, (1, p.capacity), np.uint8)
    sector = codec.encode_sectors(data, np.array([p.capacity]), np.array([7]))
    b, inter = 3, p.interleave
    erased = np.zeros_like(sector, bool)
    erased[0, b + np.arange(p.parity_per_codeword) * inter] = True  # 2t symbols
    noisy = sector.copy()
    noisy[erased] = 0
    noisy[0, b + 40 * inter] ^= 0x11  # a stray error in the same codeword
    blind = codec.decode_sectors(noisy, erased)
    assert blind.ok[0] and not np.array_equal(blind.data[:, :p.capacity], data)
    assert not codec.decode_sectors(noisy, erased, spare=GUESS_SPARE).ok[0]
    # Without the stray error, one erasure fewer decodes right with the check kept.
    erased[0, b] = False
    noisy = sector.copy()
    noisy[erased] = 0
    good = codec.decode_sectors(noisy, erased, spare=GUESS_SPARE)
    assert good.ok[0] and np.array_equal(good.data, data)

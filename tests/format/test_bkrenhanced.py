"""The bkrenhanced outer code (spec 11.1): layout, spec hash, erasure decoding."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import reedsolo

from backerd.format import bkrenhanced
from backerd.format.bkrenhanced import BkrEnhancedDecoder, group_capacity

C = 716  # nle sector capacity, as in the spec's hash


def mod251(length: int) -> bytes:
    return (bytes(range(251)) * (length // 251 + 1))[:length]


def groups(stream: bytes, capacity: int) -> np.ndarray:
    """(groups, 255 sectors, C bytes)"""
    return np.frombuffer(stream, np.uint8).reshape(-1, 255, capacity)


def test_spec_hash_of_p100000() -> None:
    out = bkrenhanced.encode(mod251(100_000), C)
    assert len(out) == 182580
    assert hashlib.sha256(out).hexdigest()[:16] == "ba7dca0bd59299da"


def test_layout_against_reedsolo() -> None:
    """Codeword b = byte b of every sector; sectors 0..19 parity, 20..254 data."""
    cap = 40
    data = bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8))
    g = groups(bkrenhanced.encode(data, cap), cap)
    assert g.shape[0] == 1
    rsc = reedsolo.RSCodec(nsym=20, fcr=1, prim=0x11D, generator=2)
    area = b""
    for b in range(cap):
        column = g[0, :, b]  # coefficient order: p_0..p_19, d_0..d_234
        parity, message = column[:20], column[20:]
        encoded = rsc.encode(bytes(message[::-1]))
        assert bytes(encoded[235:]) == bytes(parity[::-1])
        area += bytes(message)
    cg = group_capacity(cap)
    assert area[:5000] == data
    assert area[5000:cg] == bytes(cg - 5000)  # zero padding
    assert int.from_bytes(area[cg:], "little", signed=True) == 5000


@pytest.mark.parametrize("multiple", [0, 1, 2])
def test_extra_empty_group_after_whole_groups(multiple: int) -> None:
    cap = 8
    cg = group_capacity(cap)
    out = groups(bkrenhanced.encode(mod251(multiple * cg), cap), cap)
    assert out.shape[0] == multiple + 1
    last_area = out[-1, 20:, :].T.reshape(-1)
    assert int.from_bytes(last_area[cg:].tobytes(), "little") == 0
    assert bkrenhanced.encode(mod251(multiple * cg + 1), cap) != b""
    assert len(bkrenhanced.encode(mod251(multiple * cg + 1), cap)) == (multiple + 1) * 255 * cap


def test_streaming_encoder_matches_one_shot() -> None:
    cap = 16
    data = mod251(3 * group_capacity(cap) + 77)
    enc = bkrenhanced.BkrEnhancedEncoder(cap)
    parts, pos = [], 0
    for size in (1, 5000, 3759, 0, 3761, 1):
        parts.append(enc.write(data[pos : pos + size]))
        pos += size
    parts.append(enc.write(data[pos:]))
    parts.append(enc.close())
    assert b"".join(parts) == bkrenhanced.encode(data, cap)


def decode_all(stream: bytes, cap: int, lost: set[int] = frozenset(), tamper=None):
    dec = BkrEnhancedDecoder(cap)
    out = []
    sectors = np.frombuffer(stream, np.uint8).reshape(-1, cap).copy()
    if tamper is not None:
        tamper(sectors)
    for i, sector in enumerate(sectors):
        out.append(dec.push(None if i in lost else sector.tobytes()))
    out.append(dec.push(b""))  # bkrencode's trailing empty sector is ignored
    out.append(dec.finish())
    return b"".join(out), dec


def test_round_trip_clean() -> None:
    cap = 24
    data = mod251(2 * group_capacity(cap) + 1000)
    out, dec = decode_all(bkrenhanced.encode(data, cap), cap)
    assert out == data
    assert dec.lost == []
    assert len(dec.reports) == 3


def test_twenty_lost_sectors_per_group_are_recovered() -> None:
    cap = 24
    data = mod251(2 * group_capacity(cap) - 5)
    rng = np.random.default_rng(5)
    lost = set(rng.choice(255, 20, replace=False)) | set(255 + rng.choice(255, 20, replace=False))
    out, dec = decode_all(bkrenhanced.encode(data, cap), cap, lost)
    assert out == data
    assert dec.lost == []
    assert [r.lost_sectors for r in dec.reports] == [20, 20]


def test_twenty_one_lost_sectors_report_lost_ranges() -> None:
    cap = 24
    cg = group_capacity(cap)
    data = mod251(2 * cg - 5)
    lost = set(range(100, 121))  # 21 sectors of group 0
    out, dec = decode_all(bkrenhanced.encode(data, cap), cap, lost)
    assert len(out) == len(data)
    # Every codeword of group 0 failed: its whole user range is reported, group 1 is intact.
    assert dec.lost == [(0, cg)]
    assert out[cg:] == data[cg:]


def test_one_failed_codeword_loses_its_235_contiguous_bytes() -> None:
    cap = 24
    data = mod251(group_capacity(cap) - 100)
    lost = set(range(30, 40))  # 10 erasures: each codeword can still fix 5 errors

    def tamper(sectors: np.ndarray) -> None:
        sectors[60:66, 5] ^= 0x5A  # codeword 5: 10 erasures + 6 errors > 20

    out, dec = decode_all(bkrenhanced.encode(data, cap), cap, lost, tamper)
    assert dec.lost == [(5 * 235, 235)]
    assert out[: 5 * 235] == data[: 5 * 235]
    assert out[6 * 235 :] == data[6 * 235 :]


def test_positions_revealed_by_other_codewords_become_erasures() -> None:
    cap = 40
    data = mod251(group_capacity(cap))
    lost = set(range(100, 118))  # 18 lost sectors

    def tamper(sectors: np.ndarray) -> None:
        sectors[200, : cap // 2] ^= 0x55  # sector 200 bad in codewords 0..19
        sectors[210, cap // 4 :] ^= 0xAA  # sector 210 bad in codewords 10..39

    # Codewords 10..19 carry 2 errors + 18 erasures (22 > 20) and fail on their own;
    # the others reveal sectors 200 and 210, and 20 erasures then suffice.
    out, dec = decode_all(bkrenhanced.encode(data, cap), cap, lost, tamper)
    assert out == data
    assert dec.lost == []


def test_finish_decodes_a_truncated_last_group() -> None:
    cap = 24
    data = mod251(1000)
    sectors = np.frombuffer(bkrenhanced.encode(data, cap), np.uint8).reshape(255, cap)
    dec = BkrEnhancedDecoder(cap)
    out = b"".join(dec.push(s.tobytes()) for s in sectors[:240])  # last 15 sectors missing
    assert out == b""
    assert dec.finish() == data


def test_near_the_erasure_limit_a_doubtful_correction_is_reported_not_delivered() -> None:
    cap = 24
    data = mod251(group_capacity(cap) - 100)
    lost = set(range(30, 48))  # 18 erasures leave 2 syndromes: one error is "correctable"

    def tamper(sectors: np.ndarray) -> None:
        sectors[60, 5] ^= 1  # codeword 5 has two errors: beyond the code, and any
        sectors[61, 5] ^= 2  # "correction" of it would be a wrong codeword

    out, dec = decode_all(bkrenhanced.encode(data, cap), cap, lost, tamper)
    assert dec.lost == [(5 * 235, 235)]
    assert out[: 5 * 235] == data[: 5 * 235]
    assert out[6 * 235 :] == data[6 * 235 :]


def test_scattered_errors_without_erasures_are_corrected() -> None:
    cap = 24
    data = mod251(group_capacity(cap))
    rng = np.random.default_rng(9)

    def tamper(sectors: np.ndarray) -> None:
        for b in range(cap):  # 10 errors in every codeword, at random sectors
            sectors[rng.choice(255, 10, replace=False), b] ^= 0x3C

    out, dec = decode_all(bkrenhanced.encode(data, cap), cap, set(), tamper)
    assert out == data
    assert dec.lost == []
    assert dec.reports[0].worst == 10


def test_lost_ranges_of_earlier_groups_are_never_rewritten() -> None:
    """A reader reports `lost` entries as they appear: later groups only append."""
    cap = 24
    cg = group_capacity(cap)
    data = mod251(2 * cg + 10)
    dec = BkrEnhancedDecoder(cap)
    sectors = np.frombuffer(bkrenhanced.encode(data, cap), np.uint8).reshape(-1, cap)
    gone = set(range(234, 255)) | set(range(255, 276))  # end of group 0, start of group 1
    seen = []
    for i, s in enumerate(sectors):
        dec.push(None if i in gone else s.tobytes())
        seen.append(list(dec.lost))
    assert seen[254] == [(0, cg)]
    assert dec.lost[0] == (0, cg)
    assert dec.lost[1] == (cg, cg)


def test_unrecoverable_last_group_keeps_its_length_and_received_bytes() -> None:
    cap = 24
    cg = group_capacity(cap)
    data = mod251(cg + 3000)
    lost = set(range(255 + 40, 255 + 61))  # 21 data sectors of group 1: nothing corrects
    out, dec = decode_all(bkrenhanced.encode(data, cap), cap, lost)
    assert len(out) == len(data)  # the length field (sectors 251..254) arrived
    assert out[:cg] == data[:cg]
    assert dec.lost == [(cg, 3000)]
    # Bytes carried by sectors that arrived are delivered as they were recorded.
    tail = np.frombuffer(out[cg:], np.uint8).reshape(-1)
    want = np.frombuffer(data[cg:], np.uint8)
    offsets = np.arange(3000)
    received = ~np.isin(offsets % 235 + 20, list(range(40, 61)))
    assert (tail[received] == want[received]).all()


def test_finish_after_a_few_sectors_reports_the_group_lost() -> None:
    cap = 24
    sectors = np.frombuffer(bkrenhanced.encode(mod251(500), cap), np.uint8).reshape(255, cap)
    dec = BkrEnhancedDecoder(cap)
    for s in sectors[:30]:  # 225 of 255 sectors never arrive: beyond any correction
        assert dec.push(s.tobytes()) == b""
    out = dec.finish()
    # The length field never arrived: the whole group is delivered and reported lost,
    # but the bytes of the data sectors that arrived are right.
    assert dec.lost == [(0, group_capacity(cap))]
    assert len(out) == group_capacity(cap)
    area = np.frombuffer(out + bytes(4), np.uint8).reshape(cap, 235)
    want = np.frombuffer(mod251(500) + bytes(235 * cap - 500), np.uint8).reshape(cap, 235)
    assert (area[:, :10] == want[:, :10]).all()  # data symbols 0..9 = sectors 20..29


@pytest.mark.parametrize("n_lost", [1, 7, 19, 20])
def test_erasure_fast_path_agrees_with_the_general_decoder(n_lost: int) -> None:
    from backerd.format.bkrenhanced import _decode_with_erasures
    from backerd.format.rs import rs_code

    code = rs_code(255, 235)
    rng = np.random.default_rng(n_lost)
    cw = code.codewords(rng.integers(0, 256, (300, 235), dtype=np.uint8))
    lost = np.zeros(255, bool)
    lost[rng.choice(255, n_lost, replace=False)] = True
    received = cw.copy()
    received[:, lost] = rng.integers(0, 256, (300, n_lost), dtype=np.uint8)
    # Some rows also carry errors outside the erasures (within reach for most).
    spare = (20 - n_lost) // 2
    for row in range(0, 300 if spare else 0, 7):  # 20 erasures: nothing left to check
        where = rng.choice(np.flatnonzero(~lost), spare + row % 2, replace=False)
        received[row, where] ^= rng.integers(1, 256, where.size, dtype=np.uint8)
    fast = _decode_with_erasures(code, received, lost)
    general = code.decode(received, np.broadcast_to(lost, received.shape))
    assert (fast.ok == general.ok).all()
    assert (fast.corrected[fast.ok] == general.corrected[general.ok]).all()
    assert (fast.n_corrected[fast.ok] == general.n_corrected[general.ok]).all()
    assert (fast.corrected[fast.ok] == cw[fast.ok]).all()


def test_a_group_with_an_impossible_length_is_reported_lost() -> None:
    cap = 24
    cg = group_capacity(cap)
    for bad in (-5, cg + 1):
        stream = bkrenhanced.encode_groups(mod251(cg), cap, [bad])  # valid codewords
        dec = BkrEnhancedDecoder(cap)
        sectors = np.frombuffer(stream, np.uint8).reshape(255, cap)
        out = b"".join(dec.push(s.tobytes()) for s in sectors)
        assert out == mod251(cg)
        assert dec.lost == [(0, cg)]
        assert not dec.reports[0].length_known

"""The Player: round trips, damaged streams (slips, lost fields), events, statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backerd.errors import MediumError, UsageError
from backerd.format import frame
from backerd.format.params import FORMATTED_MODES, RAW_MODES, mode
from backerd.format.player import EndOfRecord, Player, SectorLost
from backerd.format.recorder import encode_recording

SP = ("nls", "nhs", "pls", "phs")
EP = ("nle", "nhe", "ple", "phe")


def user_bytes(n: int, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def field_offsets(name: str, raw_len: int) -> list[int]:
    """Start of every field of a 3.102 recording (field 0 odd; NTSC odd fields longer)."""
    g = mode(name).geometry
    offs, off, i = [], 0, 0
    while off < raw_len:
        offs.append(off)
        off += g.field_size + (g.interlace if i % 2 == 0 else 0)
        i += 1
    return offs


def play(name: str, raw: bytes, chunk: int = 1 << 18, **kw):
    player = Player(name, **kw)
    outs = [player.feed(raw[i : i + chunk]) for i in range(0, len(raw), chunk)]
    outs.append(player.finish())
    data = b"".join(o.data for o in outs)
    events = [e for o in outs for e in o.events]
    return player, data, events


def lost_events(events) -> list[SectorLost]:
    return [e for e in events if isinstance(e, SectorLost)]


def data_field(name: str, sector: int) -> int:
    """Field index of data sector `sector` (one sector per field after the BOR)."""
    return mode(name).n_bor + sector


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("name", SP)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_sp_round_trip(name, data):
    cap = mode(name).capacity
    n = data.draw(st.one_of(st.integers(0, 3 * cap + 2), st.sampled_from([cap - 1, cap, cap + 1])))
    payload = data.draw(st.binary(min_size=n, max_size=n))
    raw = encode_recording(payload, name)
    chunk = data.draw(st.integers(1000, 400_000))
    player, out, events = play(name, raw, chunk)
    assert out == payload
    assert events[-1] == EndOfRecord(n)
    assert not lost_events(events)
    assert player.stats.sector_number == -(-n // cap)  # the first EOR sector (spec 6.6)


@pytest.mark.parametrize("name", EP)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_ep_round_trip(name, data):
    cg = mode(name).group_capacity
    n = data.draw(st.sampled_from([0, 1, cg - 1, cg, cg + 1]) | st.integers(0, 2 * cg))
    payload = user_bytes(n, data.draw(st.integers(0, 1000)))
    raw = encode_recording(payload, name)
    player, out, events = play(name, raw, data.draw(st.integers(5000, 1 << 20)))
    assert out == payload
    assert events[-1] == EndOfRecord(n)
    assert not lost_events(events)
    assert player.stats.groups_decoded == -(-n // cg)


@pytest.mark.parametrize("name", RAW_MODES)
def test_raw_modes_pass_the_stream_through(name):
    raw = user_bytes(100_000)
    player, out, events = play(name, raw, 7777)
    assert out == raw and events == []
    assert player.raw_consumed == len(raw)


def test_unknown_mode_format_and_misplaced_options():
    with pytest.raises(UsageError):
        Player("xyz")
    with pytest.raises(UsageError):
        Player("nls", "3.2")
    with pytest.raises(UsageError):
        Player("nls", bkrenhanced=True)


# ---------------------------------------------------------------------------- damage
def slip_fields(name: str, raw: bytes, fields: list[int], seed: int) -> bytes:
    """Drop or repeat one line inside the active region of each listed field."""
    p = mode(name)
    bpl = p.geometry.bytes_per_line
    offs = field_offsets(name, len(raw))
    rng = np.random.default_rng(seed)
    out = raw
    for k, f in enumerate(sorted(fields, reverse=True)):
        at = offs[f] + p.leader + bpl * int(rng.integers(0, p.active // bpl))
        out = out[:at] + out[at + bpl :] if k % 2 else out[: at + bpl] + out[at:]
    return out


@pytest.mark.parametrize("name", FORMATTED_MODES)
def test_line_slips_inside_fields_are_recovered(name):
    p = mode(name)
    n = 20 * p.capacity + 7 if p.codec == "sp" else 3000
    payload = user_bytes(n, 5)
    raw = encode_recording(payload, name)
    n_fields = len(field_offsets(name, len(raw)))
    damaged = list(range(5, n_fields - 2, 3))  # BOR, data and EOR fields alike
    player, out, events = play(name, slip_fields(name, raw, damaged, 11))
    assert out == payload
    assert not lost_events(events)
    assert player.stats.line_slips >= 1
    assert player.stats.bad_sectors == 0


def cut_fields(name: str, raw: bytes, fields: list[int]) -> bytes:
    offs = field_offsets(name, len(raw)) + [len(raw)]
    drop = set(fields)
    return b"".join(raw[offs[i] : offs[i + 1]] for i in range(len(offs) - 1) if i not in drop)


@pytest.mark.parametrize("name", SP)
def test_dropped_sp_fields_are_reported_at_their_offsets(name):
    cap = mode(name).capacity
    payload = user_bytes(12 * cap + 100, 3)
    raw = encode_recording(payload, name)
    gone = [0, 4, 5, 11]
    _, out, events = play(name, cut_fields(name, raw, [data_field(name, s) for s in gone]))
    lost = lost_events(events)
    assert [(e.sector, e.offset, e.length) for e in lost] == [(s, s * cap, cap) for s in gone]
    assert len(out) == len(payload)
    keep = np.ones(len(payload), bool)
    for e in lost:
        keep[e.offset : e.offset + e.length] = False
    a, b = np.frombuffer(out, np.uint8), np.frombuffer(payload, np.uint8)
    assert np.array_equal(a[keep], b[keep])
    assert events[-1] == EndOfRecord(len(payload))


def test_lost_last_sector_before_the_eor():
    name = "pls"
    cap = mode(name).capacity
    payload = user_bytes(3 * cap, 4)
    raw = encode_recording(payload, name)
    _, out, events = play(name, cut_fields(name, raw, [data_field(name, 2)]))
    assert lost_events(events) == [SectorLost(2, 2 * cap, cap)]
    assert out[: 2 * cap] == payload[: 2 * cap]


def test_strict_stops_at_the_first_lost_range():
    name = "nhs"
    cap = mode(name).capacity
    payload = user_bytes(6 * cap, 8)
    raw = cut_fields(name, encode_recording(payload, name), [data_field(name, 3)])
    player = Player(name, strict=True)
    with pytest.raises(MediumError) as info:
        player.feed(raw)
    assert info.value.output.data == payload[: 3 * cap]
    assert str(3 * cap) in info.value.message


@pytest.mark.parametrize("name", ["nle", "phe"])
def test_ep_group_survives_twenty_lost_sectors(name):
    p = mode(name)
    payload = user_bytes(p.group_capacity + 5000, 9)  # two groups
    raw = encode_recording(payload, name)
    rng = np.random.default_rng(2)
    gone = sorted(rng.choice(255, 20, replace=False).tolist()) + [255 + 3, 255 + 250]
    player, out, events = play(name, cut_fields(name, raw, [data_field(name, s) for s in gone]))
    assert out == payload
    assert not lost_events(events)
    assert player.stats.lost_sectors == len(gone)


@pytest.mark.parametrize("name", ["nle", "ple"])
def test_ep_group_beyond_repair_loses_only_its_lost_sectors(name):
    p = mode(name)
    cap, cg = p.capacity, p.group_capacity
    payload = user_bytes(cg + 4000, 10)
    raw = encode_recording(payload, name)
    gone = list(range(10, 32)) + [240]  # 23 sectors of group 0: 22 data, 1 parity
    _, out, events = play(name, cut_fields(name, raw, [data_field(name, s) for s in gone]))
    lost = lost_events(events)
    assert len(out) == len(payload)
    expected = [(s * cap, cap) for s in range(10, 32)]
    assert sorted((e.offset, e.length) for e in lost) == sorted(expected)
    assert {e.sector for e in lost} == set(range(10, 32))
    keep = np.ones(len(payload), bool)
    for e in lost:
        keep[e.offset : e.offset + e.length] = False
    a, b = np.frombuffer(out, np.uint8), np.frombuffer(payload, np.uint8)
    assert np.array_equal(a[keep], b[keep])  # the next group is whole again


def test_ep_group_with_lost_length_field_in_the_last_group():
    name = "nle"
    p = mode(name)
    cap = p.capacity
    payload = user_bytes(50 * cap + 123, 12)
    raw = encode_recording(payload, name)
    gone = list(range(60, 80)) + [234, 100]  # 22 lost: the length sector among them
    _, out, events = play(name, cut_fields(name, raw, [data_field(name, s) for s in gone]))
    # the data ends where the filler starts, so the length is still right
    assert out == payload
    assert not lost_events(events)


# ---------------------------------------------------------------------------- sequencing
def test_two_recordings_back_to_back():
    name = "phs"
    a, b = user_bytes(10_000, 1), user_bytes(7_000, 2)
    raw_a, raw_b = encode_recording(a, name), encode_recording(b, name)
    raw = raw_a + raw_b
    first, out_a, _ = play(name, raw)
    assert out_a == a
    assert first.raw_consumed <= len(raw_a)
    # the first EOR sector is in the field after the data
    offs = field_offsets(name, len(raw_a))
    eor_field = data_field(name, -(-len(a) // mode(name).capacity))
    assert offs[eor_field] < first.raw_consumed <= offs[eor_field + 1]
    _, out_b, _ = play(name, raw[first.raw_consumed :])
    assert out_b == b


def test_next_recordings_bor_ends_a_record_whose_eor_was_lost():
    name = "nls"
    p = mode(name)
    a, b = user_bytes(5 * p.capacity, 1), user_bytes(100, 2)
    raw_a = encode_recording(a, name)
    eor_first = data_field(name, 5)
    cut = field_offsets(name, len(raw_a))[eor_first + 1]  # keep one EOR field? no: none
    cut = field_offsets(name, len(raw_a))[eor_first]
    raw = raw_a[:cut] + encode_recording(b, name)
    player, out, events = play(name, raw)
    assert out == a
    assert events[-1] == EndOfRecord(len(a), inferred=True)  # no EOR sector was seen
    assert player.raw_consumed <= cut + p.leader


def test_truncated_stream_has_no_end_of_record():
    name = "pls"
    raw = encode_recording(user_bytes(4000), name)
    offs = field_offsets(name, len(raw))
    player, out, events = play(name, raw[: offs[data_field(name, 2)]])
    assert out == user_bytes(4000)[: 2 * mode(name).capacity]
    assert not any(isinstance(e, EndOfRecord) for e in events)
    assert not player.ended


def test_wrong_forced_format_decodes_nothing():
    raw = encode_recording(user_bytes(3000), "nhs")
    player, out, _ = play("nhs", raw, fmt="3.101")
    assert out == b"" and not player.ended
    assert player.stats.sectors_decoded == 0


# ---------------------------------------------------------------------------- statistics
def test_byte_errors_count_data_fields_only():
    name = "nls"
    p = mode(name)
    payload = user_bytes(10 * p.capacity, 6)
    raw = bytearray(encode_recording(payload, name))
    offs = field_offsets(name, len(raw))
    pay_pos = frame.payload_positions(p)
    rng = np.random.default_rng(4)
    # 3 errors in distinct codewords of every BOR and data field
    for f in range(0, data_field(name, 10)):
        cols = rng.choice(p.interleave, 3, replace=False)
        for c in cols:
            b = int(c + p.interleave * rng.integers(0, p.rs_n))
            raw[offs[f] + p.leader + int(pay_pos[b])] ^= 0x5A
    player, out, _ = play(name, bytes(raw))
    assert out == payload
    # BOR sectors reset the counters: only the 10 data fields count
    assert player.stats.byte_errors == 30
    assert player.stats.worst_block == 1
    assert player.stats.bad_sectors == 0
    assert player.stats.as_dict()["parity"] == 10


def test_repeated_fields_are_underflows_not_data():
    # When the writer fell behind, the card repeated the last fields it had.
    name = "nhs"
    cap = mode(name).capacity
    payload = user_bytes(10 * cap, 13)
    raw = encode_recording(payload, name)
    offs = field_offsets(name, len(raw)) + [len(raw)]
    out = []
    for i in range(len(offs) - 1):
        out.append(raw[offs[i] : offs[i + 1]])
        if i in (data_field(name, 2), data_field(name, 6)):
            out.append(raw[offs[i - 1] : offs[i + 1]])  # two fields once more
    player, data, events = play(name, b"".join(out))
    assert data == payload
    assert not lost_events(events)
    assert player.stats.underflows == 2
    assert player.stats.bad_sector_runs == 0


@pytest.mark.parametrize("name", ["nhs", "phs", "nls", "phe"])
def test_two_slips_in_one_field_and_double_line_drops(name):
    # Two open slip spans in one high-density SP field are more erasures than the code
    # holds; the decoder has to find the line of each slip by trying them.
    p = mode(name)
    bpl = p.geometry.bytes_per_line
    lines = p.active // bpl
    payload = user_bytes(20 * p.capacity if p.codec == "sp" else 20_000, 2)
    raw = encode_recording(payload, name)
    offs = field_offsets(name, len(raw))
    rng = np.random.default_rng(0)
    out = raw
    for f in range(len(offs) - 3, 3, -2):
        base = offs[f] + p.leader
        if f % 4 == 1:  # a repeated line late in the field, a dropped one early
            a = base + bpl * int(rng.integers(lines // 2 + 10, lines - 2))
            out = out[: a + bpl] + out[a:]
            a = base + bpl * int(rng.integers(2, lines // 2 - 10))
            out = out[:a] + out[a + bpl :]
        else:  # two lines dropped together
            a = base + bpl * int(rng.integers(0, lines - 2))
            out = out[:a] + out[a + 2 * bpl :]
    player, data, events = play(name, out)
    assert data == payload
    assert not lost_events(events)
    assert player.stats.bad_sectors == 0


def test_a_wild_sector_number_is_not_taken():
    # A header the code passed but that cannot be right here (a miscorrection, or a
    # stray field) must not make the reader report millions of lost sectors.
    from backerd.format.sector_codecs import codec_for

    name = "pls"
    p = mode(name)
    cap = p.capacity
    payload = user_bytes(8 * cap, 14)
    raw = encode_recording(payload, name)
    offs = field_offsets(name, len(raw)) + [len(raw)]
    f = data_field(name, 5)
    wild = codec_for(p).encode_sectors(
        np.zeros((1, cap), np.uint8), np.array([cap]), np.array([5_000_000]))
    field = frame.assemble_fields(p, wild, f)
    assert len(field) == offs[f + 1] - offs[f]
    player, out, events = play(name, raw[: offs[f]] + field + raw[offs[f + 1] :])
    assert lost_events(events) == [SectorLost(5, 5 * cap, cap)]
    assert len(out) == len(payload)
    assert out[: 5 * cap] == payload[: 5 * cap] and out[6 * cap :] == payload[6 * cap :]
    assert player.stats.bad_sectors == 1


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mangled_streams_never_break_the_reader(data):
    # Whatever a deck delivers, the reader reports; it does not raise, and what it
    # reports is consistent.
    name = data.draw(st.sampled_from(["nls", "phe"]))
    payload = user_bytes(data.draw(st.integers(0, 3000)), 21)
    raw = bytearray(encode_recording(payload, name))
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(raw) - 1))
        size = data.draw(st.integers(1, 5000))
        op = data.draw(st.sampled_from(["cut", "repeat", "noise", "zero"]))
        if op == "cut":
            del raw[at : at + size]
        elif op == "repeat":
            raw[at:at] = raw[at : at + size]
        else:
            chunk = user_bytes(size, at) if op == "noise" else bytes(size)
            raw[at : at + size] = chunk[: len(raw[at : at + size])]
    player, out, events = play(name, bytes(raw), data.draw(st.integers(500, 300_000)))
    ends = [e for e in events if isinstance(e, EndOfRecord)]
    assert len(ends) <= 1
    if ends:
        assert ends[0].user_bytes == len(out) and player.ended
        assert 0 <= player.raw_consumed <= len(raw)
    for e in lost_events(events):
        assert e.offset >= 0 and e.offset + e.length <= len(out)


def test_memory_stays_bounded_whatever_the_length():
    import tracemalloc

    def peak(n: int) -> int:
        raw = encode_recording(user_bytes(n, 1), "nle")
        player = Player("nle")
        tracemalloc.start()
        try:
            for k in range(0, len(raw), 1 << 20):
                player.feed(raw[k : k + (1 << 20)])  # output dropped, as a pipe would
            player.finish()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    short, long = peak(2 << 20), peak(12 << 20)  # raw streams of about 3 MB and 19 MB
    assert long < 1.5 * short
    assert long < 24e6


def test_noise_over_a_slip_with_no_line_to_try_is_read_past():
    # Noise that leaves a slip span with no candidate line once made the key search
    # index an empty candidate list (found by the mangled-stream property above).
    payload = user_bytes(0, 21)
    raw = bytearray(encode_recording(payload, "nls"))
    at, size = 38784, 4853
    raw[at : at + size] = user_bytes(size, at)[: len(raw[at : at + size])]
    player, out, events = play("nls", bytes(raw), 500)
    ends = [e for e in events if isinstance(e, EndOfRecord)]
    assert out == payload and ends == [EndOfRecord(0)] and player.ended

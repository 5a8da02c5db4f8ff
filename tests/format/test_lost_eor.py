"""Lost end-of-record sectors: never delivered as data, the end inferred from what survives.

Recordings are damaged the way a dropout does it: whole fields of the raw stream
overwritten with a constant 0x00 or 0xFF, their positions computed from the mode's
field geometry (field 0 is odd; one sector per field, BOR first). Every case checks
the exact output bytes and the absence of lost ranges, through the Player for each
formatted mode and format, and through the real `backerd decode` for one mode per case.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from backerd.format.legacy import LegacyRecorder
from backerd.format.params import FORMATTED_MODES, ModeParams, mode
from backerd.format.player import EndOfRecord, Player, SectorLost
from backerd.format.recorder import encode_recording

FORMATS = ("3.102", "3.101", "3.3")
EXIT_MEDIUM = 4  # MediumError: user bytes were lost


def user_bytes(n: int, seed: int = 7) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def record(params: ModeParams, data: bytes) -> bytes:
    if params.format == "3.102":
        return encode_recording(data, params)
    rec = LegacyRecorder(params, params.format)
    return rec.write(data) + rec.close()


def data_sectors(params: ModeParams, n: int) -> int:
    """Sectors that carry the recording's user bytes (whole ecc2 groups in 3.102 EP)."""
    if params.format == "3.102" and params.codec == "ep":
        return 255 * -(-n // params.group_capacity)
    return -(-n // params.capacity)


def sizes(params: ModeParams) -> dict[str, int]:
    """User lengths whose last data sector is partial / full."""
    unit = params.capacity
    if params.format == "3.102" and params.codec == "ep":
        unit = params.group_capacity  # the sectors of a group are all full
    return {"partial": 2 * unit + unit // 3, "full": 2 * unit}


def field_span(params: ModeParams, first: int, count: int) -> tuple[int, int]:
    """Raw stream offset and length of fields [first, first + count)."""
    g = params.geometry
    def start(i: int) -> int:
        return (i // 2) * g.frame_size + (i % 2) * g.field_length(0)
    return start(first), start(first + count) - start(first)


def wipe(raw: bytes, params: ModeParams, first: int, count: int, fill: int) -> bytes:
    off, length = field_span(params, first, count)
    assert off + length <= len(raw)
    out = bytearray(raw)
    out[off : off + length] = bytes([fill]) * length
    return bytes(out)


# case: (user length kind, first wiped field relative to the first sector after the
# user data (None: the BOR), fields wiped)
CASES = {
    "first_eor_after_partial": ("partial", 0, 1),
    "first_eor_after_full": ("full", 0, 1),
    "first_two_eor_after_full": ("full", 0, 2),
    "first_two_eor_after_partial": ("partial", 0, 2),
    "bor": ("partial", None, None),
}


def damaged(name: str, fmt: str, case: str) -> tuple[bytes, bytes, ModeParams]:
    params = mode(name, fmt)
    kind, rel, count = CASES[case]
    data = user_bytes(sizes(params)[kind], seed=len(case))
    raw = record(params, data)
    fill = 0xFF if len(case) % 2 else 0x00
    if rel is None:
        raw = wipe(raw, params, 0, params.n_bor, fill)
    else:
        raw = wipe(raw, params, params.n_bor + data_sectors(params, len(data)) + rel, count, fill)
    return data, raw, params


def play(name: str, fmt: str, raw: bytes, chunk: int = 1 << 16):
    player = Player(name, fmt)
    outs = [player.feed(raw[i : i + chunk]) for i in range(0, len(raw), chunk)]
    outs.append(player.finish())
    return b"".join(o.data for o in outs), [e for o in outs for e in o.events]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", FORMATTED_MODES)
def test_lost_end_sectors_are_not_data(name: str, fmt: str, case: str) -> None:
    data, raw, _ = damaged(name, fmt, case)
    out, events = play(name, fmt, raw)
    assert [e for e in events if isinstance(e, SectorLost)] == []
    assert len(out) == len(data)
    assert out == data
    ends = [e for e in events if isinstance(e, EndOfRecord)]
    assert len(ends) == 1 and ends[0].user_bytes == len(data)
    assert ends[0].inferred == (case != "bor")


@pytest.mark.parametrize(("first", "count"), [(0, 1), (0, 2), (1, 1), (None, None)])
@pytest.mark.parametrize("fmt", ["3.101", "3.3"])
def test_bkrenhanced_recordings(fmt: str, first: int | None, count: int | None) -> None:
    """bkrenhanced groups fill whole sectors, so `bkrencode` always added its extra empty
    sector before the EOR: wiping it, or it and the first EOR sector, loses nothing."""
    params = mode("nle", fmt)
    data = user_bytes(5000)
    rec = LegacyRecorder(params, fmt, bkrenhanced=True)
    raw = rec.write(data) + rec.close()
    if first is None:
        raw = wipe(raw, params, 0, params.n_bor, 0xFF)
    else:
        raw = wipe(raw, params, params.n_bor + 255 + first, count, 0x00)
    player = Player("nle", fmt, bkrenhanced=True)
    outs = [player.feed(raw), player.finish()]
    events = [e for o in outs for e in o.events]
    assert b"".join(o.data for o in outs) == data
    assert [e for e in events if isinstance(e, SectorLost)] == []
    assert [e.user_bytes for e in events if isinstance(e, EndOfRecord)] == [len(data)]


def decode_cli(name: str, raw: bytes, *extra: str) -> tuple[int, bytes, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "backerd", "decode", "--mode", name, "--json", *extra],
        input=raw, capture_output=True, timeout=300)
    doc = json.loads(proc.stderr.decode().splitlines()[0])
    return proc.returncode, proc.stdout, doc


@pytest.mark.parametrize(("name", "fmt", "case"), [
    ("phs", "3.102", "first_eor_after_partial"),
    ("nls", "3.102", "first_eor_after_full"),
    ("pls", "3.102", "first_two_eor_after_full"),
    ("nhs", "3.102", "first_two_eor_after_partial"),
    ("phs", "3.102", "bor"),
    ("nls", "3.101", "first_eor_after_full"),
    ("pls", "3.3", "first_two_eor_after_full"),
])
def test_cli_decodes_the_recorded_length_with_exit_0(name: str, fmt: str, case: str) -> None:
    data, raw, _ = damaged(name, fmt, case)
    rc, out, doc = decode_cli(name, raw, "--format", fmt)
    assert rc == 0, doc["error"]
    assert out == data and doc["user_bytes"] == len(data)
    assert doc["lost"] == [] and doc["end_of_record"] is True
    assert doc["end_inferred"] is (case != "bor")


def test_cli_issue_stream_phs_200000_bytes_first_eor_lost() -> None:
    # 200000 = 76 full sectors of 2614 bytes and a partial one of 1336 bytes.
    params = mode("phs")
    data = user_bytes(200000, seed=14)
    raw = wipe(record(params, data), params, params.n_bor + 77, 1, 0x00)
    rc, out, doc = decode_cli("phs", raw)
    assert (rc, len(out), out == data) == (0, 200000, True)
    assert doc["lost"] == [] and doc["end_inferred"] is True
    assert doc["statistics"]["lost_sectors"] == 0


# ---------------------------------------------------------------------------- real losses
@pytest.mark.parametrize("name", ["nls", "phs"])
def test_a_lost_last_data_sector_before_a_whole_eor_is_still_reported(name: str) -> None:
    """Every EOR sector survives, so the missing sector can only have been data."""
    params = mode(name)
    cap = params.capacity
    data = user_bytes(3 * cap)
    raw = wipe(record(params, data), params, params.n_bor + 2, 1, 0x00)
    rc, out, doc = decode_cli(name, raw)
    assert rc == EXIT_MEDIUM
    assert len(out) == len(data) and out[: 2 * cap] == data[: 2 * cap]
    assert out[2 * cap :] == bytes(cap)
    assert doc["lost"] == [{"sector": 2, "offset": 2 * cap, "length": cap}]
    assert doc["end_inferred"] is True


def test_a_lost_ep_group_before_a_whole_eor_is_still_reported() -> None:
    """3.102 EP: a whole lost group is data (the first EOR number is a group boundary)."""
    params = mode("nle")
    cg = params.group_capacity
    data = user_bytes(2 * cg)
    raw = wipe(record(params, data), params, params.n_bor + 255, 255, 0x00)
    out, events = play("nle", "3.102", raw)
    assert len(out) == len(data) and out[:cg] == data[:cg]
    lost = [e for e in events if isinstance(e, SectorLost)]
    assert sum(e.length for e in lost) == cg and lost[0].offset == cg


def test_data_after_the_short_last_sector_is_not_delivered() -> None:
    """A full data sector where the first EOR sector was (another recording's, taken
    whole) cannot be data: only the last data sector is short."""
    params = mode("pls")
    cap = params.capacity
    data = user_bytes(2 * cap + 5)
    raw = bytearray(record(params, data))
    other = record(params, user_bytes(4 * cap, seed=99))
    off, length = field_span(params, params.n_bor + 3, 1)
    raw[off : off + length] = other[off : off + length]  # data sector 3, full
    out, events = play("pls", "3.102", bytes(raw))
    assert out == data
    assert [e for e in events if isinstance(e, SectorLost)] == []
    assert [e.inferred for e in events if isinstance(e, EndOfRecord)] == [True]


def test_undamaged_recordings_do_not_infer_the_end() -> None:
    params = mode("nhs")
    data = user_bytes(3 * params.capacity)
    out, events = play("nhs", "3.102", record(params, data))
    assert out == data
    assert [e.inferred for e in events if isinstance(e, EndOfRecord)] == [False]


# ---------------------------------------------------------------------------- stray EOR
def swap_fields(raw: bytes, params: ModeParams, a: int, b: int) -> bytes:
    """Fields a and b (same parity: same length) exchanged, as a damaged capture does."""
    assert a % 2 == b % 2
    (off_a, n), (off_b, _) = field_span(params, a, 1), field_span(params, b, 1)
    out = bytearray(raw)
    out[off_a : off_a + n], out[off_b : off_b + n] = raw[off_b : off_b + n], raw[off_a : off_a + n]
    return bytes(out)


@pytest.mark.parametrize("where", ["data", "bor"])
def test_an_eor_sector_out_of_place_does_not_end_the_record(where: str) -> None:
    """An EOR sector swapped into the data (or the BOR run) is followed by sectors that
    continue the recording: decoding goes on, and only the sector it displaced is lost."""
    params = mode("nls")
    cap, n = params.capacity, 20
    data = user_bytes(n * cap - cap // 3)
    eor_field = params.n_bor + n + 10  # the EOR sector numbered n + 10
    moved = params.n_bor + 4 if where == "data" else params.n_bor - 6  # same parity
    raw = swap_fields(record(params, data), params, moved, eor_field)
    out, events = play("nls", "3.102", raw)
    lost = [e for e in events if isinstance(e, SectorLost)]
    assert len(out) == len(data)
    if where == "data":  # data sector 4 came after sector 5..: dropped, reported
        assert lost == [SectorLost(4, 4 * cap, cap)]
        assert out[: 4 * cap] == data[: 4 * cap] and out[5 * cap :] == data[5 * cap :]
    else:  # a BOR sector displaced: no user byte lost
        assert lost == [] and out == data
    assert [e.inferred for e in events if isinstance(e, EndOfRecord)] == [False]


# ---------------------------------------------------------------------------- stray BOR, data
@pytest.mark.parametrize("chunk", [4096, 1 << 16, 1 << 20])
@pytest.mark.parametrize("count", [1, 3])
def test_data_sectors_out_of_place_in_the_bor_run_do_not_end_the_record(count: int,
                                                                        chunk: int) -> None:
    """Data sectors 6.. swapped into the BOR run: the BOR run goes on after them, so they
    are out of place; decoding goes on, and only the sectors displaced are lost (in the
    data a BOR sector stands at their place, also out of place)."""
    params = mode("nls")
    cap, n = params.capacity, 20
    data = user_bytes(n * cap - cap // 3)
    raw = record(params, data)
    for k in range(count):  # fields 106 apart: same parity
        raw = swap_fields(raw, params, params.n_bor - 100 + k, params.n_bor + 6 + k)
    out, events = play("nls", "3.102", raw, chunk)
    lost = [e for e in events if isinstance(e, SectorLost)]
    assert lost == [SectorLost(6 + k, (6 + k) * cap, cap) for k in range(count)]
    assert len(out) == len(data)
    assert out[: 6 * cap] == data[: 6 * cap]
    assert out[(6 + count) * cap :] == data[(6 + count) * cap :]
    assert [e.inferred for e in events if isinstance(e, EndOfRecord)] == [False]


@pytest.mark.parametrize("chunk", [4096, 1 << 20])
def test_a_bor_sector_out_of_place_in_the_data_does_not_end_the_record(chunk: int) -> None:
    """A BOR sector where the last data sector and the first EOR sector were (both
    swapped into the BOR run): the EOR run after it continues the recording."""
    params = mode("nls")
    cap, n = params.capacity, 12
    data = user_bytes(n * cap - 40)
    raw = record(params, data)
    last = params.n_bor + n - 1
    for k in range(2):
        raw = swap_fields(raw, params, last + k, params.n_bor - 49 + k)  # same parity
    out, events = play("nls", "3.102", raw, chunk)
    lost = [e for e in events if isinstance(e, SectorLost)]
    # sector n - 1 was lost, and the first EOR sector with it: the whole EOR run says
    # where the data ended (n), the first EOR sector seen (n + 1) that it may be n + 1
    assert lost == [SectorLost(n - 1, (n - 1) * cap, cap)]
    assert out[: (n - 1) * cap] == data[: (n - 1) * cap] and len(out) == n * cap
    ends = [e for e in events if isinstance(e, EndOfRecord)]
    assert [(e.inferred, e.possibly_lost) for e in ends] == [(True, cap)]


def test_an_ambiguous_end_reports_what_it_may_have_cut_off() -> None:
    """The last data sector, the first two EOR sectors and the run's last one lost: the
    first EOR sector seen (n + 2) and the highest (n + 58) allow a first EOR number from
    n - 1 to n + 2. The output stops at the likeliest (n - 1: the fewest sectors lost);
    the three sectors that may have been data are reported as possibly lost."""
    params = mode("nls")
    cap, n = params.capacity, 10
    data = user_bytes(n * cap - 100)
    first_eor = params.n_bor + n
    raw = wipe(record(params, data), params, first_eor - 1, 3, 0x00)
    raw = wipe(raw, params, first_eor + params.n_eor - 1, 1, 0xFF)
    out, events = play("nls", "3.102", raw)
    assert out == data[: (n - 1) * cap]
    assert [e for e in events if isinstance(e, SectorLost)] == []
    ends = [e for e in events if isinstance(e, EndOfRecord)]
    assert [(e.inferred, e.possibly_lost) for e in ends] == [(True, 3 * cap)]
    assert len(out) + ends[0].possibly_lost >= len(data)
    rc, cli_out, doc = decode_cli("nls", raw)
    assert (rc, cli_out, doc["end_possibly_lost"]) == (0, out, 3 * cap)


def test_a_later_recordings_bor_reports_the_fields_before_it_as_possibly_lost() -> None:
    """The end of a recording and its EOR run wiped, then a later recording: the fields
    between the last data sector decoded and the later BOR may each have held data."""
    params = mode("nls")
    cap = params.capacity
    a, b = user_bytes(6 * cap, 1), user_bytes(100, 2)
    raw_a = record(params, a)
    fields_a = 2 * len(raw_a) // params.geometry.frame_size
    raw = wipe(raw_a, params, params.n_bor + 4, fields_a - params.n_bor - 4, 0x00)
    out, events = play("nls", "3.102", raw + record(params, b))
    assert out == a[: 4 * cap]
    ends = [e for e in events if isinstance(e, EndOfRecord)]
    assert [(e.inferred, e.possibly_lost) for e in ends] == [(True, (fields_a - 304) * cap)]

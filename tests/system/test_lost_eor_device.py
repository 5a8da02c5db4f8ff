"""Lost end-of-record and BOR sectors through the device: a tape file keeps its length.

A file is written to the served node (dd), the daemon is stopped, a dropout is put on
the cassette over the fields that held the first end-of-record sector(s) or the BOR
(each field's bytes overwritten with 0x00 or 0xFF through the Cassette API), the daemon
is started again and the file is read back with dd: the same bytes, the same length,
and no EIO. The same for a foreign recording (a `backerd encode` stream put on the
cassette with `backerd cassette record`), whose length only the decoder knows.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from backerd.format.params import mode
from backerd.vcr.sim import Cassette
from testkit.systemtest import MODE, Daemon

# case: (last data sector partial?, first field wiped relative to the first sector after
# the user data, or None for the whole BOR; fields wiped)
CASES = {
    "first_eor_after_partial": (True, 0, 1),
    "first_eor_after_full": (False, 0, 1),
    "first_two_eor": (False, 0, 2),
    "bor": (True, None, None),
}

pytestmark = [pytest.mark.sectors,
              pytest.mark.skipif(mode(MODE).is_raw, reason=f"mode {MODE} has no sector format")]
# The daemon's mode and the low-density mode of the other codec on the same standard
# (chosen per tape with mt setdensity).
MODES = [MODE, MODE[0] + ("le" if mode(MODE).codec == "sp" else "ls")]


def user_length(name: str, partial: bool) -> int:
    params = mode(name)
    if params.codec == "ep":  # one outer-code group (and a third of a second one)
        return params.group_capacity + (params.group_capacity // 3 if partial else 0)
    return 3 * params.capacity + (params.capacity // 3 if partial else 0)


def data_sectors(name: str, n: int) -> int:
    params = mode(name)
    if params.codec == "ep":
        return 255 * -(-n // params.group_capacity)
    return -(-n // params.capacity)


def damage(cassette: Path, name: str, case: str, fill: int, length: int) -> None:
    """Overwrite the case's fields of the cassette's only recording (`length` user
    bytes) with `fill`."""
    params = mode(name)
    _, rel, count = CASES[case]
    with Cassette.open(cassette) as cas:
        (rec,) = cas.recordings
        assert rec.mode == name and rec.fmt in ("3.102", "auto")  # auto: foreign
        if rel is None:
            first, count = 0, params.n_bor
        else:
            first = params.n_bor + data_sectors(name, length) + rel
        assert first + count <= rec.fields
        old = cas.read_fields(rec.start + first, count)
        assert all(f is not None for f in old)
        cas.write_fields(rec.start + first, [bytes([fill]) * len(f) for f in old])


def read_back(daemon: Daemon, out: Path) -> bytes:
    daemon.mt(daemon.nrew, "rewind")
    result = daemon.run("dd", f"if={daemon.nrew}", f"of={out}", "bs=64k", ok=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"error" not in result.stderr.lower()
    return out.read_bytes()


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", MODES)
def test_file_written_through_the_device(daemon: Daemon, name: str, case: str) -> None:
    partial = CASES[case][0]
    data = random.Random(case).randbytes(user_length(name, partial))
    src = daemon.tmp / "in.bin"
    src.write_bytes(data)
    daemon.mt(daemon.nrew, "setdensity", hex(mode(name).mode_bits))
    daemon.run("dd", f"if={src}", f"of={daemon.nrew}", "bs=64k")
    assert daemon.stop() == 0
    damage(daemon.cassette, name, case, 0x00 if partial else 0xFF, len(data))
    daemon.start()
    back = read_back(daemon, daemon.tmp / "out.bin")
    assert len(back) == len(data)
    assert back == data


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", MODES)
def test_foreign_recording(daemon: Daemon, name: str, case: str) -> None:
    partial = CASES[case][0]
    data = random.Random(case).randbytes(user_length(name, partial))
    raw = daemon.run(*daemon.backerd("encode", "--mode", name), input=data).stdout
    assert daemon.stop() == 0
    daemon.run(*daemon.backerd("cassette", "record", str(daemon.cassette), "--mode", name),
               input=raw)
    damage(daemon.cassette, name, case, 0xFF if partial else 0x00, len(data))
    daemon.start()
    back = read_back(daemon, daemon.tmp / "out.bin")
    assert len(back) == len(data)
    assert back == data

"""A foreign recording (no block list) whose end the decoder had to infer: the medium
ends the file at the likeliest end, as the offline decoder does, and says in the log how
many bytes after it may have been lost (the device cannot check that end against a
block list, as it does for its own recordings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backerd.format.params import mode as mode_params
from backerd.format.recorder import encode_recording
from backerd.medium import BackerMedium
from backerd.tape.medium import FILEMARK
from backerd.vcr.base import Recording
from backerd.vcr.sim import Cassette, SimDeck


def _fields(raw: bytes, mode: str) -> list[bytes]:
    g = mode_params(mode).geometry
    out, pos, i = [], 0, 0
    while pos < len(raw):
        out.append(raw[pos: pos + g.field_length(i)])
        pos += g.field_length(i)
        i += 1
    return out


def _foreign(tmp_path: Path, fields: list[bytes], mode: str) -> SimDeck:
    cassette = Cassette.create(tmp_path / "c.img", "ntsc", "T-30")
    deck = SimDeck(cassette)
    cassette.begin_recording(0, mode, "3.102")
    deck.record(fields)
    cassette.commit_recording(Recording(0, len(fields), mode, "3.102", filemark=True,
                                        origin="record"))
    return deck


def _read_file(m: BackerMedium) -> bytes:
    out = b""
    while (block := m.read_block(1 << 20)) is not FILEMARK:
        assert isinstance(block, bytes), block
        out += block
    return out


def test_an_inferred_end_is_logged_with_what_may_have_been_lost(tmp_path: Path) -> None:
    params = mode_params("nls")
    cap, n = params.capacity, 10
    data = np.random.default_rng(7).integers(0, 256, n * cap - 100, np.uint8).tobytes()
    fields = _fields(encode_recording(data, params), "nls")
    # the last data sector and the first two EOR sectors, and the EOR run's last one, gone:
    # the end may lie anywhere from sector n - 1 to n + 2 (tests/format/test_lost_eor.py)
    first_eor = params.n_bor + n
    for i in range(first_eor - 1, first_eor + 2):
        fields[i] = b"\x00" * len(fields[i])
    last = first_eor + params.n_eor - 1
    fields[last] = b"\xff" * len(fields[last])
    notes: list[str] = []
    m = BackerMedium(_foreign(tmp_path, fields, "nls"), "nls", log=notes.append)
    assert _read_file(m) == data[: (n - 1) * cap]
    assert [x for x in notes if "may have been lost" in x] == [
        f"file 0: its end was inferred; up to {3 * cap} more bytes after it may have "
        "been lost"]


def test_a_clean_foreign_recording_logs_nothing(tmp_path: Path) -> None:
    params = mode_params("nls")
    data = np.random.default_rng(8).integers(0, 256, 5 * params.capacity, np.uint8).tobytes()
    notes: list[str] = []
    m = BackerMedium(_foreign(tmp_path, _fields(encode_recording(data, params), "nls"), "nls"),
                     "nls", log=notes.append)
    assert _read_file(m) == data
    assert not [x for x in notes if "may have been lost" in x]

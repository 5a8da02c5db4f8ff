"""Playback noise: seeded, deterministic, and doing what each knob says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backerd.errors import UsageError
from backerd.vcr.base import Recording
from backerd.vcr.noise import NoiseModel
from backerd.vcr.sim import Cassette, SimDeck

FIELD = bytes(range(1, 254)) * 4 + bytes(range(1, 5))  # 1016 bytes, NTSC low odd field


def diff(a: bytes, b: bytes) -> int:
    return int(np.count_nonzero(np.frombuffer(a, np.uint8) != np.frombuffer(b, np.uint8)))


def test_off_by_default() -> None:
    model = NoiseModel()
    assert not model.enabled
    assert model.apply(5, 1, FIELD) is FIELD
    assert SimDeck().noise.enabled is False


def test_same_seed_same_damage_new_pass_new_damage() -> None:
    model = NoiseModel(seed=7, errors=3, dropout=0.5, slip=0.5, gap=0.1)
    a = [model.apply(s, 1, FIELD) for s in range(200)]
    b = [NoiseModel(seed=7, errors=3, dropout=0.5, slip=0.5, gap=0.1).apply(s, 1, FIELD)
         for s in range(200)]
    assert a == b
    assert a != [model.apply(s, 2, FIELD) for s in range(200)]
    assert a != [NoiseModel(seed=8, errors=3, dropout=0.5, slip=0.5, gap=0.1).apply(s, 1, FIELD)
                 for s in range(200)]


def test_byte_errors_average_the_rate() -> None:
    model = NoiseModel(seed=1, errors=4)
    counts = [diff(model.apply(s, 0, FIELD), FIELD) for s in range(2000)]
    assert 3.8 < np.mean(counts) < 4.2
    assert all(len(model.apply(s, 0, FIELD)) == len(FIELD) for s in range(50))


def test_dropout_is_a_burst_of_zeros() -> None:
    model = NoiseModel(seed=2, dropout=1.0, dropout_length=30)
    damaged = 0
    for s in range(100):
        out = np.frombuffer(model.apply(s, 0, FIELD), np.uint8)
        bad = np.flatnonzero(out != np.frombuffer(FIELD, np.uint8))
        if bad.size:
            damaged += 1
            assert np.all(out[bad] == 0)
            assert bad[-1] - bad[0] + 1 >= bad.size  # one contiguous burst
            assert np.all(out[bad[0] : bad[-1] + 1] == 0)
    assert damaged == 100  # FIELD has no zero bytes, so every burst shows


@pytest.mark.parametrize("size,bpl", [(1016, 4), (2540, 10), (3050, 10)])
def test_line_slip_moves_the_rest_of_the_field_by_one_line(size: int, bpl: int) -> None:
    field = (bytes(range(1, 256)) * 13)[:size]
    model = NoiseModel(seed=3, slip=1.0)
    lengths = set()
    for s in range(40):
        out = model.apply(s, 0, field)
        lengths.add(len(out))
        if len(out) < size:  # one line deleted somewhere: out = field minus one line
            assert any(out == field[:a] + field[a + bpl :] for a in range(0, size, bpl))
        else:
            assert any(out == field[: a + bpl] + field[a:] for a in range(0, size, bpl))
    assert lengths == {size - bpl, size + bpl}


def test_gaps_blank_whole_fields() -> None:
    model = NoiseModel(seed=4, gap=0.05, gap_length=3)
    out = [model.apply(s, 0, FIELD) for s in range(3000)]
    blank = [s for s, f in enumerate(out) if f is None]
    assert 0.1 < len(blank) / 3000 < 0.2  # about 1 - 0.95**3
    assert all(f == FIELD for f in out if f is not None)
    assert model.apply(9, 0, None) is None


def test_parse() -> None:
    m = NoiseModel.parse("seed=9, errors=2.5,slip=0.01,gap=0.001,gap_length=4")
    assert m == NoiseModel(seed=9, errors=2.5, slip=0.01, gap=0.001, gap_length=4)
    assert NoiseModel.parse("") == NoiseModel()
    for bad in ("errors", "colour=3", "errors=x", "gap=2", "dropout_length=0"):
        with pytest.raises(UsageError):
            NoiseModel.parse(bad)


def test_deck_applies_noise_on_playback_only(tmp_path: Path) -> None:
    with Cassette.create(tmp_path / "n.img", "ntsc", "T-30") as c:
        deck = SimDeck(c, noise=NoiseModel(seed=5, errors=2))
        deck.record([FIELD] * 10)
        c.commit_recording(Recording(0, 10, "nlr", user_bytes=10160, blocks=((10160, 1),)))
        deck.rewind()
        first = deck.play(10)
        assert sum(diff(f, FIELD) for f in first if f is not None) > 0
        deck.rewind()
        second = deck.play(10)
        assert first != second  # a new pass
        assert c.read_fields(0, 10) == [FIELD] * 10  # the tape itself is clean

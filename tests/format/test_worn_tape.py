"""The worn-tape goal in the suite: for each kind of playback damage, at one level, our
decoder recovers strictly more files exactly than the original driver's method
(benchmarks/bench_worn.py draws the whole curves; docs/reliability.md)."""

from __future__ import annotations

import numpy as np
import pytest

from backerd.format.decode_options import DecoderOptions
from backerd.format.fields import FieldCutter
from backerd.format.params import mode
from backerd.format.player import Player, SectorLost
from backerd.format.recorder import encode_recording
from backerd.vcr.noise import NoiseModel


def files_recovered(name: str, model_of, size: int, files: int) -> tuple[int, int]:
    """(ours, original): files of `size` random bytes recovered exactly."""
    p = mode(name)
    ours = original = 0
    for f in range(files):
        data = np.random.default_rng(f).integers(0, 256, size, np.uint8).tobytes()
        cutter = FieldCutter(p)
        fields = cutter.cut(encode_recording(data, name)) + cutter.rest()
        model = model_of(f + 1, p.geometry.field_size)
        noisy = b"".join(g for g in (model.apply(i, 0, x) for i, x in enumerate(fields))
                         if g is not None)
        for options, is_ours in ((DecoderOptions(), True), (DecoderOptions.original(), False)):
            player = Player(name, "3.102", options=options)
            got = player.feed(noisy).data + player.finish().data
            if got == data:
                ours += is_ours
                original += not is_ours
    return ours, original


CASES = {
    # EP: invalid GCR words as erasures, lost sectors at their outer-code positions.
    "byte errors": ("nle", lambda s, n: NoiseModel(seed=s, errors=0.01 * n), 50_000, 2),
    # SP: constant-level runs as erasures (mean burst 40 bytes).
    "dropouts": ("nls", lambda s, n: NoiseModel(seed=s, dropout=0.03), 50_000, 3),
    # SP: slipped lines re-aligned instead of the sector lost.
    "line slips": ("nhs", lambda s, n: NoiseModel(seed=s, slip=0.05), 30_000, 2),
    # EP: 255-sector groups rebuilt from up to 20 lost sectors.
    "dropped fields": ("nle", lambda s, n: NoiseModel(seed=s, gap=0.05), 50_000, 2),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_more_files_recovered_than_by_the_original_method(kind):
    name, model_of, size, files = CASES[kind]
    ours, original = files_recovered(name, model_of, size, files)
    assert ours > original
    assert ours >= 1


# The simulated VCR's example noise in docs/usage.md, which every mode survives, and the
# earlier example with dropped fields (gap), which SP cannot survive.
SURVIVED = "seed=3,errors=2,dropout=0.01,dropout_length=8,slip=0.001"
WITH_GAPS = "seed=3,errors=2,dropout=0.01,slip=0.001,gap=0.0005"


def play_noisy(name: str, data: bytes, model: NoiseModel, pass_no: int):
    p = mode(name)
    cutter = FieldCutter(p)
    fields = cutter.cut(encode_recording(data, name)) + cutter.rest()
    played = [model.apply(i, pass_no, x) for i, x in enumerate(fields)]
    player = Player(name, "3.102")
    out, tail = player.feed(b"".join(g for g in played if g is not None)), player.finish()
    lost = {e.sector for e in out.events + tail.events if isinstance(e, SectorLost)}
    return out.data + tail.data, lost, [i for i, g in enumerate(played) if g is None]


def test_documented_example_is_survived_by_every_mode():
    data = np.random.default_rng(11).integers(0, 256, 1_000_000, np.uint8).tobytes()
    model = NoiseModel.parse(SURVIVED)
    for name in ("nls", "pls", "nhs", "phs", "nle", "nhe", "ple", "phe"):
        got, lost, _ = play_noisy(name, data, model, 0)
        assert got == data and not lost, name


def test_sp_cannot_survive_a_dropped_field_ep_can():
    """A dropped field takes one SP sector, and SP has no code across sectors; EP
    rebuilds it from its group's outer code."""
    data = np.random.default_rng(12).integers(0, 256, 400_000, np.uint8).tobytes()
    model = NoiseModel.parse(WITH_GAPS)
    p = mode("nhs")
    data_fields = range(p.n_bor, p.n_bor + -(-len(data) // p.capacity))
    pass_no = next(k for k in range(200)
                   if any(model.in_gap(i, k) for i in data_fields))
    got, lost, dropped = play_noisy("nhs", data, model, pass_no)
    gone = {i - p.n_bor for i in dropped if i in data_fields}
    assert gone and gone <= lost and got != data
    got, lost, _ = play_noisy("nhe", data, model, pass_no)
    assert got == data and not lost

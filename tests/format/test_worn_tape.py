"""The worn-tape goal in the suite: for each kind of playback damage, at one level, our
decoder recovers strictly more files exactly than the original driver's method
(benchmarks/bench_worn.py draws the whole curves; docs/reliability.md)."""

from __future__ import annotations

import numpy as np
import pytest

from backerd.format.decode_options import DecoderOptions
from backerd.format.fields import FieldCutter
from backerd.format.params import mode
from backerd.format.player import Player
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

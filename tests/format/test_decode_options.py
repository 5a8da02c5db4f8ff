"""DecoderOptions: the switches, and the original's outer-code erasure placement."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from backerd.format.decode_options import DecoderOptions
from backerd.format.ecc2 import decode_group, encode_group


def test_original_switches_every_feature_off_and_without_one():
    assert not any(dataclasses.astuple(DecoderOptions.original()))
    assert all(dataclasses.astuple(DecoderOptions()))
    off = DecoderOptions().without("resync")
    assert not off.resync and off.erasures and off.dropout_runs
    with pytest.raises(ValueError):
        DecoderOptions().without("colour")


def test_outer_erasures_at_the_group_index_recover_less():
    """Spec 17.3: the original erased lost sector j at codeword position j. With 12 lost
    data sectors the right positions recover the group, the original's cannot."""
    cap = 64
    data = np.random.default_rng(3).integers(0, 256, 235 * cap - 4, np.uint8).tobytes()
    group = encode_group(data, cap)
    lost = np.zeros(255, bool)
    lost[30 + 7 * np.arange(12)] = True  # 7 apart: no index j + 20 is another lost j
    damaged = group.copy()
    damaged[lost] = 0
    right = decode_group(damaged, lost)
    assert right.ok and right.data == data
    wrong = decode_group(damaged, lost, index_positions=True)
    assert not wrong.ok and wrong.lost

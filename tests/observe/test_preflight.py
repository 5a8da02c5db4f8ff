"""Preflight rules and the capacity inverse."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backerd.format.fields import fields_needed
from backerd.format.params import mode
from backerd.observe.preflight import Facts, answer, capacity_bytes

GOOD = Facts(loaded=True, label="MON", expected_label="MON", write_protected=False,
             free_fields=100_000, free_bytes=10**9, need_bytes=10**8, passes=3,
             wear_limit=500, state="active", fps=60)


def test_all_good() -> None:
    assert all(a.ok for a in answer(GOOD))


@pytest.mark.parametrize(("change", "failing"), [
    ({"loaded": False}, 0), ({"label": "TUE"}, 0), ({"label": None}, 0),
    ({"write_protected": True}, 1), ({"state": "retired"}, 1), ({"state": "full"}, 1),
    ({"need_bytes": 2 * 10**9}, 2), ({"passes": 500}, 3),
])
def test_each_failure_is_named(change: dict, failing: int) -> None:
    answers = answer(dataclasses.replace(GOOD, **change))
    assert [i for i, a in enumerate(answers) if not a.ok] == [failing]


@given(st.sampled_from(["nls", "nhs", "nle", "phe", "nlr"]), st.integers(0, 200_000))
def test_capacity_is_the_largest_size_that_fits(name: str, fields: int) -> None:
    params = mode(name)
    cap = capacity_bytes(params, fields)
    if cap:
        assert fields_needed(params, cap) <= fields
    assert fields_needed(params, cap + 1) > fields or fields_needed(params, 0) > fields

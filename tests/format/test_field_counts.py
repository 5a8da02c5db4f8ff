"""fields.bytes_within against fields_needed, the count it inverts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.format.fields import bytes_within, fields_needed
from backerd.format.params import MODES, mode


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(MODES), fields=st.integers(-3, 400_000))
def test_bytes_within_is_the_largest_count_that_fits(name: str, fields: int) -> None:
    params = mode(name)
    room = bytes_within(params, fields)
    if fields_needed(params, 0) > fields:
        assert room == -1
    else:
        assert room >= 0
        assert fields_needed(params, room) <= fields
        assert fields_needed(params, room + 1) > fields


def test_an_empty_recording_needs_its_bor_and_eor() -> None:
    params = mode("nhs")
    empty = params.n_bor + params.n_eor + (params.n_bor + params.n_eor) % 2
    assert bytes_within(params, empty - 1) == -1
    assert bytes_within(params, empty) == 0
    # one more pair of fields holds two whole sectors
    assert bytes_within(params, empty + 2) == 2 * params.capacity

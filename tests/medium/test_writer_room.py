"""RecordingWriter's end-of-tape questions against fields_needed, asked per block."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.format.fields import fields_needed
from backerd.format.params import MODES
from backerd.medium.writer import RecordingWriter


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(MODES),
    start=st.integers(0, 5000),
    tape_length=st.integers(0, 20_000),
    blocks=st.lists(st.integers(1, 3_000_000), min_size=1, max_size=12),
)
def test_fits_and_reaches_follow_the_field_count(
    name: str, start: int, tape_length: int, blocks: list[int]
) -> None:
    writer = RecordingWriter.new(start, name)
    params = writer.recorder.params
    zone = 300
    for size in blocks:  # the same writer, growing: its cached room must stay right
        assert writer.fits(size, tape_length) == (
            start + fields_needed(params, writer.user_bytes + size) <= tape_length)
        here = start + fields_needed(params, writer.user_bytes)
        assert writer.reaches(tape_length - zone) == (here >= tape_length - zone)
        assert writer.reaches(here) and not writer.reaches(here + 1)
        writer.user_bytes += size

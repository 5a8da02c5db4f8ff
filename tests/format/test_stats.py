"""The statistics accumulator: batch facts applied in order, restarts at BOR sectors."""

from __future__ import annotations

import numpy as np

from backerd.format.stats import BatchStats, Statistics

FRAME = 2000  # a distance above 1500 is a missed field


def arr(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def fresh() -> Statistics:
    st = Statistics()
    st.start_stream(parity=10, key_length=22, frame_size=FRAME)
    return st


def search(starts: np.ndarray, matches: np.ndarray, slips: np.ndarray, first: int = 0,
           **counts: int) -> BatchStats:
    batch = BatchStats(**counts)
    batch.note_key_search(starts, matches, slips, first)
    return batch


def test_field_distances_run_across_batches() -> None:
    st = fresh()
    st.apply(search(arr(0, 1000, 2000), arr(22, 20, 22), arr(0, 1, 0), fields=3))
    st.apply(search(arr(4000, 5000), arr(21, 22), arr(0, 0), fields=2))
    assert st.fields == 5
    assert st.worst_key == 20 and st.line_slips == 1
    # distances 1000, 1000 | 2000 (across the batches: a missed field), 1000
    assert (st.smallest_field, st.largest_field, st.framing_errors) == (1000, 2000, 1)


def test_counts_add_and_the_worst_codeword_is_kept() -> None:
    st = fresh()
    a = BatchStats(sectors_decoded=5, bad_sectors=1, sector_number=7)
    a.note_codewords(corrected=4, worst=3, erasures=2)
    b = BatchStats(sectors_decoded=2, lost_sectors=3, bad_sector_runs=1, underflows=1,
                   unrecovered_bytes=300, groups_decoded=1, outer_corrected=9)
    b.note_codewords(corrected=1, worst=1, erasures=0)
    st.apply(a)
    st.apply(b)
    assert (st.sectors_decoded, st.bad_sectors, st.lost_sectors, st.bad_sector_runs) == (
        7, 1, 3, 1)
    assert (st.byte_errors, st.worst_block, st.erasures_used) == (5, 3, 2)
    assert (st.underflows, st.unrecovered_bytes, st.groups_decoded, st.outer_corrected) == (
        1, 300, 1, 9)
    assert st.sector_number == 7  # b decoded no sector: the number stays
    assert st.take_recently() == 3 and st.take_recently() == 0


def test_a_restart_drops_the_errors_before_it() -> None:
    st = fresh()
    st.apply(search(arr(0, 900), arr(10, 22), arr(1, 0), fields=2, bad_sectors=4,
                    sectors_decoded=3, underflows=2, closest_non_key=9))
    batch = BatchStats(underflows=1, bad_sectors=2, sectors_decoded=1, closest_non_key=8)
    batch.begin_restart()  # the BOR sector of field 1 of this batch
    batch.sectors_decoded += 2
    batch.bad_sectors += 1
    batch.note_key_search(arr(2000, 3000, 4000), arr(11, 21, 19), arr(1, 0, 2), first=2)
    batch.fields = 3
    st.apply(batch)
    assert st.fields == 5 and st.sectors_decoded == 6  # not errors: counted on
    assert (st.bad_sectors, st.underflows, st.closest_non_key) == (1, 0, 0)
    # key figures of the field after the BOR field only; its distance from the BOR field
    assert (st.worst_key, st.line_slips) == (19, 2)
    assert (st.smallest_field, st.largest_field, st.framing_errors) == (1000, 1000, 0)


def test_a_restart_at_the_last_field_bases_the_next_distance_on_it() -> None:
    st = fresh()
    st.apply(search(arr(0, 1000), arr(22, 22), arr(0, 0), fields=2))
    batch = BatchStats(fields=1)
    batch.begin_restart()
    batch.note_key_search(arr(2500), arr(15), arr(0), first=1)
    st.apply(batch)
    assert st.worst_key is None and st.smallest_field is None
    st.apply(search(arr(3500), arr(22), arr(0), fields=1))
    assert (st.smallest_field, st.largest_field, st.worst_key) == (1000, 1000, 22)


def test_format_search_figures_end_when_the_decoder_starts() -> None:
    st = Statistics()
    st.note_format_search(fields=40, closest_non_key=6)
    assert (st.fields, st.closest_non_key) == (40, 6)
    st.start_stream(parity=20, key_length=29, frame_size=FRAME)
    assert (st.fields, st.closest_non_key, st.parity, st.key_length) == (0, 0, 20, 29)
    assert "worst_key" in st.as_dict() and "_last_field_start" not in st.as_dict()

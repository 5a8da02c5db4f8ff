"""record_end.OpenEnd: the first EOR number from the sectors that survive.

Checked against a brute-force oracle (every candidate number tried against every
surviving sector) and against simulated recording ends whose truth is known.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from backerd.format.params import mode
from backerd.format.record_end import OpenEnd
from backerd.format.sector_types import DecodedSectors, SectorKind

FIELD = mode("nls").geometry.field_size  # = nle's: fields are this far apart below


def open_end(fmt: str, *, groups: bool, after: int, seen: int, last_short: bool) -> OpenEnd:
    params = mode("nle" if groups else "nls", fmt)
    return OpenEnd(params, groups=groups, after=after, seen=seen, last_short=last_short,
                   at=0, consumed=0)


def eor_rows(numbers: list[int | None]) -> tuple[np.ndarray, DecodedSectors]:
    """Fields 1, 2, ... after the `seen` one: an EOR sector's number, or None (lost)."""
    n = len(numbers)
    ok = np.array([x is not None for x in numbers], bool)
    dec = DecodedSectors(
        ok=ok, number=np.array([x or 0 for x in numbers], np.int64),
        length=np.zeros(n, np.int64), kind=np.full(n, int(SectorKind.EOR), np.int64),
        data=np.zeros((n, 1), np.uint8), corrected=np.zeros(n, np.int64),
        worst=np.zeros(n, np.int64))
    return np.arange(1, n + 1, dtype=np.int64) * FIELD, dec


def oracle(*, after: int, seen: int, later: list[int], run_max: int, group: int,
           first_data: int, last_short: bool) -> list[int]:
    """Every first EOR number every surviving EOR sector agrees with, smallest first
    (group-aligned ones when there are any)."""
    if last_short:
        return [after + 1]
    if seen in later:
        return [seen]  # every EOR sector numbered alike (HEAD)
    run = [seen] + [n for n in later if seen < n < seen + run_max]

    def fits(e: int, aligned: bool) -> bool:
        return (all(e <= n <= e + run_max - 1 for n in run)
                and (not aligned or (e - first_data) % group == 0))

    for aligned in (True, False):
        found = [e for e in range(after + 1, seen + 1) if fits(e, aligned)]
        if found:
            return found
    raise AssertionError("no candidate")


@settings(max_examples=300, deadline=None)
@example(fmt="3.102", groups=True, after=185, gap=70, last_short=False, later=[315])
@given(fmt=st.sampled_from(["3.102", "3.101", "3.3"]), groups=st.booleans(),
       after=st.integers(-1, 600), gap=st.integers(1, 70), last_short=st.booleans(),
       later=st.lists(st.one_of(st.none(), st.integers(0, 800)), max_size=70))
def test_open_end_matches_the_brute_force_oracle(fmt, groups, after, gap, last_short, later):
    groups = groups and fmt == "3.102"
    seen = after + 1 + gap
    end = open_end(fmt, groups=groups, after=after, seen=seen, last_short=last_short)
    starts, dec = eor_rows(later)
    done = end.follow(starts, dec, 0)
    # What `follow` looked at: the fields up to the first that settled it.
    looked: list[int] = []
    for i, n in enumerate(later):
        if i + 1 >= end.run_max:
            break
        if n is not None:
            looked.append(n)
        probe = open_end(fmt, groups=groups, after=after, seen=seen, last_short=last_short)
        for m in looked:
            probe.see(m)
        left = probe.candidates()
        # one number left that a later sector cannot raise: only `seen` itself, or fixed
        # by a short last sector or a repeated number
        if len(left) <= 1 and (last_short or probe.repeated or left[0] == seen):
            break
    params = mode("nls", fmt)
    possible = oracle(
        after=after, seen=seen, later=looked, run_max=end.run_max,
        group=255 if groups else 1, first_data=params.n_bor if fmt == "3.3" else 0,
        last_short=last_short)
    assert end.first_eor() == possible[0]
    # the sectors between the number taken and the highest possible one are reported
    # as possibly lost: they may have been data
    assert end.ambiguous() == possible[-1] - possible[0]
    if len(later) >= end.run_max:
        assert done


@settings(max_examples=300, deadline=None)
@given(groups=st.booleans(), n_data=st.integers(0, 2000), lost_data=st.integers(0, 300),
       lost_eor=st.integers(0, 59), holes=st.sets(st.integers(0, 59)))
def test_simulated_3102_ends_give_the_true_first_eor(groups, n_data, lost_data, lost_eor,
                                                      holes):
    """A complete EOR run whose last sector survives always gives the true first EOR
    number (at the latest when the stream ends), whatever data and leading EOR
    sectors were lost before it."""
    if groups:
        n_data -= n_data % 255
    lost_data = min(lost_data, n_data)
    if lost_data + lost_eor == 0:
        lost_eor = 1
    fps = mode("nls").n_eor
    eor = list(range(n_data, n_data + fps))
    alive = [n for i, n in enumerate(eor) if i >= lost_eor and (i not in holes or i == fps - 1)]
    end = open_end("3.102", groups=groups, after=n_data - lost_data - 1, seen=alive[0],
                   last_short=False)
    starts, dec = eor_rows([n if n in alive else None for n in eor[eor.index(alive[0]) + 1:]])
    end.follow(starts, dec, 0)  # may wait for more sectors: the stream's end settles it
    assert end.first_eor() == n_data


def test_ecc2_groups_take_the_group_boundary_until_a_later_sector_excludes_it():
    end = open_end("3.102", groups=True, after=254, seen=256, last_short=False)
    assert end.first_eor() == 255
    # a later sector of the run could still exclude 255: not final yet
    assert not end.settled(0)
    starts, dec = eor_rows(list(range(257, 300)))
    end.follow(starts, dec, 0)
    assert end.first_eor() == 255
    # sector 315 is of the run only if the run starts at 256 or later
    end = open_end("3.102", groups=True, after=254, seen=256, last_short=False)
    starts, dec = eor_rows([315])
    end.follow(starts, dec, 0)
    assert end.first_eor() == 256


def test_head_streams_number_every_eor_sector_alike():
    end = open_end("3.102", groups=False, after=9, seen=12, last_short=False)
    starts, dec = eor_rows([12, 12])
    assert end.follow(starts, dec, 0)
    assert end.first_eor() == 12  # sectors 10 and 11 were data


def test_legacy_full_last_sector_allows_bkrencode_extra_empty_sector():
    """3.101/3.3 `bkrencode` put one empty sector before the fps EOR sectors after a full
    last data sector: a lost sector before a whole EOR run may be that one, and is not
    taken for data (spec 16)."""
    fps = mode("nls", "3.101").n_eor
    end = open_end("3.101", groups=False, after=9, seen=11, last_short=False)
    starts, dec = eor_rows(list(range(12, 11 + fps)))
    end.follow(starts, dec, 0)
    assert end.run_max == fps + 1 and end.first_eor() == 10
    # 3.102 has no such sector: the same evidence means sector 10 was data.
    end = open_end("3.102", groups=False, after=9, seen=11, last_short=False)
    assert end.follow(starts, dec, 0) and end.first_eor() == 11


def rows(sectors: list[tuple[SectorKind, int]]) -> tuple[np.ndarray, DecodedSectors]:
    """Fields 1, 2, ... after the `seen` one: each a decoded sector (kind, number)."""
    starts, dec = eor_rows([number for _, number in sectors])
    dec.kind[:] = [int(kind) for kind, _ in sectors]
    return starts, dec


D, B, E = SectorKind.DATA, SectorKind.BOR, SectorKind.EOR


def test_a_later_sector_of_the_recording_proves_the_eor_sector_out_of_place():
    end = open_end("3.102", groups=False, after=9, seen=80, last_short=False)
    assert end.follow(*rows([(E, 81), (D, 11), (D, 12)]), 0)
    assert end.resume == 1  # data sector 11 continues the recording after sector 9


@pytest.mark.parametrize(("sector", "last_short"), [
    ((D, 12), False),  # numbered like the EOR run: not this recording's data
    ((D, 5), False),  # at or below the last delivered sector
    ((D, 10), True),  # the last data sector was short: nothing follows it
    ((B, -300), False),  # a later recording's BOR after data
])
def test_sectors_that_do_not_continue_the_recording_do_not_resume_it(sector, last_short):
    end = open_end("3.102", groups=False, after=9, seen=12, last_short=last_short)
    end.follow(*rows([sector]), 0)  # may wait for the run's fields to pass
    assert end.resume is None and end.first_eor() == 10
    # the run's fields passed with nothing that continues the recording: settled
    starts, dec = rows([sector, (E, 13)])
    starts[1] = end.run_max * FIELD
    assert end.follow(starts, dec, 0) and end.resume is None and end.first_eor() == 10


def test_a_stray_sector_does_not_hide_a_later_one_that_continues_the_recording():
    """A span swapped into the BOR run can carry an EOR sector and then a BOR sector of
    its own: the BOR run's next sector still proves both out of place."""
    params = mode("nls")
    end = OpenEnd(params, groups=False, after=-1, seen=10, last_short=False, at=0,
                  consumed=0, last_bor=-61)
    assert end.follow(*rows([(B, -230), (B, -57)]), 0) and end.resume == 1


def test_a_bor_sector_continues_only_the_bor_run_it_follows():
    params = mode("nls")
    def stray(last_bor: int) -> OpenEnd:
        return OpenEnd(params, groups=False, after=-1, seen=92, last_short=False, at=0,
                       consumed=0, last_bor=last_bor)
    end = stray(-280)
    assert end.follow(*rows([(B, -278)]), 0) and end.resume == 0
    end = stray(-280)  # a new recording starts its BOR run from its lowest number
    end.follow(*rows([(B, -300), (B, -299)]), 0)
    assert end.resume is None

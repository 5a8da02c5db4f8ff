"""out_of_place.stray: a suspect sector is out of place when a later sector within the
window continues the recording from the sector accepted before it.

Sectors here are rows one field apart, row r at stream offset r * FIELD; the anchor is
the last sector accepted before the suspect one (row 0).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from backerd.format.out_of_place import Anchor, hold, joined, rows_from, stray
from backerd.format.params import mode
from backerd.format.sector_types import DecodedSectors, SectorKind
from backerd.format.sync import FieldBatch

FIELD = mode("nls").geometry.field_size
WINDOW = 60
D, B, E = int(SectorKind.DATA), int(SectorKind.BOR), int(SectorKind.EOR)
AFTER_BOR = frozenset({B})
AFTER_DATA = frozenset({D, E})


def sectors(rows: list[tuple[int, int] | None]) -> tuple[np.ndarray, DecodedSectors]:
    """Rows 0, 1, ...: (kind, number) of a decoded sector, or None (not decoded)."""
    n = len(rows)
    ok = np.array([r is not None for r in rows], bool)
    dec = DecodedSectors(
        ok=ok, number=np.array([r[1] if r else 0 for r in rows], np.int64),
        length=np.zeros(n, np.int64), kind=np.array([r[0] if r else D for r in rows]),
        data=np.zeros((n, 1), np.uint8), corrected=np.zeros(n, np.int64),
        worst=np.zeros(n, np.int64))
    return np.arange(n, dtype=np.int64) * FIELD, dec


def verdict(anchor: Anchor, rows: list[tuple[int, int] | None], *, suspect: int = 1,
            final: bool = False) -> bool | None:
    starts, dec = sectors(rows)
    return stray(anchor, starts, dec, suspect, field_size=FIELD, window=WINDOW, final=final)


# The BOR run: BOR -224 at row 0, then a data sector, then what follows it.
BOR_ANCHOR = Anchor(-224, 0, AFTER_BOR)


@pytest.mark.parametrize(("after", "expected"), [
    ([(B, -222)], True),  # the BOR run goes on, numbered by the fields passed
    ([None, None, (B, -220)], True),  # after fields that did not decode
    ([(D, 5), (D, 6), (B, -220)], True),  # a swapped span of several data sectors
    ([(D, 5), (D, 6)], None),  # data goes on: wait for the window
    ([(B, -300)], None),  # a lower BOR number continues nothing
    ([(B, -100)], None),  # further ahead than the fields passed: not the same run
    ([(E, 7)], None),  # an EOR sector is not what follows a BOR
])
def test_a_data_sector_inside_the_bor_run(after, expected):
    assert verdict(BOR_ANCHOR, [(B, -224), (D, 4), *after]) is expected


def test_without_a_continuation_the_window_or_the_stream_end_decides():
    rows = [(B, -224), (D, 4)] + [(D, 5 + k) for k in range(WINDOW + 1)]
    assert verdict(BOR_ANCHOR, rows) is False  # genuine: fields vanished before it
    assert verdict(BOR_ANCHOR, [(B, -224), (D, 4), (D, 5)], final=True) is False
    late = [(B, -224), (D, 4)] + [None] * WINDOW + [(B, -224 + WINDOW + 2)]
    assert verdict(BOR_ANCHOR, late) is False  # past the window: not looked at


# The data: data sector 28 at row 0, then a BOR sector, then what follows it.
DATA_ANCHOR = Anchor(28, 0, AFTER_DATA)


@pytest.mark.parametrize(("after", "expected"), [
    ([None, (E, 31)], True),  # the EOR run of this recording, where its numbers put it
    ([(D, 30)], True),  # the data goes on
    ([(B, -188), (D, 31)], True),  # a swapped span of BOR sectors
    ([(B, -299), (B, -298)], None),  # a later recording's BOR run: wait, then end
    ([(D, 3)], None),  # a later recording's data (numbered from 0)
    ([(D, 90)], None),  # numbered beyond the fields passed
])
def test_a_bor_sector_inside_the_data(after, expected):
    assert verdict(DATA_ANCHOR, [(D, 28), (B, -189), *after]) is expected


def test_after_a_short_last_data_sector_only_the_eor_run_continues():
    only_eor = Anchor(28, 0, frozenset({E}))
    assert verdict(only_eor, [(D, 28), (B, -189), (D, 30)], final=True) is False
    assert verdict(only_eor, [(D, 28), (B, -189), (E, 30)], final=True) is True


def test_rows_from_keeps_the_fields_from_a_row_on():
    n, pay = 5, 8
    batch = FieldBatch(
        start=np.arange(n, dtype=np.int64) * 100, end=np.arange(n, dtype=np.int64) * 100 + 90,
        payload=np.arange(n * pay, dtype=np.uint8).reshape(n, pay),
        erasures=np.zeros((n, pay), bool), suspect=np.ones((n, pay), bool),
        matches=np.arange(n, dtype=np.int64), slips=np.zeros(n, np.int64),
        missing=np.zeros((n, 3), bool), alternatives={100: "one", 300: "three"},
        closest_non_key=7)
    tail = rows_from(batch, 2)
    assert tail.start.tolist() == [200, 300, 400] and len(tail) == 3
    assert (tail.payload == batch.payload[2:]).all() and tail.matches.tolist() == [2, 3, 4]
    assert tail.missing.shape == (3, 3) and tail.alternatives == {300: "three"}
    assert tail.closest_non_key == 0  # counted with the batch it came from


def test_held_rows_join_the_next_batch_with_their_decode():
    starts, dec = sectors([(B, -3), (B, -2), (D, 0)])
    fields = FieldBatch.empty(4)
    fields = dataclasses.replace(fields, start=starts, end=starts + 1,
                                 payload=np.zeros((3, 4), np.uint8),
                                 erasures=np.zeros((3, 4), bool),
                                 suspect=np.zeros((3, 4), bool),
                                 matches=np.zeros(3, np.int64), slips=np.zeros(3, np.int64),
                                 missing=np.zeros((3, 0), bool))
    damaged = np.zeros((3, 1), bool)
    damaged[2] = True
    dec = dataclasses.replace(dec, damaged=damaged)
    kept = hold(fields, dec, np.arange(3), 1)
    more_starts, more = sectors([(D, 1)])
    more_fields = rows_from(fields, 2)  # any one field: only its rows count
    both, got, used = joined(kept, more_fields, more, np.array([9]))
    assert len(both) == 3 and used.tolist() == [1, 2, 9]
    assert got.number.tolist() == [-2, 0, 1] and got.kind.tolist() == [B, D, D]
    # the new batch said nothing damaged (None): made explicit beside the held rows
    assert got.damaged is not None and got.damaged[:, 0].tolist() == [False, True, False]
    assert joined(kept, more_fields, None, None)[1] is kept.dec  # no new field

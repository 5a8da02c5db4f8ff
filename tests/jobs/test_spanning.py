"""Archives spanning cassettes: the next cassette's name, the size estimate and the
cassettes a run takes (pure), and the jobs retention rule as next-volume applies it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backerd.catalog.store import CassetteRow, Catalog, RecordingRow
from backerd.catalog.volumes import holds_unexpired
from backerd.jobs import history
from backerd.jobs.records import BackupRecord, Piece
from backerd.jobs.retention import retention
from backerd.jobs.spanning import run_cassettes, size_estimate, volume_image

T0 = datetime(2026, 5, 1, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize(("pattern", "volume", "image"), [
    ("/srv/tapes/home-$TAR_VOLUME.img", 2, "/srv/tapes/home-2.img"),
    ("/srv/tapes/home-${TAR_VOLUME}b.img", 12, "/srv/tapes/home-12b.img"),
    ("TAPE-$TAR_VOLUME-$TAR_VOLUME", 3, "TAPE-3-3"),
])
def test_volume_image(pattern: str, volume: int, image: str) -> None:
    assert volume_image(pattern, volume) == image


@given(st.text(alphabet="/ab-_.", max_size=12), st.text(alphabet="/ab-_.", max_size=12),
       st.integers(1, 10_000))
def test_volume_image_puts_the_number_where_the_variable_was(head: str, tail: str,
                                                             volume: int) -> None:
    assert volume_image(f"{head}$TAR_VOLUME{tail}", volume) == f"{head}{volume}{tail}"


def run(i: int, level: int, size: int, *, job: str = "home",
        result: str = "written") -> BackupRecord:
    return BackupRecord(i, job, level, T0 + timedelta(days=i), result,
                        pieces=(Piece("u-a", i, size),), bytes=size)


def test_size_estimate_is_the_last_written_run_at_the_level() -> None:
    records = [run(1, 0, 1000), run(2, 1, 50), run(3, 0, 1200), run(4, 1, 70),
               run(5, 0, 9999, result="failed"), run(6, 0, 5, job="etc"), run(7, 2, 0)]
    assert size_estimate(records, "home", 0) == 1200
    assert size_estimate(list(reversed(records)), "home", 0) == 1200  # by time, not order
    assert size_estimate(records, "home", 1) == 70
    assert size_estimate(records, "home", 2) is None  # wrote nothing: no estimate
    assert size_estimate(records, "home", 3) is None
    assert size_estimate(records, "etc", 0) == 5


def fill(need: int, first: int, blank: int) -> int:
    """Oracle: the loaded cassette, then blank ones, until the bytes are placed."""
    left, used = need - max(first, 0), 1 if first > 0 or need == 0 else 0
    while left > 0:
        left -= blank
        used += 1
    return max(used, 1)


@given(st.integers(0, 10**5), st.integers(0, 10**5), st.integers(1, 10**5))
def test_run_cassettes_against_filling(need: int, left: int, blank: int) -> None:
    assert run_cassettes(need, left, blank) == fill(need, left, blank)


def test_run_cassettes_unknown() -> None:
    assert run_cassettes(None, 10, 10) is None
    assert run_cassettes(10, None, 10) is None
    assert run_cassettes(10, 5, None) is None


# -- the jobs retention rule for next-volume ----------------------------------------------


@pytest.fixture
def catalog(tmp_path: Path):
    with Catalog(tmp_path / "catalog.db") as c:
        for uuid in ("u-a", "u-b", "u-c", "u-d"):
            c.put_cassette(CassetteRow(uuid=uuid, label=""))
        yield c


def recording(catalog: Catalog, uuid: str, n: int, size: int, status: str = "ok") -> None:
    catalog.store_recording(uuid, RecordingRow(n, 0, 10, "nhs", "3.102", size, 1, size,
                                               status=status))


def test_a_spanning_backup_holds_both_cassettes_until_it_expires(catalog: Catalog) -> None:
    # a full spanning u-a (file 0) and u-b (file 0); u-a also holds an archive by hand
    recording(catalog, "u-a", 0, 4096)
    recording(catalog, "u-b", 0, 2048)
    recording(catalog, "u-a", 1, 512)
    spanning = BackupRecord(0, "home", 0, T0, "written", True,
                            (Piece("u-a", 0, 4096, 0), Piece("u-b", 0, 2048, 1)))
    history.add_run(catalog, spanning)
    keep = {"home": 1}
    assert history.retention_on(catalog, "u-a", keep) == (True, ["ok"])
    assert history.retention_on(catalog, "u-b", keep) == (True, [])
    assert history.retention_on(catalog, "u-c", keep) is None  # no job ran on it
    # a newer verified full on u-c: the spanning one expires on both cassettes
    recording(catalog, "u-c", 0, 100)
    history.add_run(catalog, BackupRecord(0, "home", 0, T0 + timedelta(days=7), "written",
                                          True, (Piece("u-c", 0, 100),)))
    assert history.retention_on(catalog, "u-b", keep) == (False, [])
    assert history.retention_on(catalog, "u-a", keep) == (False, ["ok"])
    assert retention(history.runs(catalog), keep,
                     history.foreign_cassettes(catalog, ["u-a", "u-b"])).reusable == ("u-b",)
    # as next-volume judges them: u-b may be written over, u-a holds the hand archive
    judged_b = history.retention_on(catalog, "u-b", keep)
    assert judged_b is not None
    assert holds_unexpired("active", judged_b[1], 1, judged_b[0]) is False
    judged_a = history.retention_on(catalog, "u-a", keep)
    assert judged_a is not None
    assert holds_unexpired("active", judged_a[1], 2, judged_a[0]) is True
    # without the jobs rule, the recordings alone would hold u-b forever
    assert holds_unexpired("active", ["ok"], 1) is True

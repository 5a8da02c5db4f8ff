"""The catalog store: migrations, pending recordings, commit on filemark, crashes."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from backerd.catalog.schema import VERSION, migrate
from backerd.catalog.store import CassetteRow, Catalog, RecordingRow, unlabelled_uuid
from backerd.errors import UsageError


def tar_bytes(names: list[str]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 700
            info.mtime = 1_700_000_000
            tf.addfile(info, io.BytesIO(b"z" * 700))
    return out.getvalue()


def rec(n: int) -> RecordingRow:
    return RecordingRow(file_number=n, field_start=100 * n, field_end=0, mode="nhs",
                        format="3.102", bytes=0, blocks=0, block_size=0,
                        written_by="test")


@pytest.fixture
def catalog(tmp_path: Path):
    with Catalog(tmp_path / "catalog.db") as cat:
        cat.put_cassette(CassetteRow(uuid="u-1", label="MONDAY", standard="PAL",
                                     length_seconds=3 * 3600))
        yield cat


def test_pending_recording_is_invisible_until_the_filemark(catalog: Catalog) -> None:
    pending = catalog.begin_recording("u-1", rec(0))
    data = tar_bytes(["etc/passwd", "home/a/" + "x" * 150])
    for i in range(0, len(data), 1000):
        pending.feed(data[i:i + 1000])
    assert catalog.recordings("u-1") == []
    pending.commit_on_filemark(field_end=999, counter_end="0:00:10")
    [stored] = catalog.recordings("u-1")
    assert stored.content == "tar" and stored.bytes == len(data)
    assert [m.path for m in stored.members] == ["etc/passwd", "home/a/" + "x" * 150]
    assert catalog.cassette("MONDAY").state == "active"
    hits = list(catalog.find("*passwd"))
    assert hits[0]["label"] == "MONDAY" and hits[0]["file_number"] == 0


def test_abandoned_recording_leaves_nothing(catalog: Catalog) -> None:
    pending = catalog.begin_recording("u-1", rec(0))
    pending.feed(b"not tar" * 100)
    pending.abandon()
    pending.commit_on_filemark(field_end=1)  # after abandon: a no-op
    assert catalog.recordings("u-1") == []


def test_writing_file_n_drops_later_files(catalog: Catalog) -> None:
    for n in range(3):
        p = catalog.begin_recording("u-1", rec(n))
        p.feed(os.urandom(2000))
        p.commit_on_filemark(field_end=100 * n + 50)
    p = catalog.begin_recording("u-1", rec(1))
    p.feed(tar_bytes(["new"]))
    p.commit_on_filemark(field_end=160)
    got = [(r.file_number, r.content) for r in catalog.recordings("u-1")]
    assert got == [(0, "opaque"), (1, "tar")]


def test_set_state_location_and_errors(catalog: Catalog) -> None:
    row = catalog.set_cassette("MONDAY", state="retired", location="shelf 3")
    assert (row.state, row.location) == ("retired", "shelf 3")
    with pytest.raises(UsageError):
        catalog.set_cassette("MONDAY", state="lost")
    with pytest.raises(UsageError):
        catalog.cassette("TUESDAY")


def test_wear_threshold(catalog: Catalog) -> None:
    catalog.set_cassette("u-1", wear_limit=10)
    catalog.add_passes("u-1", 9)
    assert not catalog.cassette("u-1").worn
    catalog.add_passes("u-1", 1)
    assert catalog.cassette("u-1").worn


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.db")
    db.execute(f"PRAGMA user_version = {VERSION + 1}")
    with pytest.raises(UsageError, match="newer|knows up to"):
        migrate(db)


def test_migration_from_empty_is_idempotent(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    assert migrate(db) == 0
    assert migrate(db) == VERSION
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"cassettes", "recordings", "members"} <= tables


def test_unlabelled_identity_is_stable() -> None:
    assert unlabelled_uuid("old tape 1") == unlabelled_uuid("old tape 1")
    assert unlabelled_uuid("old tape 1") != unlabelled_uuid("old tape 2")


WRITER = r"""
import os, sys
from backerd.catalog.store import Catalog, CassetteRow, RecordingRow
cat = Catalog(sys.argv[1])
cat.put_cassette(CassetteRow(uuid="u-k", label="K"))
n = 0
while True:
    p = cat.begin_recording("u-k", RecordingRow(n, n, 0, "nhs", "3.102", 0, 0, 0))
    p.feed(os.urandom(20000))
    # the "filemark": a line on stdout after the commit returned
    p.commit_on_filemark(field_end=n + 1)
    print(n, flush=True)
    n += 1
"""


def test_kill_9_never_leaves_uncommitted_rows(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    for attempt in range(3):
        with subprocess.Popen([sys.executable, "-c", WRITER, str(db)],
                              stdout=subprocess.PIPE, text=True) as proc:
            assert proc.stdout is not None
            acknowledged = -1
            deadline = time.monotonic() + 60
            while acknowledged < 5 * (attempt + 1) and time.monotonic() < deadline:
                acknowledged = int(proc.stdout.readline())
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        with Catalog(db) as cat:
            assert cat.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            files = [r.file_number for r in cat.recordings("u-k")]
        # every acknowledged file is there, at most one more (committed, not yet printed)
        assert files == list(range(len(files)))
        assert acknowledged + 1 <= len(files) <= acknowledged + 2


def test_live_catalog_marks_a_cassette_full_past_the_warning_zone(catalog: Catalog) -> None:
    from backerd.catalog.live import LiveCatalog
    from backerd.vcr.base import Recording

    live = LiveCatalog(catalog, fps=60, written_by="test")
    uuid = live.cassette_loaded(None, fallback_name="old", standard="ntsc",
                                length_seconds=600, passes=0, full_at=1000)
    for n, (start, fields) in enumerate([(0, 500), (500, 600)]):
        live.begun(n, start, "nhs", "3.102", resumed=False)
        live.data(os.urandom(100))
        live.committed(n, Recording(start, fields, "nhs", user_bytes=100, blocks=((100, 1),)))
        assert catalog.cassette(uuid).state == ("active" if n == 0 else "full")
    live.begun(2, 1100, "nhs", "3.102", resumed=False)
    live.data(b"x")  # never committed: no filemark
    assert len(catalog.recordings(uuid)) == 2

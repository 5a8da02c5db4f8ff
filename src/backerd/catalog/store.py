"""The catalog store: cassettes, their recordings and tar members, in one SQLite file.

Theory of operation: the catalog is a cache of the tapes. A recording being written is a
``PendingRecording`` held in memory (its members arrive from the tar indexer as the
stream passes); nothing of it reaches the database until ``commit_on_filemark`` is
called, which the medium does only after the filemark is on tape. That commit is one
SQLite transaction which also drops every row at or after the recording's file number
(writing file N on a tape ends the tape there), so after a crash at any instant the
catalog holds exactly the files whose filemarks were written, or fewer, never more.
"""

from __future__ import annotations

import sqlite3
import stat
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backerd.catalog.schema import STATES, migrate
from backerd.catalog.tarindex import Member, TarIndexer
from backerd.errors import UsageError

BUSY_TIMEOUT = 30.0  # seconds to wait for another process's transaction


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class CassetteRow:
    uuid: str
    label: str = ""
    labelled: bool = True
    standard: str = ""
    length_seconds: int = 0
    created: str = ""
    encrypted: bool = False
    state: str = "blank"
    location: str = ""
    passes: int = 0
    wear_limit: int = 500

    @property
    def worn(self) -> bool:
        return self.passes >= self.wear_limit


@dataclass
class RecordingRow:
    file_number: int
    field_start: int
    field_end: int
    mode: str
    format: str
    bytes: int
    blocks: int
    block_size: int
    status: str = "ok"
    content: str = "empty"
    counter_start: str = ""
    counter_end: str = ""
    written_at: str = ""
    written_by: str = ""
    members: list[Member] = field(default_factory=list)


def unlabelled_uuid(name: str) -> str:
    """A stable identity for a cassette without a label (named by its owner)."""
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, "backerd-unlabelled:" + name))


class PendingRecording:
    """A recording being written: bytes and members gathered, nothing stored yet."""

    def __init__(self, catalog: Catalog, cassette_uuid: str, row: RecordingRow) -> None:
        self._catalog = catalog
        self.cassette_uuid = cassette_uuid
        self.row = row
        self._indexer = TarIndexer()
        self.closed = False

    def feed(self, data: bytes, blocks: int = 1) -> None:
        """User bytes as written (in order); members are indexed as they pass."""
        self.row.bytes += len(data)
        self.row.blocks += blocks
        for event in self._indexer.feed(data):
            if isinstance(event, Member):
                self.row.members.append(event)

    def commit_on_filemark(self, *, field_end: int, counter_end: str = "",
                           status: str = "ok") -> None:
        """The filemark is on tape: store the recording (one transaction)."""
        if self.closed:
            return
        for event in self._indexer.finish():
            if isinstance(event, Member):
                self.row.members.append(event)
        self.row.content = "opaque" if self._indexer.kind == "opaque" else (
            "tar" if self._indexer.kind == "tar" else "empty")
        if self.row.content == "empty" and self.row.bytes:
            self.row.content = "opaque"
        self.row.field_end = field_end
        self.row.counter_end = counter_end
        self.row.status = status
        self._catalog.store_recording(self.cassette_uuid, self.row)
        self.closed = True

    def abandon(self) -> None:
        """No filemark was written (crash path, error): nothing is stored."""
        self.closed = True


def _reason(exc: OSError | sqlite3.Error) -> str:
    """Why a catalog could not be opened, in words (sqlite3 says "unable to open database
    file" for a directory or a missing parent alike)."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


# The smallest SQLite database that is not empty: one page of the smallest page size.
SQLITE_MIN_SIZE = 512


def _refuse_foreign_file(path: Path) -> None:
    """SQLite takes a file shorter than its header for an empty database and overwrites
    it: a catalog path that names some other small file must not destroy it. (Only
    stat: opening and closing another fd of a database this process has open would drop
    SQLite's POSIX locks on it.)"""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"the catalog {path} is a directory")
    if 0 < info.st_size < SQLITE_MIN_SIZE:
        raise UsageError(f"{path} is not a catalog (too short for an SQLite database); "
                         "not touching it")


class Catalog:
    """One catalog database. Use as a context manager or call ``close``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
                _refuse_foreign_file(self.path)
            # one unit's calls run in worker threads, one at a time (the unit lock)
            self.db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT, isolation_level=None,
                                      check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot open the catalog {path}: {_reason(exc)}") from None
        try:
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = FULL")
            migrate(self.db)
        except sqlite3.DatabaseError as exc:  # not a database (or a damaged one)
            self.db.close()
            raise UsageError(f"cannot open the catalog {path}: {_reason(exc)}") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cassettes ---------------------------------------------------------------------

    def put_cassette(self, row: CassetteRow) -> None:
        """Insert or update a cassette's identity (state, location, wear kept if known)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO cassettes (uuid, label, labelled, standard, length_seconds,"
                " created, encrypted, state, location, passes, wear_limit)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (uuid) DO UPDATE SET"
                " label=excluded.label, labelled=excluded.labelled,"
                " standard=excluded.standard, length_seconds=excluded.length_seconds,"
                " created=excluded.created, encrypted=excluded.encrypted,"
                " passes=max(passes, excluded.passes)",
                (row.uuid, row.label, int(row.labelled), row.standard, row.length_seconds,
                 row.created, int(row.encrypted), row.state, row.location, row.passes,
                 row.wear_limit))

    def cassette(self, key: str) -> CassetteRow:
        """A cassette by UUID, UUID prefix or exact label; a clear error when unknown."""
        rows = self.db.execute(
            "SELECT * FROM cassettes WHERE uuid = ? OR label = ? OR uuid LIKE ?",
            (key, key, key.replace("%", "") + "%")).fetchall()
        if not rows:
            raise UsageError(f"no cassette {key!r} in the catalog")
        exact = [r for r in rows if key in (r["uuid"], r["label"])]
        if len(exact) == 1:
            rows = exact
        if len(rows) > 1:
            raise UsageError(f"{key!r} names {len(rows)} cassettes; give the UUID")
        return _cassette(rows[0])

    def cassettes(self) -> list[CassetteRow]:
        return [_cassette(r) for r in
                self.db.execute("SELECT * FROM cassettes ORDER BY label, uuid")]

    def set_cassette(self, key: str, *, state: str | None = None,
                     location: str | None = None, wear_limit: int | None = None) -> CassetteRow:
        if state is not None and state not in STATES:
            raise UsageError(f"unknown state {state!r} (known: {', '.join(STATES)})")
        if wear_limit is not None and wear_limit < 1:
            raise UsageError("the wear limit must be at least 1 pass")
        row = self.cassette(key)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for column, value in (("state", state), ("location", location),
                                  ("wear_limit", wear_limit)):
                if value is not None:
                    self.db.execute(f"UPDATE cassettes SET {column} = ? WHERE uuid = ?",
                                    (value, row.uuid))
        return self.cassette(row.uuid)

    def add_passes(self, cassette_uuid: str, passes: int) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("UPDATE cassettes SET passes = passes + ? WHERE uuid = ?",
                            (passes, cassette_uuid))

    # -- recordings --------------------------------------------------------------------

    def begin_recording(self, cassette_uuid: str, row: RecordingRow) -> PendingRecording:
        if not row.written_at:
            row.written_at = now_text()
        return PendingRecording(self, cassette_uuid, row)

    def store_recording(self, cassette_uuid: str, row: RecordingRow) -> None:
        """Store one recording whose filemark is on tape; later files are gone."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            found = self.db.execute("SELECT id, state FROM cassettes WHERE uuid = ?",
                                    (cassette_uuid,)).fetchone()
            if found is None:
                raise UsageError(f"no cassette {cassette_uuid!r} in the catalog")
            cid = found["id"]
            self.db.execute("DELETE FROM recordings WHERE cassette_id = ? AND file_number >= ?",
                            (cid, row.file_number))
            self._insert(cid, row)
            if found["state"] == "blank":
                self.db.execute("UPDATE cassettes SET state = 'active' WHERE id = ?", (cid,))

    def _insert(self, cid: int, row: RecordingRow) -> None:
        """Insert one recording and its members (inside the caller's transaction)."""
        cur = self.db.execute(
            "INSERT INTO recordings (cassette_id, file_number, field_start, field_end,"
            " counter_start, counter_end, mode, format, bytes, blocks, block_size,"
            " status, content, written_at, written_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (cid, row.file_number, row.field_start, row.field_end, row.counter_start,
             row.counter_end, row.mode, row.format, row.bytes, row.blocks,
             row.block_size, row.status, row.content, row.written_at, row.written_by))
        rid = cur.lastrowid
        self.db.executemany(
            "INSERT INTO members (recording_id, seq, path, size, mtime, type, offset,"
            " linkname) VALUES (?,?,?,?,?,?,?,?)",
            [(rid, i, m.path, m.size, float(m.mtime), m.type, m.offset, m.linkname)
             for i, m in enumerate(row.members)])

    def replace_recordings(self, cassette_uuid: str, rows: list[RecordingRow]) -> None:
        """Rows of a whole cassette from a scan (rebuild): one transaction."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            found = self.db.execute("SELECT id FROM cassettes WHERE uuid = ?",
                                    (cassette_uuid,)).fetchone()
            if found is None:
                raise UsageError(f"no cassette {cassette_uuid!r} in the catalog")
            self.db.execute("DELETE FROM recordings WHERE cassette_id = ?", (found["id"],))
            for row in rows:
                self._insert(found["id"], row)
            self.db.execute(
                "UPDATE cassettes SET state = ? WHERE id = ? AND state IN ('blank', 'active')",
                ("active" if rows else "blank", found["id"]))

    def forget_from(self, cassette_uuid: str, file_number: int) -> None:
        """Files from ``file_number`` on were overwritten or erased."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "DELETE FROM recordings WHERE file_number >= ? AND cassette_id ="
                " (SELECT id FROM cassettes WHERE uuid = ?)", (file_number, cassette_uuid))

    def recordings(self, cassette_uuid: str, *, members: bool = True) -> list[RecordingRow]:
        rows = self.db.execute(
            "SELECT r.* FROM recordings r JOIN cassettes c ON c.id = r.cassette_id"
            " WHERE c.uuid = ? ORDER BY r.file_number", (cassette_uuid,)).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            del d["id"], d["cassette_id"]
            rec = RecordingRow(**d)
            if members:
                rec.members = [
                    Member(m["path"], m["size"], m["mtime"], m["type"], m["offset"],
                           m["linkname"])
                    for m in self.db.execute(
                        "SELECT * FROM members WHERE recording_id = ? ORDER BY seq", (r["id"],))]
            out.append(rec)
        return out

    def find(self, pattern: str) -> Iterator[dict[str, Any]]:
        """Members whose path matches a shell-style ``pattern`` (``*`` and ``?``)."""
        glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
        for r in self.db.execute(
            "SELECT c.uuid, c.label, c.location, r.file_number, r.counter_start,"
            " r.field_start, m.path, m.size, m.mtime, m.type, m.offset, r.block_size"
            " FROM members m JOIN recordings r ON r.id = m.recording_id"
            " JOIN cassettes c ON c.id = r.cassette_id WHERE m.path GLOB ?"
            " ORDER BY c.label, r.file_number, m.seq", (glob,)):
            yield dict(r)

    def used_bytes(self, cassette_uuid: str) -> int:
        row = self.db.execute(
            "SELECT coalesce(sum(r.bytes), 0) FROM recordings r JOIN cassettes c"
            " ON c.id = r.cassette_id WHERE c.uuid = ?", (cassette_uuid,)).fetchone()
        return int(row[0])

    def snapshot(self, cassette_uuid: str) -> dict[str, Any]:
        """Everything known of one cassette, JSON-ready (used by show and rebuild checks)."""
        cassette = self.cassette(cassette_uuid)
        recs = []
        for rec in self.recordings(cassette.uuid):
            d = asdict(rec)
            d["members"] = [asdict(m) for m in rec.members]
            recs.append(d)
        return {"cassette": asdict(cassette), "recordings": recs}


def _cassette(r: sqlite3.Row) -> CassetteRow:
    d = dict(r)
    del d["id"]
    d["labelled"] = bool(d["labelled"])
    d["encrypted"] = bool(d["encrypted"])
    return CassetteRow(**d)

"""The job tables of the catalog: runs, their tape pieces, their members' digests.

Thin edge over ``catalog.store.Catalog``: one SQLite transaction per write. A piece is
read back as ``present`` only while the catalog still holds a recording at that
cassette and file with the bytes the run wrote, so relabelling or overwriting a
cassette shows up as lost backups without touching the run history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from backerd.catalog.store import Catalog
from backerd.jobs.records import BackupRecord, MemberDigest, Piece, order_key
from backerd.jobs.retention import retention


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _text(moment: datetime | None) -> str:
    """UTC, so the text sorts as the time does (local offsets change with DST)."""
    return moment.astimezone(UTC).isoformat() if moment is not None else ""


def add_run(catalog: Catalog, record: BackupRecord,
            members: Sequence[MemberDigest] = ()) -> int:
    """Store one run; returns its id (``record.id`` is ignored)."""
    db = catalog.db
    with db:
        db.execute("BEGIN IMMEDIATE")
        cur = db.execute(
            "INSERT INTO job_runs (job, result, level, started, finished, files, bytes,"
            " verified, tree_digest, reason) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (record.job, record.result, record.level, _text(record.started),
             _text(record.finished), record.files,
             record.bytes, None if record.verified is None else int(record.verified),
             record.tree_digest, record.reason))
        run_id = int(cur.lastrowid or 0)
        db.executemany(
            "INSERT INTO job_pieces (run_id, seq, cassette_uuid, file_number, bytes)"
            " VALUES (?,?,?,?,?)",
            [(run_id, p.seq, p.cassette_uuid, p.file_number, p.bytes) for p in record.pieces])
        db.executemany(
            "INSERT INTO job_members (run_id, seq, path, type, size, sha256)"
            " VALUES (?,?,?,?,?,?)",
            [(run_id, i, m.path, m.type, m.size, m.sha256) for i, m in enumerate(members)])
    return run_id


def set_verified(catalog: Catalog, run_id: int, verified: bool, reason: str = "") -> None:
    with catalog.db:
        catalog.db.execute("BEGIN IMMEDIATE")
        catalog.db.execute(
            "UPDATE job_runs SET verified = ?, reason = CASE WHEN ? = '' THEN reason ELSE ?"
            " END WHERE id = ?", (int(verified), reason, reason, run_id))


def runs(catalog: Catalog, job: str | None = None) -> list[BackupRecord]:
    """Every run (of ``job``) in the order they ran, pieces marked present or lost."""
    db = catalog.db
    rows = db.execute(
        "SELECT * FROM job_runs" + (" WHERE job = ?" if job is not None else "")
        + " ORDER BY started, id", (job,) if job is not None else ()).fetchall()
    out = []
    for r in rows:
        pieces = tuple(
            Piece(p["cassette_uuid"], p["file_number"], p["bytes"], p["seq"],
                  present=bool(p["present"]))
            for p in db.execute(
                "SELECT p.*, EXISTS (SELECT 1 FROM recordings rec JOIN cassettes c"
                " ON c.id = rec.cassette_id WHERE c.uuid = p.cassette_uuid"
                " AND rec.file_number = p.file_number AND rec.bytes = p.bytes) AS present"
                " FROM job_pieces p WHERE p.run_id = ? ORDER BY p.seq", (r["id"],)))
        out.append(BackupRecord(
            id=r["id"], job=r["job"], level=r["level"], started=_time(r["started"]),
            result=r["result"], verified=None if r["verified"] is None else bool(r["verified"]),
            pieces=pieces, files=r["files"], bytes=r["bytes"], tree_digest=r["tree_digest"],
            reason=r["reason"], finished=_time(r["finished"]) if r["finished"] else None))
    return sorted(out, key=order_key)


def members(catalog: Catalog, run_id: int) -> list[MemberDigest]:
    return [MemberDigest(m["path"], m["type"], m["size"], m["sha256"])
            for m in catalog.db.execute(
                "SELECT * FROM job_members WHERE run_id = ? ORDER BY seq", (run_id,))]


def foreign_cassettes(catalog: Catalog, cassettes: Iterable[str]) -> set[str]:
    """Of ``cassettes``, those holding a recording that is no job run's piece."""
    out = set()
    for uuid in cassettes:
        row = catalog.db.execute(
            "SELECT 1 FROM recordings rec JOIN cassettes c ON c.id = rec.cassette_id"
            " WHERE c.uuid = ? AND NOT EXISTS (SELECT 1 FROM job_pieces p WHERE"
            " p.cassette_uuid = c.uuid AND p.file_number = rec.file_number) LIMIT 1",
            (uuid,)).fetchone()
        if row is not None:
            out.add(uuid)
    return out


def label_of(catalog: Catalog, uuid: str) -> str:
    """A cassette's label, else its UUID (for messages and --json output)."""
    row = catalog.db.execute("SELECT label FROM cassettes WHERE uuid = ?", (uuid,)).fetchone()
    return row["label"] if row is not None and row["label"] else uuid


def retention_on(catalog: Catalog, cassette_uuid: str, keep: Mapping[str, int]
                 ) -> tuple[bool, list[str]] | None:
    """For ``catalog.volumes.holds_unexpired``: when job runs have tape files on the
    cassette, whether the jobs retention rule (``keep``: job -> full cycles) still keeps
    one of them, and the statuses of the cassette's recordings that are no run's tape
    file; None when no job ran on it."""
    records = runs(catalog)
    files = {p.file_number for r in records for p in r.pieces
             if p.cassette_uuid == cassette_uuid}
    if not files:
        return None
    kept = retention(records, keep)
    others = [r.status for r in catalog.recordings(cassette_uuid, members=False)
              if r.file_number not in files]
    return bool(kept.holding.get(cassette_uuid)), others

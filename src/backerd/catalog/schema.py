"""The catalog's SQLite schema and its migrations, applied by ``PRAGMA user_version``.

Theory of operation: ``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``.
Opening a catalog applies every missing step in one transaction, so a catalog is always
at a known version; a catalog newer than this program is refused rather than guessed at.
Tables are STRICT so a wrong type is an error, not a silent conversion.
"""

from __future__ import annotations

import sqlite3

from backerd.errors import UsageError

STATES = ("blank", "active", "full", "expired", "retired")

_V1 = f"""
CREATE TABLE cassettes (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL DEFAULT '',
    labelled INTEGER NOT NULL DEFAULT 1,
    standard TEXT NOT NULL DEFAULT '',
    length_seconds INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL DEFAULT '',
    encrypted INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'blank' CHECK (state IN ({", ".join(map(repr, STATES))})),
    location TEXT NOT NULL DEFAULT '',
    passes INTEGER NOT NULL DEFAULT 0,
    wear_limit INTEGER NOT NULL DEFAULT 500
) STRICT;
CREATE TABLE recordings (
    id INTEGER PRIMARY KEY,
    cassette_id INTEGER NOT NULL REFERENCES cassettes(id) ON DELETE CASCADE,
    file_number INTEGER NOT NULL,
    field_start INTEGER NOT NULL,
    field_end INTEGER NOT NULL,
    counter_start TEXT NOT NULL DEFAULT '',
    counter_end TEXT NOT NULL DEFAULT '',
    mode TEXT NOT NULL,
    format TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    blocks INTEGER NOT NULL,
    block_size INTEGER NOT NULL,
    status TEXT NOT NULL,
    content TEXT NOT NULL CHECK (content IN ('tar', 'opaque', 'empty')),
    written_at TEXT NOT NULL,
    written_by TEXT NOT NULL,
    UNIQUE (cassette_id, file_number)
) STRICT;
CREATE TABLE members (
    recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    type TEXT NOT NULL,
    offset INTEGER NOT NULL,
    linkname TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (recording_id, seq)
) STRICT;
CREATE INDEX members_path ON members (path);
"""

# backup jobs: every run, the tape pieces of its archive (a list, in volume order, so an
# archive spanning cassettes is more rows, not a new shape) and its members' digests
_V2 = """
CREATE TABLE job_runs (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('written', 'skipped', 'failed')),
    level INTEGER NOT NULL CHECK (level >= 0),
    started TEXT NOT NULL,
    finished TEXT NOT NULL DEFAULT '',
    files INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    verified INTEGER CHECK (verified IN (0, 1)),
    tree_digest TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX job_runs_job ON job_runs (job, started);
CREATE TABLE job_pieces (
    run_id INTEGER NOT NULL REFERENCES job_runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    cassette_uuid TEXT NOT NULL,
    file_number INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT;
CREATE INDEX job_pieces_cassette ON job_pieces (cassette_uuid, file_number);
CREATE TABLE job_members (
    run_id INTEGER NOT NULL REFERENCES job_runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    path TEXT NOT NULL,
    type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT;
"""

# Archives larger than one cassette: a volume set is one archive (a tar -M archive, a
# backup job) and its volumes, cassette k of n, each with the tar volume number it holds
# and the first file of the set on that cassette. A backup record refers to the set by
# its uuid.
VOLUME_SET_STATES = ("open", "complete", "abandoned")

_V3 = f"""
CREATE TABLE volume_sets (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    archive TEXT NOT NULL DEFAULT '',
    unit INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open'
        CHECK (state IN ({", ".join(map(repr, VOLUME_SET_STATES))}))
) STRICT;
CREATE TABLE volumes (
    set_id INTEGER NOT NULL REFERENCES volume_sets(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL CHECK (seq >= 1),
    tar_volume INTEGER,
    cassette_uuid TEXT NOT NULL,
    file_number INTEGER NOT NULL DEFAULT 0,
    added TEXT NOT NULL,
    PRIMARY KEY (set_id, seq)
) STRICT;
CREATE INDEX volumes_cassette ON volumes (cassette_uuid);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)
VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection) -> int:
    """Bring ``db`` to ``VERSION``; return the version it had."""
    found = db.execute("PRAGMA user_version").fetchone()[0]
    if found > VERSION:
        raise UsageError(
            f"the catalog has schema version {found}; this backerd knows up to {VERSION}")
    if found == VERSION:
        return found
    with db:  # one transaction for every missing step
        db.execute("BEGIN IMMEDIATE")
        for version in range(found, VERSION):
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(f"PRAGMA user_version = {VERSION}")
    return found

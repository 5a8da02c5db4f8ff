"""What a job run leaves behind: a run record and the tape pieces that hold its archive.

Theory of operation: a backup's archive is a list of ``Piece`` values, each one tape
file on one cassette, in volume order (``seq``). A backup has one piece per cassette
its archive spans (``jobs.spanning``); read in order they are the archive. A piece is
``present`` while the catalog still has a recording at that place
with the bytes the run wrote; a relabelled or overwritten cassette makes it absent, and
the backup is then ``lost``. ``good`` is the single definition of a backup that counts:
written, not lost, and not failed by verify.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

RESULTS = ("written", "skipped", "failed")


@dataclass(frozen=True)
class Piece:
    """One tape file of a backup: the cassette, its st file number, the bytes on it."""

    cassette_uuid: str
    file_number: int
    bytes: int = 0
    seq: int = 0  # volume sequence inside the backup
    present: bool = True


@dataclass(frozen=True)
class MemberDigest:
    """One archive member as the archive holds it: what was read from disk at write time."""

    path: str
    type: str
    size: int
    sha256: str  # of the member's data as archived (empty data: the empty hash)


@dataclass(frozen=True)
class BackupRecord:
    """One run of a job; a ``written`` or ``failed`` run with pieces is a backup on tape."""

    id: int
    job: str
    level: int  # 0: full; k > 0: the k-th incremental after that full
    started: datetime  # timezone-aware
    result: str  # one of RESULTS
    verified: bool | None = None  # None: not verified
    pieces: tuple[Piece, ...] = ()
    files: int = 0
    bytes: int = 0
    tree_digest: str = ""  # the directory state tar saw (skip-when-unchanged)
    reason: str = ""
    finished: datetime | None = None

    @property
    def kind(self) -> str:
        return "full" if self.level == 0 else "incremental"

    @property
    def on_tape(self) -> bool:
        """It left an archive (whole or partial) on some cassette."""
        return self.result in ("written", "failed") and bool(self.pieces)

    @property
    def lost(self) -> bool:
        return any(not p.present for p in self.pieces)

    @property
    def good(self) -> bool:
        return (self.result == "written" and self.verified is not False and bool(self.pieces)
                and not self.lost)

    @property
    def cassettes(self) -> tuple[str, ...]:
        seen: list[str] = []
        for piece in sorted(self.pieces, key=lambda p: p.seq):
            if piece.cassette_uuid not in seen:
                seen.append(piece.cassette_uuid)
        return tuple(seen)


def order_key(record: BackupRecord) -> tuple[datetime, int]:
    """Runs in the order they happened (the id breaks ties of equal start times)."""
    return (record.started, record.id)

"""Archives larger than one cassette: the rules for the next volume, and volume sets.

Theory of operation. A VHS cassette holds far less than most backups, so an archive
continues on further cassettes: GNU tar's multi-volume mode (``tar -M``) stops at the
early-warning point (ENOSPC), runs its new-volume script (``backerd next-volume``) and
goes on with the next cassette. Three things are decided here, as pure functions of
values the daemon reports (``VolumeFacts``):

* ``volume_refusal``: whether the cassette now in the deck may be the next volume. It
  must be loaded, must not be the cassette just ejected, and, when an archive is being
  written, must hold no backups still inside their retention (``holds_unexpired``),
  unless forced. Each refusal is one line that says what to do.
* ``holds_unexpired``: the retention rule, from what the catalog knows: a cassette the
  catalog marks expired or retired holds none; one holding backup jobs' runs holds
  unexpired backups while the jobs retention rule (``jobs.retention``) keeps one of
  them; any other recording counts while the catalog does not mark it expired.
  Without a catalog, any recording on the tape counts (nothing says it expired).
* ``cassettes_needed``: how many cassettes N bytes take, given what the current cassette
  still holds and what a blank one of the same length holds.

A *volume set* is the catalog's record of one such archive: cassette k of n, each with
the tar volume number it holds and the file where the set starts on it. ``VolumeLog``
keeps the sets in the catalog database (tables ``volume_sets`` and ``volumes``); a
backup record refers to a set by its uuid.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from backerd.catalog.schema import VOLUME_SET_STATES
from backerd.catalog.store import Catalog, now_text
from backerd.errors import UsageError

# Recording statuses and cassette states that mean "outside retention".
EXPIRED_STATUS = "expired"
NO_RETENTION_STATES = frozenset({"expired", "retired"})


@dataclass(frozen=True)
class VolumeFacts:
    """What the daemon tells about the cassette in a unit (the ``volume`` request)."""

    loaded: bool
    identity: str | None = None  # label uuid, or the name-derived uuid of an unlabelled one
    label: str | None = None  # label text; None: unlabelled
    recordings: int = 0  # user recordings on the tape (the label is not one)
    holds_unexpired: bool = False
    write_protected: bool = False

    @property
    def blank(self) -> bool:
        return self.loaded and self.recordings == 0

    def describe(self) -> str:
        if not self.loaded:
            return "no cassette"
        name = f"cassette {self.label!r}" if self.label else "an unlabelled cassette"
        if self.blank:
            return f"{name}, blank"
        return f"{name} with {self.recordings} recording{'s' * (self.recordings != 1)}"

    @classmethod
    def from_json(cls, d: dict) -> VolumeFacts:
        return cls(loaded=bool(d.get("loaded")), identity=d.get("identity"),
                   label=d.get("label"), recordings=int(d.get("recordings") or 0),
                   holds_unexpired=bool(d.get("holds_unexpired")),
                   write_protected=bool(d.get("write_protected")))


def holds_unexpired(state: str | None, statuses: Sequence[str] | None,
                    recordings_on_tape: int, jobs_kept: bool | None = None) -> bool:
    """Whether a cassette holds backups still inside retention.

    ``state``/``statuses``: the catalog's cassette state and the status of each of its
    recordings (None: the catalog does not know the cassette, or there is no catalog).
    ``jobs_kept``: when job runs have tape files on the cassette, whether the jobs
    retention rule keeps one of them (``statuses`` are then those of its other
    recordings); None when no job ran on it.
    """
    if statuses is None:
        return recordings_on_tape > 0
    if state in NO_RETENTION_STATES:
        return False
    if jobs_kept:
        return True
    return any(status != EXPIRED_STATUS for status in statuses)


def volume_refusal(previous: str | None, current: VolumeFacts, *, writing: bool,
                   force: bool = False) -> str | None:
    """Why the cassette in the deck must not be the next volume; None when it may."""
    if not current.loaded:
        return "no cassette was inserted"
    if previous is not None and current.identity == previous:
        return (f"{current.describe()} is the volume just ejected: insert the next "
                "cassette")
    if writing:
        if current.write_protected:
            return f"{current.describe()} is write-protected: open its tab or insert another"
        if current.holds_unexpired and not force:
            return (f"{current.describe()} holds backups still inside their retention: "
                    "insert another cassette (or use --force to overwrite them)")
    return None


def cassettes_needed(need: int, first_bytes: int, blank_bytes: int) -> int | None:
    """Cassettes ``need`` bytes take: the current one (``first_bytes`` left), then blank
    ones of ``blank_bytes`` each; None when a blank cassette holds nothing."""
    if need <= max(first_bytes, 0):
        return 1
    if blank_bytes <= 0:
        return None
    rest = need - max(first_bytes, 0)
    return (1 if first_bytes > 0 else 0) + -(-rest // blank_bytes)


# -- volume sets in the catalog -----------------------------------------------------------


@dataclass(frozen=True)
class Volume:
    seq: int  # k of "cassette k of n", from 1
    cassette_uuid: str
    tar_volume: int | None
    file_number: int
    label: str = ""


@dataclass(frozen=True)
class VolumeSet:
    uuid: str
    archive: str
    unit: int
    created: str
    state: str
    volumes: tuple[Volume, ...] = field(default_factory=tuple)

    @property
    def count(self) -> int:
        """n of "cassette k of n" (the volumes recorded so far while still open)."""
        return len(self.volumes)


class VolumeLog:
    """The volume sets of one catalog database."""

    def __init__(self, store: Catalog) -> None:
        self.db = store.db

    def begin_set(self, archive: str = "", *, unit: int = 0) -> str:
        """A new, open set; its uuid (what a backup record refers to)."""
        set_uuid = str(uuidlib.uuid4())
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO volume_sets (uuid, archive, unit, created, state)"
                            " VALUES (?,?,?,?,'open')", (set_uuid, archive, unit, now_text()))
        return set_uuid

    def _set_id(self, set_uuid: str) -> int:
        row = self.db.execute("SELECT id FROM volume_sets WHERE uuid = ?",
                              (set_uuid,)).fetchone()
        if row is None:
            raise UsageError(f"no volume set {set_uuid!r} in the catalog")
        return int(row[0])

    def add_volume(self, set_uuid: str, cassette_uuid: str, *, tar_volume: int | None = None,
                   file_number: int = 0) -> int:
        """Append the next cassette to the set; returns its k (from 1)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            sid = self._set_id(set_uuid)
            seq = 1 + self.db.execute("SELECT coalesce(max(seq), 0) FROM volumes"
                                      " WHERE set_id = ?", (sid,)).fetchone()[0]
            self.db.execute("INSERT INTO volumes (set_id, seq, tar_volume, cassette_uuid,"
                            " file_number, added) VALUES (?,?,?,?,?,?)",
                            (sid, seq, tar_volume, cassette_uuid, file_number, now_text()))
        return int(seq)

    def finish_set(self, set_uuid: str, state: str = "complete") -> None:
        if state not in VOLUME_SET_STATES:
            raise UsageError(f"unknown volume set state {state!r}")
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("UPDATE volume_sets SET state = ? WHERE id = ?",
                            (state, self._set_id(set_uuid)))

    def volume_set(self, set_uuid: str) -> VolumeSet:
        row = self.db.execute("SELECT * FROM volume_sets WHERE uuid = ?",
                              (set_uuid,)).fetchone()
        if row is None:
            raise UsageError(f"no volume set {set_uuid!r} in the catalog")
        volumes = tuple(
            Volume(r["seq"], r["cassette_uuid"], r["tar_volume"], r["file_number"],
                   r["label"] or "")
            for r in self.db.execute(
                "SELECT v.*, c.label FROM volumes v LEFT JOIN cassettes c"
                " ON c.uuid = v.cassette_uuid WHERE v.set_id = ? ORDER BY v.seq",
                (row["id"],)))
        return VolumeSet(row["uuid"], row["archive"], row["unit"], row["created"],
                         row["state"], volumes)

    def open_set_ending_on(self, unit: int, cassette_uuid: str,
                           tar_volume: int | None) -> str | None:
        """The open set of ``unit`` whose last volume is ``cassette_uuid`` (holding tar
        volume ``tar_volume`` when given): the set a next volume continues."""
        for row in self.db.execute(
                "SELECT s.uuid, v.cassette_uuid, v.tar_volume FROM volume_sets s"
                " JOIN volumes v ON v.set_id = s.id WHERE s.unit = ? AND s.state = 'open'"
                " AND v.seq = (SELECT max(seq) FROM volumes WHERE set_id = s.id)"
                " ORDER BY s.id DESC", (unit,)):
            if row[1] == cassette_uuid and (tar_volume is None or row[2] == tar_volume):
                return str(row[0])
        return None

    def sets_on(self, cassette_uuid: str) -> list[VolumeSet]:
        """Every set with a volume on the cassette (newest first)."""
        uuids = [r[0] for r in self.db.execute(
            "SELECT DISTINCT s.uuid FROM volume_sets s JOIN volumes v ON v.set_id = s.id"
            " WHERE v.cassette_uuid = ? ORDER BY s.id DESC", (cassette_uuid,))]
        return [self.volume_set(u) for u in uuids]

    def continue_tar(self, unit: int, archive: str, previous: str, current: str,
                     tar_volume: int, *, previous_file: int = 0,
                     file_number: int = 0) -> tuple[str, int]:
        """tar asked for volume ``tar_volume`` and got ``current`` after ``previous``:
        append it to the set ``previous`` ends (a new set starting with ``previous`` as
        volume ``tar_volume - 1`` if none does). Returns (set uuid, k)."""
        set_uuid = self.open_set_ending_on(unit, previous, tar_volume - 1)
        if set_uuid is None:
            set_uuid = self.begin_set(archive, unit=unit)
            self.add_volume(set_uuid, previous, tar_volume=tar_volume - 1,
                            file_number=previous_file)
        return set_uuid, self.add_volume(set_uuid, current, tar_volume=tar_volume,
                                         file_number=file_number)

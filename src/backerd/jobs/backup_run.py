"""``backerd backup NAME``: one run of a job, from preflight to the catalog (the flow).

Theory of operation, in the order it happens:

1. the preflight (``daemonlink.preflight``): right cassette, writable, room, wear;
2. the dry run: GNU tar on a scratch copy of the last good run's snapshot, its output
   digested and stopped at the first member that is not a directory. No such member
   and the same directory state (``tardigest.tree_digest``) as the last good run means
   nothing changed: a ``skipped`` run is recorded and nothing is written;
3. the write: wind to end of data, pipe tar through a ``TarDigester`` to the node in
   tar-record blocks, close (the filemark), record the run with its pieces and the
   SHA-256 of every member. At a cassette's early-warning point the archive goes on on
   the next cassette (``spanning``): one piece per cassette, in volume order, and the
   archive is also recorded as a volume set;
4. verify (when the job asks): read every piece back, in order, through one second
   digester (a full cassette's piece before it is ejected, the last one after the
   write) and compare every member; a mismatch marks the run verify-failed;
5. only a run that was written (and, with verify, verified) promotes its snapshot.

Each failure still records the run (``failed``, with what reached the tape) so
``backerd jobs`` can say what happened; the error then carries the exit status.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backerd.catalog.store import Catalog
from backerd.catalog.volumes import VolumeLog
from backerd.daemon.config import Config
from backerd.errors import ArchiverError, BackerError, TapeError, UsageError, VerifyMismatch
from backerd.jobs import history
from backerd.jobs.archiver import TarCreate, create_argv, create_outcome, tar_binary
from backerd.jobs.config import JobConfig
from backerd.jobs.daemonlink import UnitView, open_node, preflight, unit_view
from backerd.jobs.levels import (
    dry_run_base,
    next_level,
    snapshot_levels,
    snapshot_plan,
)
from backerd.jobs.plan import chain
from backerd.jobs.records import BackupRecord, MemberDigest, Piece
from backerd.jobs.spanning import Changer, ControlChanger
from backerd.jobs.tardigest import Broken, DigestEvent, DirState, TarDigester, tree_digest


@dataclass
class Outcome:
    job: str
    result: str
    cassette: str | None
    file: int | None
    level: str
    files: int = 0
    bytes: int = 0
    verified: bool | None = None
    cassettes: list[str] = field(default_factory=list)  # each cassette of the archive

    def as_json(self) -> dict[str, Any]:
        return {"job": self.job, "result": self.result, "cassette": self.cassette,
                "file": self.file, "level": self.level, "files": self.files,
                "bytes": self.bytes, "verified": self.verified,
                "cassettes": self.cassettes}


def job_dir(config: Config, job: JobConfig) -> Path:
    return config.state_dir / "jobs" / job.name


def catalog_path(config: Config, job: JobConfig) -> Path:
    for unit in config.units:
        if unit.number == job.unit:
            if unit.catalog is None:
                raise UsageError("backup jobs need the catalog; this configuration turns it "
                                 'off (catalog = "")')
            return unit.catalog
    raise UsageError(f"job {job.name!r}: no unit {job.unit} is configured")


@contextlib.contextmanager
def job_lock(directory: Path, name: str) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"job {name!r} is already running") from None
        yield


def _collect(events: Sequence[DigestEvent], members: list[MemberDigest],
             dirs: list[DirState]) -> None:
    for event in events:
        if isinstance(event, MemberDigest):
            members.append(event)
        elif isinstance(event, DirState):
            dirs.append(event)
        elif isinstance(event, Broken):
            raise ArchiverError(f"tar's output stopped being an archive at byte "
                                f"{event.offset}: {event.reason}")


def dry_run(job: JobConfig, base: Path, directory: Path, tar: str) -> str | None:
    """The directory state a run now would record; None when it would dump a file."""
    scratch = directory / "dry-run.snar"
    shutil.copyfile(base, scratch)
    proc = TarCreate(create_argv(job, scratch, tar))
    digester = TarDigester()
    dirs: list[DirState] = []
    try:
        for record in proc.records():
            for event in digester.feed(record):
                if isinstance(event, MemberDigest) and event.type != "dir":
                    return None
                if isinstance(event, DirState):
                    dirs.append(event)
                if isinstance(event, Broken):
                    return None
        status, messages = proc.wait()
        create_outcome(status, messages)
        return tree_digest(dirs)
    finally:
        proc.stop()
        scratch.unlink(missing_ok=True)


@dataclass
class Written:
    """What a write put on tape so far (filled in as it goes, so a failure can say)."""

    pieces: list[Piece] = field(default_factory=list)  # one per cassette, in volume order
    names: list[str | None] = field(default_factory=list)  # each piece's cassette, as named
    members: list[MemberDigest] = field(default_factory=list)
    dirs: list[DirState] = field(default_factory=list)
    note: str = ""

    @property
    def file_number(self) -> int | None:
        """Where the archive starts (the first piece's st file)."""
        return self.pieces[0].file_number if self.pieces else None

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.pieces)

    def start(self, cassette_uuid: str, name: str | None, file_number: int) -> None:
        self.pieces.append(Piece(cassette_uuid, file_number, 0, len(self.pieces)))
        self.names.append(name)

    def add(self, count: int) -> None:
        self.pieces[-1] = replace(self.pieces[-1], bytes=self.pieces[-1].bytes + count)


def write_archive(socket: Path, view: UnitView, argv: list[str], written: Written,
                  changer: Changer | None = None, readback: ReadBack | None = None) -> None:
    """Tar's output, digested, at end of data of the unit's cassette; the filemark on
    close. At the early-warning point (ENOSPC) ``changer`` loads the next cassette and
    the archive goes on there (module ``spanning``); ``readback`` reads each full
    cassette's piece back before it is ejected (the last one is the caller's to read)."""
    tape = open_node(view.node, write=True)
    written.start(view.cassette_uuid or "", view.cassette, tape.end_of_data())
    proc = TarCreate(argv)
    digester = TarDigester()
    try:
        for record in proc.records():
            _collect(digester.feed(record), written.members, written.dirs)
            while True:
                try:
                    tape.write_block(record)
                    break
                except TapeError as exc:
                    if exc.errno != errno.ENOSPC or changer is None \
                            or not written.pieces[-1].bytes:
                        raise
                tape.close()
                if readback is not None:
                    readback.read_file(view.node, written.pieces[-1].file_number)
                changer.change(len(written.pieces) + 1, written.pieces[-1].cassette_uuid)
                view = unit_view(socket, view.number)
                tape = open_node(view.node, write=True)
                written.start(view.cassette_uuid or "", view.cassette, tape.end_of_data())
            written.add(len(record))
    except BaseException:
        proc.stop()
        with contextlib.suppress(TapeError):
            tape.close()
        raise
    status, messages = proc.wait()
    if not digester.ended:
        _collect(digester.finish(), written.members, written.dirs)
    tape.close()
    written.note = create_outcome(status, messages)  # raises on a tar error


def compare(expected: Sequence[MemberDigest], found: Sequence[MemberDigest], *,
            whole: bool = True) -> str:
    """The first difference between two member lists ("" when equal); ``whole=False``
    compares only the members both lists have."""
    for want, got in zip(expected, found, strict=False):
        if want.path != got.path:
            return f"member {len(found)}: wrote {want.path!r}, read back {got.path!r}"
        if (want.type, want.size) != (got.type, got.size):
            return f"{want.path}: wrote a {want.type} of {want.size} bytes, read back a " \
                   f"{got.type} of {got.size}"
        if want.sha256 != got.sha256:
            return f"{want.path}: SHA-256 differs (wrote {want.sha256[:16]}..., read back " \
                   f"{got.sha256[:16]}...)"
    if whole and len(expected) != len(found):
        return f"wrote {len(expected)} members, read back {len(found)}"
    return ""


@dataclass
class ReadBack:
    """One archive read back from its tape files in volume order, digested as one
    stream; ``problem`` is the first thing that went wrong ("" if none)."""

    digester: TarDigester = field(default_factory=TarDigester)
    members: list[MemberDigest] = field(default_factory=list)
    problem: str = ""

    def read_file(self, node: str, file_number: int) -> None:
        if self.problem or self.digester.ended:
            return
        try:
            with open_node(node, write=False) as tape:
                tape.seek_file(file_number)
                for block in tape.blocks():
                    for event in self.digester.feed(block):
                        if isinstance(event, MemberDigest):
                            self.members.append(event)
                        elif isinstance(event, Broken):
                            self.problem = f"not a whole tar archive at byte " \
                                           f"{event.offset}: {event.reason}"
                            return
                    if self.digester.ended:
                        break
        except TapeError as exc:
            self.problem = exc.message

    def finish(self) -> tuple[list[MemberDigest], str]:
        if not self.problem and not self.digester.ended:
            for event in self.digester.finish():
                if isinstance(event, Broken):
                    self.problem = event.reason
        return self.members, self.problem


def verdict(expected: Sequence[MemberDigest], found: Sequence[MemberDigest],
            problem: str) -> str:
    """"" when every member read back matches what was written, else the first problem."""
    # a member whose content differs says more than where the archive then broke
    return compare(expected, found, whole=False) or problem or compare(expected, found)


def run_backup(config: Config, job: JobConfig, *, full: bool = False,
               now: datetime | None = None) -> tuple[Outcome, BackerError | None]:
    """One run; the outcome to report and the error that ends it (None: exit 0)."""
    directory = job_dir(config, job)
    with job_lock(directory, job.name), Catalog(catalog_path(config, job)) as catalog:
        return _run(config, job, catalog, directory, full=full,
                    now=now or datetime.now(UTC).astimezone())


def _run(config: Config, job: JobConfig, catalog: Catalog, directory: Path, *,
         full: bool, now: datetime) -> tuple[Outcome, BackerError | None]:
    socket = config.control_socket
    links = chain(history.runs(catalog, job.name), job.name).backups
    snaps = snapshot_levels(os.listdir(directory))
    level = 0 if full else next_level(links, job.full_every, now, snaps)
    kind = "full" if level == 0 else "incremental"

    def record(result: str, reason: str, pieces: tuple[Piece, ...] = ()) -> None:
        history.add_run(catalog, BackupRecord(
            id=0, job=job.name, level=level, started=now, result=result, reason=reason,
            pieces=pieces, bytes=sum(p.bytes for p in pieces),
            finished=datetime.now(UTC).astimezone()))

    try:
        tar = tar_binary()
        preflight(socket, job.unit)
        view = unit_view(socket, job.unit)
        base = dry_run_base(directory, links)
        unchanged = (not full and base is not None and base.exists()
                     and bool(links[-1].tree_digest)
                     and dry_run(job, base, directory, tar) == links[-1].tree_digest)
        if not unchanged and view.cassette_uuid is None:
            raise UsageError(f"unit {job.unit}: the daemon does not know the loaded "
                             "cassette's identity (is the catalog on?)")
    except BackerError as exc:
        record("failed", exc.message)
        raise
    if unchanged:
        record("skipped", "nothing changed since the last run")
        return Outcome(job.name, "skipped", view.cassette, None, kind), None
    assert view.cassette_uuid is not None
    plan = snapshot_plan(directory, level, snaps)
    if plan.base is not None:
        shutil.copyfile(plan.base, plan.work)
    else:
        plan.work.unlink(missing_ok=True)
    written = Written()
    changer = ControlChanger(socket, job.unit, job.next_cassette, job.change_timeout)
    readback = ReadBack() if job.verify else None
    try:
        write_archive(socket, view, create_argv(job, plan.work, tar), written, changer,
                      readback)
    except BackerError as exc:
        # what reached the tape is recorded, so retention knows what holds the cassettes
        record("failed", exc.message, tuple(p for p in written.pieces if p.bytes))
        plan.work.unlink(missing_ok=True)
        raise
    assert written.file_number is not None
    files = sum(1 for m in written.members if m.type != "dir")
    run_id = history.add_run(catalog, BackupRecord(
        id=0, job=job.name, level=level, started=now, result="written",
        pieces=tuple(written.pieces), files=files, bytes=written.bytes,
        tree_digest=tree_digest(written.dirs), reason=written.note,
        finished=datetime.now(UTC).astimezone()), written.members)
    if len(written.pieces) > 1:
        record_volume_set(catalog, job, run_id, written.pieces)
    outcome = Outcome(job.name, "written", view.cassette, written.file_number, kind, files,
                      written.bytes, cassettes=[n or p.cassette_uuid for n, p in
                                                zip(written.names, written.pieces,
                                                    strict=True)])
    if readback is not None:
        last = written.pieces[-1]
        readback.read_file(unit_view(socket, job.unit).node, last.file_number)
        problem = verdict(written.members, *readback.finish())
        outcome.verified = not problem
        history.set_verified(catalog, run_id, not problem, problem)
        if problem:
            plan.work.unlink(missing_ok=True)
            return outcome, VerifyMismatch(f"verify failed for file {written.file_number} on "
                                           f"{view.cassette}: {problem}")
    os.replace(plan.work, plan.keep_as)
    for stale in plan.stale:
        stale.unlink(missing_ok=True)
    return outcome, None


def record_volume_set(catalog: Catalog, job: JobConfig, run_id: int,
                      pieces: Sequence[Piece]) -> str:
    """An archive on several cassettes is a volume set too (``catalog show`` lists it):
    cassette k of n holds volume k of the stream."""
    log = VolumeLog(catalog)
    set_uuid = log.begin_set(f"job {job.name} backup {run_id}", unit=job.unit)
    for k, piece in enumerate(pieces, start=1):
        log.add_volume(set_uuid, piece.cassette_uuid, tar_volume=k,
                       file_number=piece.file_number)
    log.finish_set(set_uuid)
    return set_uuid

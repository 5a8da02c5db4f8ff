"""``backerd backup NAME``: one run of a job, from preflight to the catalog (the flow).

Theory of operation, in the order it happens:

1. the preflight (``daemonlink.preflight``): right cassette, writable, room, wear;
2. the dry run: GNU tar on a scratch copy of the last good run's snapshot, its output
   digested and stopped at the first member that is not a directory. No such member
   and the same directory state (``tardigest.tree_digest``) as the last good run means
   nothing changed: a ``skipped`` run is recorded and nothing is written;
3. the write: wind to end of data, pipe tar through a ``TarDigester`` to the node in
   tar-record blocks, close (the filemark), record the run with its piece and the
   SHA-256 of every member;
4. verify (when the job asks): stand at the file again, read it back through a second
   digester and compare every member; a mismatch marks the run verify-failed;
5. only a run that was written (and, with verify, verified) promotes its snapshot.

Each failure still records the run (``failed``, with what reached the tape) so
``backerd jobs`` can say what happened; the error then carries the exit status.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backerd.catalog.store import Catalog
from backerd.daemon.config import Config
from backerd.errors import ArchiverError, BackerError, TapeError, UsageError, VerifyMismatch
from backerd.jobs import history
from backerd.jobs.archiver import TarCreate, create_argv, create_outcome, tar_binary
from backerd.jobs.config import JobConfig
from backerd.jobs.daemonlink import open_node, preflight, unit_view
from backerd.jobs.levels import (
    dry_run_base,
    next_level,
    snapshot_levels,
    snapshot_plan,
)
from backerd.jobs.plan import chain
from backerd.jobs.records import BackupRecord, MemberDigest, Piece
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

    def as_json(self) -> dict[str, Any]:
        return {"job": self.job, "result": self.result, "cassette": self.cassette,
                "file": self.file, "level": self.level, "files": self.files,
                "bytes": self.bytes, "verified": self.verified}


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

    file_number: int | None = None
    bytes: int = 0
    members: list[MemberDigest] = field(default_factory=list)
    dirs: list[DirState] = field(default_factory=list)
    note: str = ""


def write_archive(node: str, argv: list[str], written: Written) -> None:
    """Tar's output, digested, at end of data of ``node``; the filemark on close."""
    with open_node(node, write=True) as tape:
        written.file_number = tape.end_of_data()
        proc = TarCreate(argv)
        digester = TarDigester()
        try:
            for record in proc.records():
                _collect(digester.feed(record), written.members, written.dirs)
                tape.write_block(record)
                written.bytes += len(record)
        except BaseException:
            proc.stop()
            raise
        status, messages = proc.wait()
        if not digester.ended:
            _collect(digester.finish(), written.members, written.dirs)
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


def read_back(node: str, file_number: int) -> tuple[list[MemberDigest], str]:
    """Every member digest of tape file ``file_number``, and what went wrong ("" if none)."""
    members: list[MemberDigest] = []
    digester = TarDigester()
    try:
        with open_node(node, write=False) as tape:
            tape.seek_file(file_number)
            for block in tape.blocks():
                for event in digester.feed(block):
                    if isinstance(event, MemberDigest):
                        members.append(event)
                    elif isinstance(event, Broken):
                        return members, f"not a whole tar archive at byte {event.offset}: " \
                                        f"{event.reason}"
                if digester.ended:
                    break
    except TapeError as exc:
        return members, exc.message
    if not digester.ended:
        for event in digester.finish():
            if isinstance(event, Broken):
                return members, event.reason
    return members, ""


def verify(node: str, file_number: int, expected: Sequence[MemberDigest]) -> str:
    """"" when every member read back matches what was written, else the first problem."""
    found, problem = read_back(node, file_number)
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
    try:
        write_archive(view.node, create_argv(job, plan.work, tar), written)
    except BackerError as exc:
        # what reached the tape is recorded, so retention knows what holds the cassette
        partial = () if written.file_number is None or not written.bytes else (
            Piece(view.cassette_uuid, written.file_number, written.bytes),)
        record("failed", exc.message, partial)
        plan.work.unlink(missing_ok=True)
        raise
    assert written.file_number is not None
    files = sum(1 for m in written.members if m.type != "dir")
    piece = Piece(view.cassette_uuid, written.file_number, written.bytes)
    run_id = history.add_run(catalog, BackupRecord(
        id=0, job=job.name, level=level, started=now, result="written", pieces=(piece,),
        files=files, bytes=written.bytes, tree_digest=tree_digest(written.dirs),
        reason=written.note, finished=datetime.now(UTC).astimezone()), written.members)
    outcome = Outcome(job.name, "written", view.cassette, written.file_number, kind, files,
                      written.bytes)
    if job.verify:
        problem = verify(view.node, written.file_number, written.members)
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

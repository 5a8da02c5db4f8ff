"""``backerd restore NAME``: the chain of tape files back onto disk, in order (the flow).

Theory of operation: the plan (``plan.chain`` and ``plan.steps``) comes from the catalog
alone, so ``--dry-run`` works without the daemon. A real restore asks the daemon which
cassette is loaded; when a backup needs another one it stops before extracting it and
names the cassette to insert and the step to resume from. A backup that spans cassettes
needs only its first in the deck: for each further volume the restore ejects the one it
read, asks for the next by name and waits (the job's ``change_timeout``) until it is
inserted, while tar waits for its input. Each backup's tape files
(pieces, in volume order) are read in turn and piped as one stream through a
``TarDigester`` into one ``tar --extract --listed-incremental=/dev/null``, so every
member is checked against the digest recorded when it was written while GNU
tar applies each dumpdir (deleting what had been deleted between runs). A digest
mismatch does not stop the restore; it is reported at the end with its own exit status.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from backerd.catalog.store import Catalog
from backerd.daemon.config import Config
from backerd.errors import CassetteNeeded, TapeError, UsageError, VerifyMismatch
from backerd.jobs import history
from backerd.jobs.archiver import extract_argv, run_extract, tar_binary
from backerd.jobs.backup_run import catalog_path, compare
from backerd.jobs.config import JobConfig
from backerd.jobs.daemonlink import open_node, unit_view
from backerd.jobs.plan import Step, by_backup, cassettes_needed, chain, first_missing, steps
from backerd.jobs.records import MemberDigest
from backerd.jobs.spanning import ControlChanger
from backerd.jobs.tardigest import Broken, TarDigester


def parse_time(text: str) -> datetime:
    """``--as-of``: an ISO 8601 date or date and time; local time when no zone is given."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--as-of wants a date or time like 2026-12-01 or "
                         f"2026-12-01T23:30, got {text!r}") from None
    if len(text.strip()) == 10:  # a date alone: the whole of that day
        value = value.replace(hour=23, minute=59, second=59, microsecond=999999)
    return value if value.tzinfo is not None else value.astimezone()


def plan_json(catalog: Catalog, job: JobConfig, plan: Sequence[Step],
              notes: Sequence[str]) -> dict[str, Any]:
    return {"job": job.name, "steps": [
        {"step": i, "backup": s.backup.id, "level": s.backup.kind,
         "started": s.backup.started.isoformat(),
         "cassette": history.label_of(catalog, s.piece.cassette_uuid),
         "cassette_uuid": s.piece.cassette_uuid, "file": s.piece.file_number,
         "bytes": s.piece.bytes} for i, s in enumerate(plan)],
        "cassettes": [history.label_of(catalog, u) for u in cassettes_needed(plan)],
        "notes": list(notes)}


def restore_plan(catalog: Catalog, job: JobConfig, as_of: datetime | None
                 ) -> tuple[list[Step], tuple[str, ...]]:
    links = chain(history.runs(catalog, job.name), job.name, as_of)
    if not links.backups:
        when = f" as of {as_of.isoformat()}" if as_of else ""
        raise UsageError(f"job {job.name!r} has no good full backup{when} to restore from")
    return steps(links.backups), links.notes


def _feeder(node: str, pieces: Sequence[Step], found: list[MemberDigest],
            problems: list[str], ask_for: Callable[[Step], None]
            ) -> Callable[[Callable[[bytes], None]], None]:
    """Feed one backup's pieces, in volume order, to tar as one archive stream; before
    each piece ``ask_for`` makes sure its cassette is loaded (tar waits meanwhile)."""
    def feed(write: Callable[[bytes], Any]) -> None:
        digester = TarDigester()
        for step in pieces:
            ask_for(step)
            with open_node(node, write=False) as tape:
                tape.seek_file(step.piece.file_number)
                for block in tape.blocks():
                    for event in digester.feed(block):
                        if isinstance(event, MemberDigest):
                            found.append(event)
                        elif isinstance(event, Broken):
                            problems.append(f"file {step.piece.file_number}: {event.reason}")
                    write(block)
    return feed


def _asker(catalog: Catalog, config: Config, job: JobConfig) -> Callable[[Step], None]:
    """Ask the operator for a step's cassette when another is loaded: the next volume of
    a backup that spans cassettes (the restore goes on once it is in)."""
    changer = ControlChanger(config.control_socket, job.unit, "", job.change_timeout)

    def ask_for(step: Step) -> None:
        wanted = step.piece.cassette_uuid
        while unit_view(config.control_socket, job.unit).cassette_uuid != wanted:
            changer.eject()
            changer.wait_loaded(
                f"backerd restore: insert cassette "
                f"{history.label_of(catalog, wanted)} (uuid {wanted}) in unit {job.unit}: "
                f"it holds file {step.piece.file_number}, volume {step.piece.seq + 1} of "
                f"backup {step.backup.id}; then: backerd deck insert --unit {job.unit} IMAGE")
    return ask_for


def _insert(catalog: Catalog, job: JobConfig, step: Step, loaded: str | None,
            number: int) -> CassetteNeeded:
    wanted = history.label_of(catalog, step.piece.cassette_uuid)
    again = f"; then run the restore again with --resume {number}" if number else ""
    return CassetteNeeded(
        f"insert cassette {wanted} (uuid {step.piece.cassette_uuid}) in unit {job.unit}: it "
        f"holds file {step.piece.file_number} of the restore; the loaded cassette is "
        f"{loaded or 'none'}{again}")


def run_restore(config: Config, job: JobConfig, *, to: Path, as_of: datetime | None = None,
                patterns: Sequence[str] = (), dry_run: bool = False,
                resume: int = 0) -> dict[str, Any]:
    """Restore (or with ``dry_run`` only plan); ``resume``: steps already restored."""
    with Catalog(catalog_path(config, job)) as catalog:
        plan, notes = restore_plan(catalog, job, as_of)
        out = plan_json(catalog, job, plan, notes)
        if dry_run:
            return out
        if not 0 <= resume < len(plan):
            raise UsageError(f"--resume {resume}: the plan has steps 0..{len(plan) - 1}")
        if resume and plan[resume - 1].backup.id == plan[resume].backup.id:
            raise UsageError(f"--resume {resume}: a restore resumes at the first step of a "
                             "backup")
        view = unit_view(config.control_socket, job.unit)
        groups = by_backup(plan, resume)
        problems: list[str] = []
        tar = tar_binary()
        for number, pieces in groups:
            # the first volume must be in already; later ones are asked for on the way
            missing = first_missing(pieces[:1], view.cassette_uuid)
            if missing is not None:
                # the backups before this one are on disk; the rest continue from it
                raise _insert(catalog, job, missing, view.cassette, number)
            to.mkdir(parents=True, exist_ok=True)
            found: list[MemberDigest] = []
            where = ", ".join(f"file {s.piece.file_number}" for s in pieces)
            try:
                run_extract(extract_argv(to, patterns, tar),
                            _feeder(view.node, pieces, found, problems,
                                    _asker(catalog, config, job)))
                view = unit_view(config.control_socket, job.unit)
            except TapeError as exc:
                problems.append(f"{where}: {exc.message}")
                continue
            difference = compare(history.members(catalog, pieces[0].backup.id), found)
            if difference:
                problems.append(f"{where}: {difference}")
        out.update(restored_to=str(to), verified=not problems, problems=problems)
        if problems:
            raise VerifyMismatch(f"restored to {to}, but {len(problems)} tape file(s) did "
                                 f"not read back as written: {problems[0]}")
        return out

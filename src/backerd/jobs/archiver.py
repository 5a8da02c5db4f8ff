"""GNU tar for backup jobs: the command lines (pure) and running them (the edge).

Theory of operation: a backup runs ``tar --create --file=-`` so its output passes
through this process on the way to the tape; every byte is hashed as it goes
(``tardigest``) and written to the node in ``RECORD``-sized blocks, one tape block each,
tar's own default record. ``--listed-incremental`` names the run's copy of the snapshot
(``levels``); ``--no-check-device`` keeps a changed device number (a remount, an LVM
snapshot) from forcing a full dump. The dry run is the same command on a scratch copy
of the last snapshot, stopped as soon as it shows a member that is not a directory.
Restores run ``tar --extract --listed-incremental=/dev/null`` so the dumpdirs delete
what had been deleted between runs.

GNU tar's exit status 1 on create means a file changed while it was read: the archive
is complete and the member holds what tar read, so the run counts, with a note.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from backerd.errors import ArchiverError
from backerd.jobs.config import JobConfig

RECORD = 20 * 512  # tar's default record (blocking factor 20): one tape block
TAR = "tar"


def relative(path: str) -> str:
    """A job path as tar is given it under ``-C /`` (no leading slash, no warning)."""
    return path.lstrip("/") or "."


def create_argv(job: JobConfig, snapshot: Path, tar: str = TAR) -> list[str]:
    argv = [tar, "--create", "--format=gnu", "--file=-", f"--blocking-factor={RECORD // 512}",
            f"--listed-incremental={snapshot}", "--no-check-device"]
    argv += [f"--exclude={pattern}" for pattern in job.exclude]
    return [*argv, "-C", "/", "--", *(relative(p) for p in job.paths)]


def extract_argv(directory: Path, patterns: Sequence[str] = (), tar: str = TAR) -> list[str]:
    argv = [tar, "--extract", "--file=-", "--read-full-records",
            "--listed-incremental=/dev/null", "-C", str(directory)]
    if patterns:
        argv += ["--wildcards", "--", *(relative(p) for p in patterns)]
    return argv


def tar_binary() -> str:
    found = shutil.which(TAR)
    if found is None:
        raise ArchiverError("GNU tar is not installed (apt-get install tar)")
    out = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
    if "GNU tar" not in out.stdout:
        raise ArchiverError(f"{found} is not GNU tar (backup jobs need --listed-incremental)")
    return found


class TarCreate:
    """A running ``tar --create``: iterate ``records()``, then ``wait()``."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise ArchiverError(f"cannot run {argv[0]}: {exc.strerror}") from None

    def records(self) -> Iterator[bytes]:
        """The archive in RECORD-sized pieces (the last may be shorter)."""
        assert self.proc.stdout is not None
        pending = b""
        while chunk := self.proc.stdout.read(RECORD):
            pending += chunk
            while len(pending) >= RECORD:
                yield pending[:RECORD]
                pending = pending[RECORD:]
        if pending:
            yield pending

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def wait(self) -> tuple[int, str]:
        """tar's exit status and its messages (one line each)."""
        assert self.proc.stderr is not None
        errors = self.proc.stderr.read().decode(errors="replace")
        self.proc.wait()
        self.stop()
        return self.proc.returncode, errors.strip()


def first_problem(messages: str) -> str:
    lines = [line for line in messages.splitlines()
             if "Exiting with failure status" not in line]
    return lines[0] if lines else "no message"


def create_outcome(status: int, messages: str) -> str:
    """A note for a run tar completed ("" or the changed-file warning); raises on error."""
    if status == 0:
        return ""
    if status == 1:
        return f"tar: {first_problem(messages).removeprefix('tar: ')}"
    raise ArchiverError(f"tar exited {status}: {first_problem(messages)}")


def run_extract(argv: list[str], feed: Callable[[Callable[[bytes], None]], None]) -> str:
    """Run an extract, handing ``feed`` a writer for tar's input; tar's messages.

    A pattern that names nothing in this archive is not an error (an incremental holds
    only what changed); any other failure is.
    """
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
    except OSError as exc:
        raise ArchiverError(f"cannot run {argv[0]}: {exc.strerror}") from None
    assert proc.stdin is not None and proc.stderr is not None
    try:
        feed(proc.stdin.write)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    messages = proc.stderr.read().decode(errors="replace").strip()
    proc.stderr.close()
    status = proc.wait()
    real = [line for line in messages.splitlines()
            if "Not found in archive" not in line and "Exiting with failure" not in line]
    if status != 0 and real:
        raise ArchiverError(f"tar exited {status}: {real[0]}")
    return messages

"""Helpers of the fault tests: archives whose bytes are known, kill points, read-backs.

Every check compares what comes off the device with bytes the test made itself, never
with anything the daemon reports: a reference archive is built by GNU tar into a file
with the same options the writer uses (``--sort=name``, fixed mtimes), so what tar sent
to the device is known byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backerd.daemon.control import NotRunning, query
from testkit.systemtest import Daemon

TAR_OPTIONS = ("--format=gnu", "--sort=name", "--mtime=2020-01-01 00:00Z", "--owner=0",
               "--group=0", "--numeric-owner")
RECORD = 10240  # tar's default record size: -b 20


def make_tree(root: Path, seed: int, size: int) -> Path:
    """A directory of a few random files, ``size`` bytes in all."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    left, i = size, 0
    while left > 0:
        n = min(left, rng.randrange(1, max(2, size // 3)))
        (root / f"f{i:03d}.bin").write_bytes(rng.randbytes(n))
        left -= n
        i += 1
    for path in (root, *root.iterdir()):
        os.utime(path, (1577836800, 1577836800))
    return root


def reference_archive(d: Daemon, tree: Path, out: Path, *extra: str) -> bytes:
    """The exact bytes ``tar -c`` of ``tree`` sends, built into a file."""
    d.run("tar", *TAR_OPTIONS, *extra, "-cf", out, "-C", tree.parent, tree.name)
    return out.read_bytes()


def tar_to_device(d: Daemon, tree: Path, *extra: str) -> subprocess.Popen[bytes]:
    """Start GNU tar writing ``tree`` to the non-rewinding node."""
    return subprocess.Popen(
        ["tar", *TAR_OPTIONS, *extra, "-cf", d.nrew, "-C", str(tree.parent), tree.name],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=d.env,
    )


def unit_status(d: Daemon, unit: int = 0) -> dict[str, Any] | None:
    """The unit's status straight from the control socket (None while nothing answers)."""
    with contextlib.suppress(NotRunning):
        return query(d.control_socket, timeout=5)["units"][unit]
    return None


def wait_written(d: Daemon, writer: subprocess.Popen[bytes], threshold: int,
                 timeout: float = 120.0) -> bool:
    """Wait until the unit has taken ``threshold`` bytes; False if the writer ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = unit_status(d)
        if status is not None and status["totals"]["write_bytes_total"] >= threshold:
            return True
        if writer.poll() is not None:
            return False
        time.sleep(0.002)
    raise AssertionError(f"the unit took fewer than {threshold} bytes in {timeout} s")


def wait_closed(d: Daemon, timeout: float = 120.0) -> None:
    """Wait until no node of unit 0 is open (the release of the last close is done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = unit_status(d)
        if status is not None and status["open"] is None:
            return
        time.sleep(0.01)
    raise AssertionError(f"unit 0 still open after {timeout} s:\n{d.log_tail()}")


def kill9(d: Daemon) -> None:
    """SIGKILL the daemon and wait for it; its FUSE mount is left stale, as after a crash."""
    assert d.proc is not None
    d.proc.kill()
    d.proc.wait()
    d.proc = None


def read_file(d: Daemon, number: int, out: Path) -> tuple[bytes, int]:
    """File ``number`` from BOT through the non-rewinding node: (bytes, dd's exit status)."""
    d.mt(d.nrew, "rewind")
    if number:
        d.mt(d.nrew, "fsf", str(number))
    result = d.run("dd", f"if={d.nrew}", f"of={out}", f"bs={RECORD}", ok=False)
    return out.read_bytes(), result.returncode


def cassette_info(d: Daemon) -> dict[str, Any]:
    """``backerd cassette info --json`` of the daemon's image (read-only, no lock)."""
    out = d.run(*d.backerd("cassette", "info", "--json", str(d.cassette)))
    return json.loads(out.stdout)


def catalog_rows(d: Daemon, uuid: str) -> list[dict[str, Any]] | None:
    """The catalog's rows of one cassette (None: the catalog does not know it)."""
    db = Path(d.env["BACKERD_STATE_DIR"]) / "catalog.db"
    if not db.exists():
        return None
    out = d.run(*d.backerd("catalog", "--catalog", str(db), "show", uuid, "--json"), ok=False)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)["recordings"]


def catalog_disagreements(rows: list[dict[str, Any]], info: dict[str, Any]) -> list[str]:
    """Where catalog rows contradict the cassette's index (extra files, other places)."""
    recs = info["recordings"]
    wrong = []
    for row in rows:
        n = row["file_number"]
        if not 0 <= n < len(recs):
            wrong.append(f"catalog lists file {n}, the cassette has {len(recs)} recordings")
            continue
        rec = recs[n]
        want = (rec["start"], rec["start"] + rec["fields"], rec["user_bytes"])
        got = (row["field_start"], row["field_end"], row["bytes"])
        if got != want:
            wrong.append(f"file {n}: catalog (start, end, bytes) {got}, cassette {want}")
    return wrong


@dataclass
class KillOutcome:
    """What one kill -9 run saw: where it killed and what the interrupted file became."""

    threshold: int
    tar_finished: bool
    recovered_bytes: int
    complete: bool


def check_after_crash(d: Daemon, tmp: Path, first: bytes, second: bytes, third: str, *,
                      closed: bool, separate: bool, catalog_saw_writes: bool = True) -> bytes:
    """The checks after a crash while ``second`` was written after the closed ``first``.

    ``closed``: tar had closed ``second`` (and the unit was idle) before the crash.
    Appends the tree ``tmp / third`` at EOD (after ``mt weof`` when ``separate``) and
    checks every file; returns the bytes of ``second`` that survived.
    ``catalog_saw_writes``: the daemon's catalog is the one that recorded ``first``
    (False when another machine wrote the cassette: its rows must still agree).
    """
    third_bytes = reference_archive(d, tmp / third, tmp / f"{third}.tar")
    got, _ = read_file(d, 0, tmp / "back0")
    assert got == first, "the file closed with a filemark changed"
    info = cassette_info(d)
    files = len(info["recordings"])
    assert files in (1, 2), info["recordings"]
    survived, _ = read_file(d, 1, tmp / "back1")
    if files == 1:
        assert survived == b""
    else:
        assert survived == second[: len(survived)], "the interrupted file is not a prefix"
    if files == 2 and info["recordings"][1]["filemark"] or closed:
        assert survived == second, "a file tar had closed did not survive whole"
    uuid = d.status()["units"][0]["cassette_uuid"]
    rows = catalog_rows(d, uuid)
    if rows is not None:
        assert catalog_disagreements(rows, info) == []
        if catalog_saw_writes:
            assert 0 in [r["file_number"] for r in rows], "the closed file left the catalog"

    # the next append: at EOD, after a filemark of its own or (st) in the file left
    # open by the crash, right after the bytes that survived
    open_file = files == 2 and not info["recordings"][1]["filemark"]
    d.mt(d.nrew, "rewind")
    d.mt(d.nrew, "eod")
    if separate and open_file:
        d.mt(d.nrew, "weof", "1")
    d.run("tar", *TAR_OPTIONS, "-cf", d.nrew, "-C", tmp, third)
    wait_closed(d)
    if files == 1:
        expected = [first, third_bytes]
    elif open_file and not separate:
        expected = [first, survived + third_bytes]
    else:
        expected = [first, survived, third_bytes]
    info = cassette_info(d)
    assert len(info["recordings"]) == len(expected), info["recordings"]
    for number, want in enumerate(expected):
        assert read_file(d, number, tmp / f"again{number}")[0] == want, number
    rows = catalog_rows(d, uuid)
    if rows is not None:
        assert catalog_disagreements(rows, info) == []
        assert len(expected) - 1 in [r["file_number"] for r in rows]
    return survived

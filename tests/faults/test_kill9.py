"""kill -9 of the daemon while GNU tar writes, at random points.

Each run writes one archive and closes it (its filemark is on tape), starts a second
one, and SIGKILLs the daemon once the unit has taken a random number of the second
archive's bytes (or, for a number past its end, once tar has closed the file and the
unit is idle again). After the restart:

* the first file reads back byte-exact;
* the interrupted file is absent, or reads back as a prefix of what tar sent (the whole
  of it when tar had closed it);
* the catalog's rows agree with the cassette's index;
* a third archive appends at EOD and reads back byte-exact: as a file of its own after
  a filemark, or (st: a file without a filemark is continued) right after the bytes of
  the interrupted file that survived.

The suite runs ``BACKERD_KILL9_RUNS`` runs (default 8) from fixed seeds, so a failure
names the seed that reproduces it; docs/reliability.md gives the 50-run result.
``BACKERD_KILL9_REPORT=FILE`` appends one JSON line per run (where it killed, what
survived) for that summary.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from testkit.faults import (
    TAR_OPTIONS,
    KillOutcome,
    cassette_info,
    catalog_disagreements,
    catalog_rows,
    kill9,
    make_tree,
    read_file,
    reference_archive,
    tar_to_device,
    wait_closed,
    wait_written,
)
from testkit.systemtest import MODE, new_daemon, stop_checked

RUNS = int(os.environ.get("BACKERD_KILL9_RUNS", "8"))
REPORT = os.environ.get("BACKERD_KILL9_REPORT")


@pytest.mark.parametrize("seed", range(RUNS))
def test_kill9_during_a_write(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    d = new_daemon(tmp_path, f'[[unit]]\nmode = "{MODE}"\n')
    first_tree = make_tree(tmp_path / "first", seed * 3, 150_000)
    second_tree = make_tree(tmp_path / "second", seed * 3 + 1, 3_000_000)
    third_tree = make_tree(tmp_path / "third", seed * 3 + 2, 100_000)
    first = reference_archive(d, first_tree, tmp_path / "first.tar")
    second = reference_archive(d, second_tree, tmp_path / "second.tar")
    third = reference_archive(d, third_tree, tmp_path / "third.tar")
    d.start()
    try:
        d.run("tar", *TAR_OPTIONS, "-cf", d.nrew, "-C", tmp_path, "first")
        wait_closed(d)
        # past the end of the archive: kill once tar has closed the file
        threshold = len(first) + rng.randrange(len(second) + len(second) // 8)
        with tar_to_device(d, second_tree) as writer:
            try:
                killed_mid_write = wait_written(d, writer, threshold)
                if not killed_mid_write:
                    assert writer.wait() == 0, writer.stderr.read() if writer.stderr else ""
                    wait_closed(d)
                kill9(d)
            finally:
                writer.kill()
        d.start()

        got, _ = read_file(d, 0, tmp_path / "back0")
        assert got == first, "the file closed with a filemark changed"
        info = cassette_info(d)
        files = len(info["recordings"])
        assert files in (1, 2), info["recordings"]
        survived, _ = read_file(d, 1, tmp_path / "back1")
        if files == 1:
            assert survived == b""
        else:
            assert survived == second[: len(survived)], "the interrupted file is not a prefix"
        if files == 2 and info["recordings"][1]["filemark"] or not killed_mid_write:
            assert survived == second, "a file tar had closed did not survive whole"
        uuid = d.status()["units"][0]["cassette_uuid"]
        rows = catalog_rows(d, uuid)
        if rows is not None:
            assert catalog_disagreements(rows, info) == []
            assert 0 in [r["file_number"] for r in rows], "the closed file left the catalog"

        # the next append: at EOD, after a filemark of its own or (st) in the file left
        # open by the crash, right after the bytes that survived
        separate = rng.random() < 0.5
        open_file = files == 2 and not info["recordings"][1]["filemark"]
        d.mt(d.nrew, "rewind")
        d.mt(d.nrew, "eod")
        if separate and open_file:
            d.mt(d.nrew, "weof", "1")
        d.run("tar", *TAR_OPTIONS, "-cf", d.nrew, "-C", tmp_path, "third")
        wait_closed(d)
        if files == 1:
            expected = [first, third]
        elif open_file and not separate:
            expected = [first, survived + third]
        else:
            expected = [first, survived, third]
        info = cassette_info(d)
        assert len(info["recordings"]) == len(expected), info["recordings"]
        for number, want in enumerate(expected):
            assert read_file(d, number, tmp_path / f"again{number}")[0] == want, number
        rows = catalog_rows(d, uuid)
        if rows is not None:
            assert catalog_disagreements(rows, info) == []
            assert len(expected) - 1 in [r["file_number"] for r in rows]
    finally:
        stop_checked(d)
    if REPORT:
        outcome = KillOutcome(threshold - len(first), not killed_mid_write, len(survived),
                              survived == second)
        with open(REPORT, "a") as report:
            report.write(json.dumps({"seed": seed, "mode": MODE, **vars(outcome)}) + "\n")

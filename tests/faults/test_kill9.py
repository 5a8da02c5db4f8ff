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
    check_after_crash,
    kill9,
    make_tree,
    reference_archive,
    tar_to_device,
    wait_closed,
    wait_written,
)
from testkit.systemtest import MODE, new_daemon, stop_checked

RUNS = int(os.environ.get("BACKERD_KILL9_RUNS", "8"))
REPORT = os.environ.get("BACKERD_KILL9_REPORT")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(RUNS))
def test_kill9_during_a_write(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    d = new_daemon(tmp_path, f'[[unit]]\nmode = "{MODE}"\n')
    first_tree = make_tree(tmp_path / "first", seed * 3, 150_000)
    second_tree = make_tree(tmp_path / "second", seed * 3 + 1, 3_000_000)
    make_tree(tmp_path / "third", seed * 3 + 2, 100_000)
    first = reference_archive(d, first_tree, tmp_path / "first.tar")
    second = reference_archive(d, second_tree, tmp_path / "second.tar")
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

        survived = check_after_crash(d, tmp_path, first, second, "third",
                                     closed=not killed_mid_write,
                                     separate=rng.random() < 0.5)
    finally:
        stop_checked(d)
    if REPORT:
        outcome = KillOutcome(threshold - len(first), not killed_mid_write, len(survived),
                              survived == second)
        with open(REPORT, "a") as report:
            report.write(json.dumps({"seed": seed, "mode": MODE, **vars(outcome)}) + "\n")

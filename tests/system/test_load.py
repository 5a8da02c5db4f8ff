"""One daemon, four units, GNU tar writing and reading on all of them at once.

Every archive must come back byte-exact, each unit must make progress while the others
run (its byte counter moves before the others have finished), and the control socket
must answer while all four are busy. How fast: benchmarks/bench_load.py.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backerd.daemon.control import query
from testkit.systemtest import MODE, TOOL_TIMEOUT, Daemon, new_daemon, stop_checked

UNITS = 4


@pytest.fixture
def four_units(no_shared_daemon: None, tmp_path: Path) -> Iterator[Daemon]:
    d = new_daemon(tmp_path, "".join(
        f'[[unit]]\nnumber = {n}\nmode = "{MODE}"\ncassette = "{tmp_path}/u{n}.cassette"\n'
        for n in range(UNITS)), cassette_option=False)
    d.start()
    try:
        yield d
    finally:
        stop_checked(d)


def all_at_once(d: Daemon, jobs: list[list[str]]) -> list[list[int]]:
    """Run one job per unit at once; the units' byte counters seen while all ran."""
    seen = []
    procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for argv in jobs]
    try:
        deadline = time.monotonic() + TOOL_TIMEOUT
        while all(p.poll() is None for p in procs) and time.monotonic() < deadline:
            status = query(d.control_socket, timeout=30)  # answers under load
            seen.append([u["totals"]["write_bytes_total"] + u["totals"]["read_bytes_total"]
                         for u in status["units"]])
            time.sleep(0.02)
        for p, argv in zip(procs, jobs, strict=True):
            _, err = p.communicate(timeout=TOOL_TIMEOUT)
            assert p.returncode == 0, f"{' '.join(argv)}: {err.decode()}\n{d.log_tail()}"
    finally:
        for p in procs:
            p.kill()
    return seen


@pytest.mark.slow
def test_four_units_write_and_read_at_once(four_units: Daemon, tmp_path: Path) -> None:
    d = four_units
    nodes = [d.node(f"nbacker{n}") for n in range(UNITS)]
    trees = []
    for n in range(UNITS):
        tree = tmp_path / f"src{n}"
        tree.mkdir()
        (tree / "data.bin").write_bytes(random.Random(n).randbytes(3 << 20))
        trees.append(tree)
    seen = all_at_once(d, [["tar", "-cf", nodes[n], "-C", str(trees[n]), "."]
                           for n in range(UNITS)])
    # while all four were still writing, every one of them had moved on
    assert seen, "a writer finished before the status was asked once"
    assert all(v > 0 for v in seen[-1]), seen[-1]
    for node in nodes:
        d.mt(node, "rewind")
    outs = [tmp_path / f"out{n}" for n in range(UNITS)]
    for out in outs:
        out.mkdir()
    base = seen[-1]
    seen = all_at_once(d, [["tar", "-xf", nodes[n], "-C", str(outs[n])] for n in range(UNITS)])
    for n in range(UNITS):
        assert (outs[n] / "data.bin").read_bytes() == (trees[n] / "data.bin").read_bytes()
    assert seen, "a reader finished before the status was asked once"
    assert all(v > b for v, b in zip(seen[-1], base, strict=True)), (base, seen[-1])

"""daemon.privileges: what the running daemon keeps, and the drop in every thread.

The drop itself runs in a child process: it cannot be undone, and pytest must keep its
own capabilities for the FUSE tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from backerd.daemon import privileges
from backerd.daemon.privileges import ThreadCaps, parse_status

STATUS = """Name:\tpython3
Umask:\t0022
CapInh:\t0000000000000000
CapPrm:\t000001ffffffffff
CapEff:\t000001fffeffffff
CapBnd:\t0000000000200000
CapAmb:\t0000000000000000
NoNewPrivs:\t1
"""


def test_parse_status() -> None:
    assert parse_status(STATUS) == ThreadCaps(
        effective=0x1FFFEFFFFFF, permitted=0x1FFFFFFFFFF, bounding=0x200000)
    assert parse_status("Name:\tx\nCapEff:\t0\n") is None
    assert parse_status(STATUS.replace("0000000000200000", "zz")) is None


def test_the_rules() -> None:
    # bit numbers from linux/capability.h, written out rather than taken from the module
    assert privileges.needed("fuse") == {21}
    assert privileges.needed("cuse") == frozenset()
    assert privileges.names({21, 17}) == "CAP_SYS_RAWIO CAP_SYS_ADMIN"
    assert privileges.names(()) == "none"
    assert privileges.mask({0, 21}) == 0x200001


CHILD = textwrap.dedent("""
    import json, threading, time, trio
    from pathlib import Path
    from backerd.daemon import privileges

    stop = threading.Event()
    early = threading.Thread(target=stop.wait)  # a thread from before the drop
    early.start()

    async def main():
        # trio worker threads that ran before, now idle in trio's cache
        for _ in range(3):
            await trio.to_thread.run_sync(time.sleep, 0.01)
        await privileges.drop_everywhere(frozenset({KEEP}))
        # a worker started after the drop, from the loop's thread
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(trio.to_thread.run_sync, time.sleep, 0.05)

    trio.run(main)
    caps = {}
    for task in Path("/proc/self/task").iterdir():
        c = privileges.parse_status((task / "status").read_text())
        caps[task.name] = [c.effective, c.permitted, c.bounding, c.inheritable, c.ambient]
    print(json.dumps({"caps": caps, "early": early.native_id,
                      "holding": privileges.threads_holding_more(frozenset({KEEP}))}))
    stop.set()
""")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: dropping capabilities one has")
@pytest.mark.parametrize("keep", [21, 17])
def test_drop_everywhere_reaches_every_thread(keep: int) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD.replace("KEEP", str(keep))], capture_output=True,
        text=True, timeout=60, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"), check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    bit = 1 << keep
    # the thread started before the drop, outside trio, is the one it cannot reach
    early = str(report["early"])
    assert report["holding"] == [int(early)]
    others = {tid: caps for tid, caps in report["caps"].items() if tid != early}
    assert len(others) >= 2
    for tid, caps in others.items():
        assert caps == [bit, bit, bit, 0, 0], tid

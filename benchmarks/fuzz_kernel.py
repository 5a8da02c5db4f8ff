"""The long kernel-protocol fuzz run: 10^5 bad requests against the daemon's request loop.

The request loop (Dispatcher on a DeviceChannel) serves a simulated unit's real tape
nodes through a socketpair that stands in for /dev/cuse or /dev/fuse; the fuzzer plays a
broken kernel (tests/testkit/kernelfuzz.py: truncated, lying, oversized, unknown and
out-of-order requests, bad ioctls, RETRY misuse, writes on read-only opens). Every case
must get the errno it is owed (or no reply, when none is possible) within a few seconds,
and a valid request sent after it must be served. The suite runs a sample of the same
cases (tests/fuzz/test_kernel_protocol.py). The cases are split between CUSE with and
without unrestricted ioctls and FUSE. Run:

    nice .venv/bin/python benchmarks/fuzz_kernel.py [--cases 100000] [--seed 1]

Prints the number of cases, the time, the failures (none expected) and the mix.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from testkit import kernelfuzz as kf  # noqa: E402

SETUPS = [("cuse", True), ("cuse", False), ("fuse", False)]


class _ErrorCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def run(cases: int, seed: int, stats: kf.FuzzStats) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for index, (kind, unrestricted) in enumerate(SETUPS):
            share = cases // len(SETUPS) + (1 if index < cases % len(SETUPS) else 0)
            daemon = kf.FuzzDaemon(kind, Path(tmp) / f"{kind}{index}.cassette",
                                   unrestricted=unrestricted)
            async with daemon.running() as running:
                await kf.fuzz(running, random.Random(seed + index), share, stats)
            if len(stats.failures) >= 20:
                return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    errors = _ErrorCounter()
    logging.getLogger("backerd").addHandler(errors)
    logging.getLogger("backerd").setLevel(logging.ERROR)
    logging.getLogger("backerd").propagate = False
    stats = kf.FuzzStats()
    t0 = time.monotonic()
    trio.run(run, args.cases, args.seed, stats)
    elapsed = time.monotonic() - t0
    print(f"{stats.cases} cases in {elapsed:.0f} s ({stats.cases / elapsed:.0f}/s), "
          f"seed {args.seed}: {len(stats.failures)} failures, "
          f"{len(errors.messages)} internal errors logged")
    for failure in stats.failures:
        print("  FAIL", failure)
    for message in errors.messages[:10]:
        print("  LOGGED", message)
    for name, count in sorted(stats.by_name.items(), key=lambda kv: -kv[1]):
        print(f"  {count:7d}  {name}")
    return 1 if stats.failures or errors.messages else 0


if __name__ == "__main__":
    sys.exit(main())

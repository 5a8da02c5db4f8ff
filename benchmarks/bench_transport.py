"""Throughput of the FUSE transport (kernel <-> dispatcher <-> handler), no tape codec.

Mounts the FUSE fallback with an in-memory handler that keeps the last record only, then
times real `dd` writing and reading 1 MiB and 10 KiB blocks, for max_pages 32 (CUSE's
chunking) and 256. Needs root and /dev/fuse. Run:

    .venv/bin/python benchmarks/bench_transport.py [--megabytes 256]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import trio

from backerd.allocator import tune_allocator
from backerd.daemon.fuse import serve_fuse


class LastRecord:
    """Keeps only the last record written; every read returns it (a block of the tape)."""

    def __init__(self) -> None:
        self.record = b""
        self.records = 0

    async def open(self, flags: int) -> None:
        pass

    async def read(self, size: int, exact: bool) -> bytes:
        return self.record

    async def write(self, data: bytes) -> int:
        self.record = data
        self.records += 1
        return len(data)

    async def ioctl(self, cmd: int, arg: bytes, out_size: int) -> bytes:
        raise OSError(25, "not a tape")

    async def release(self) -> None:
        pass


async def dd(args: list[str]) -> float:
    start = time.perf_counter()
    result = await trio.run_process(["dd", *args], capture_stderr=True, check=True)
    elapsed = time.perf_counter() - start
    match = re.search(rb"^(\d+) bytes", result.stderr, re.M)
    assert match, result.stderr
    return int(match.group(1)) / elapsed / 1e6


async def bench(root: Path, max_pages: int, megabytes: int) -> None:
    handler = LastRecord()
    async with trio.open_nursery() as nursery:
        paths = await nursery.start(lambda task_status: serve_fuse(
            root, {"bench": handler}, max_pages=max_pages, task_status=task_status))
        node = paths["bench"]
        for block, label in ((1 << 20, "1M"), (10240, "10k")):
            count = megabytes * (1 << 20) // block
            wrote = await dd(["if=/dev/zero", f"of={node}", f"bs={block}", f"count={count}"])
            read = await dd([f"if={node}", "of=/dev/null", f"bs={block}", f"count={count}"])
            print(f"max_pages={max_pages:3d} bs={label:>3}: write {wrote:7.1f} MB/s, "
                  f"read {read:7.1f} MB/s ({count} records)")
        nursery.cancel_scope.cancel()


def main() -> int:
    tune_allocator()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for max_pages in (32, 256):
            trio.run(bench, Path(tmp) / f"mnt{max_pages}", max_pages, args.megabytes)
    return 0


if __name__ == "__main__":
    sys.exit(main())

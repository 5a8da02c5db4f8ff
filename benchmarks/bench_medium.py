"""Throughput of the Backer medium on the simulated deck (write and read through st blocks).

Usage: .venv/bin/python benchmarks/bench_medium.py [--mb 32] [--modes nls,nhs,nle,nhe]

Writes MB of random data as 10240-byte blocks (GNU tar's records) into one recording on
a fresh sparse cassette image in a temporary directory, then reads it back through the
medium; prints MB/s of user data (MB = 10^6 bytes) of wall time, and the simulated tape
time a real VCR would need.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from backerd.allocator import tune_allocator
from backerd.medium import BackerMedium
from backerd.tape.medium import FILEMARK
from backerd.vcr.sim import Cassette, SimDeck


def run(mode: str, size: int, workdir: Path) -> tuple[float, float, float]:
    block = 10240
    data = os.urandom(size)
    standard = "pal" if mode[0] == "p" else "ntsc"
    with Cassette.create(workdir / f"{mode}.img", standard, "E-300", force=True) as c:
        deck = SimDeck(c)
        medium = BackerMedium(deck, mode)
        t0 = time.perf_counter()
        for i in range(0, size, block):
            medium.write_block(data[i : i + block])
        medium.write_filemarks(1)
        t1 = time.perf_counter()
        medium.rewind()
        t2 = time.perf_counter()
        out = bytearray()
        while isinstance(item := medium.read_block(block), bytes):
            out += item
        t3 = time.perf_counter()
        assert item is FILEMARK and out == data, "read back differs"
        tape_seconds = c.recordings[0].fields / c.fps
    return size / (t1 - t0) / 1e6, size / (t3 - t2) / 1e6, tape_seconds


def main() -> None:
    tune_allocator()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=32)
    ap.add_argument("--modes", default="nls,nhs,pls,phs,nle,nhe,ple,phe,nhr")
    args = ap.parse_args()
    size = int(args.mb * (1 << 20))
    print(f"{'mode':<5} {'write MB/s':>10} {'read MB/s':>10} {'tape time':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            w, r, tape = run(mode, size, Path(tmp))
            print(f"{mode:<5} {w:>10.1f} {r:>10.1f} {tape / 60:>8.1f} m")


if __name__ == "__main__":
    main()

"""Small records against large ones through the served device, measured in one run.

Starts the real daemon (FUSE fallback, fast mode) on a fresh simulated cassette and, in
rounds, writes the same random data with dd as 10 KiB records (tar's default) and as
1 MiB records on the non-rewinding node, then reads each back with the same block size
and compares. Each record size keeps its best round (the machine is shared: its speed
swings with the neighbours' load), and the ratio of the two is what the device's
per-request cost decides. With ``--encrypt`` the unit seals every block (a fresh key,
a labelled cassette): run it with and without to see what encryption costs. Needs root,
/dev/fuse and mt-st. Run:

    .venv/bin/python benchmarks/bench_records.py [--megabytes 32] [--rounds 3] [--mode nhs]
        [--encrypt]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# the script's directory is on sys.path: the benchmarks share their daemon starter
from bench_device import serve

from backerd.allocator import tune_allocator

SIZES = {"10 KiB": 10240, "1 MiB": 1 << 20}


def timed(*argv: str | Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(a) for a in argv], check=True, capture_output=True)
    return time.perf_counter() - t0


def one_round(node: str, data: Path, back: Path, block: int) -> tuple[float, float, bool]:
    """Seconds to write and to read back ``data`` in ``block``-byte records; identical?"""
    subprocess.run(["mt", "-f", node, "rewind"], check=True)
    t_write = timed("dd", f"if={data}", f"of={node}", f"bs={block}")
    subprocess.run(["mt", "-f", node, "rewind"], check=True)
    t_read = timed("dd", f"if={node}", f"of={back}", f"bs={block}")
    return t_write, t_read, back.read_bytes() == data.read_bytes()


def backerd(work: Path, *args: str) -> None:
    env = dict(os.environ, BACKERD_STATE_DIR=str(work / "state"),
               BACKERD_RUNTIME_DIR=str(work / "run"))
    subprocess.run([sys.executable, "-m", "backerd", *args], check=True, env=env,
                   capture_output=True)


def sealing(work: Path) -> str:
    """A new key for the unit; its config keys."""
    (work / "passphrase").write_text("benchmark\n")
    backerd(work, "key", "new", str(work / "unit.key"), "--passphrase-file",
            str(work / "passphrase"))
    return f'encrypt = true\nkey_file = "{work / "unit.key"}"\n'


def label(work: Path) -> None:
    backerd(work, "label", "--config", str(work / "backerd.toml"), "BENCH")


def main() -> None:
    tune_allocator()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", default="nhs")
    parser.add_argument("--encrypt", action="store_true",
                        help="the unit encrypts (docs/encryption.md)")
    args = parser.parse_args()
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("mt"):
        raise SystemExit("needs root, /dev/fuse and mt-st")
    with tempfile.TemporaryDirectory(prefix="bench-records-") as tmp:
        work = Path(tmp)
        data, back = work / "data.bin", work / "back.bin"
        # a whole number of records of either size
        data.write_bytes(random.Random(1).randbytes(args.megabytes << 20))
        size = data.stat().st_size
        proc, nodes = serve(work, args.mode, unit_keys=sealing(work) if args.encrypt else "")
        if args.encrypt:
            label(work)
        best: dict[str, list[float]] = {name: [0.0, 0.0] for name in SIZES}
        try:
            for r in range(args.rounds):
                for name, block in SIZES.items():
                    t_write, t_read, same = one_round(nodes["non_rewinding"], data, back, block)
                    if not same:
                        raise SystemExit(f"round {r}, {name} records: read back differs")
                    rates = [size / 1e6 / t_write, size / 1e6 / t_read]
                    best[name] = [max(b, x) for b, x in zip(best[name], rates, strict=True)]
                    print(f"round {r} {name:>6}: write {rates[0]:7.2f} MB/s, "
                          f"read {rates[1]:7.2f} MB/s", flush=True)
        finally:
            proc.terminate()
            proc.wait(60)
            if os.path.ismount(work / "dev"):
                subprocess.run(["umount", "-l", str(work / "dev")], check=False)
    small, large = best["10 KiB"], best["1 MiB"]
    sealed = ", encrypted" if args.encrypt else ""
    print(f"best of {args.rounds}, mode {args.mode}{sealed}, {size / 1e6:.1f} MB:")
    print(f"  10 KiB records: write {small[0]:7.2f} MB/s, read {small[1]:7.2f} MB/s")
    print(f"  1 MiB records:  write {large[0]:7.2f} MB/s, read {large[1]:7.2f} MB/s")
    print(f"  ratio 10 KiB / 1 MiB: write {small[0] / large[0]:.2f}x, "
          f"read {small[1] / large[1]:.2f}x")


if __name__ == "__main__":
    main()

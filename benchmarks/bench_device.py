"""End-to-end throughput of the served device: GNU tar through `backerd serve` (FUSE).

Starts the real daemon on a fresh simulated cassette per mode, writes one archive holding
a random file with tar (10 KiB and 1 MiB records) on the non-rewinding node, rewinds and
extracts it, compares, and reports user MB/s both ways. Needs root, /dev/fuse, GNU tar
and mt-st. Run:

    .venv/bin/python benchmarks/bench_device.py [--megabytes 64] [--modes nhs nhe nhr]
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

from backerd.allocator import tune_allocator
from backerd.daemon.control import NotRunning, query


def serve(
    work: Path, mode: str, *extra: str, unit_keys: str = ""
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    (work / "backerd.toml").write_text(
        f'transport = "fuse"\n[[unit]]\nmode = "{mode}"\n{unit_keys}')
    env = dict(os.environ, BACKERD_STATE_DIR=str(work / "state"),
               BACKERD_RUNTIME_DIR=str(work / "run"))
    log = open(work / "backerd.log", "wb")  # noqa: SIM115 (lives as long as the daemon)
    proc = subprocess.Popen(
        [sys.executable, "-m", "backerd", "serve", "--config", str(work / "backerd.toml"),
         "--cassette", str(work / f"{mode}.cassette"), "--fuse-root", str(work / "dev"),
         *extra],
        env=env, stdout=log, stderr=log,
    )
    sock = work / "run" / "control.sock"
    while True:
        if proc.poll() is not None:
            raise SystemExit((work / "backerd.log").read_text())
        try:
            nodes = query(sock)["units"][0]["nodes"]
            if all(os.path.exists(p) for p in nodes.values()):
                return proc, nodes
        except NotRunning:
            pass
        time.sleep(0.05)


def timed(*argv: str | Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(a) for a in argv], check=True, capture_output=True)
    return time.perf_counter() - t0


def bench_mode(mode: str, src: Path, blocking: int) -> dict[str, object]:
    size = (src / "data.bin").stat().st_size
    with tempfile.TemporaryDirectory(prefix="bench-device-") as tmp:
        work = Path(tmp)
        proc, nodes = serve(work, mode)
        n = nodes["non_rewinding"]
        try:
            t_write = timed("tar", "-b", str(blocking), "-cf", n, "-C", src, ".")
            timed("mt", "-f", n, "rewind")
            out = work / "out"
            out.mkdir()
            t_read = timed("tar", "-b", str(blocking), "-xf", n, "-C", out)
            same = (out / "data.bin").read_bytes() == (src / "data.bin").read_bytes()
        finally:
            proc.terminate()
            proc.wait(60)
            if os.path.ismount(work / "dev"):
                subprocess.run(["umount", "-l", str(work / "dev")], check=False)
    return {
        "mode": mode, "record": blocking * 512, "MB": size / 1e6,
        "write MB/s": size / 1e6 / t_write, "read MB/s": size / 1e6 / t_read,
        "identical": same,
    }


def main() -> None:
    tune_allocator()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--modes", nargs="+", default=["nhs", "nhe", "nhr"])
    args = parser.parse_args()
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("mt"):
        raise SystemExit("needs root, /dev/fuse and mt-st")
    with tempfile.TemporaryDirectory(prefix="bench-src-") as tmp:
        src = Path(tmp)
        (src / "data.bin").write_bytes(random.Random(1).randbytes(args.megabytes << 20))
        print(f"{'mode':5} {'record':>8} {'MB':>6} {'write MB/s':>11} {'read MB/s':>10}  ok")
        for mode in args.modes:
            for blocking in (20, 2048):
                r = bench_mode(mode, src, blocking)
                print(f"{r['mode']:5} {r['record']:>8} {r['MB']:>6.1f} {r['write MB/s']:>11.2f}"
                      f" {r['read MB/s']:>10.2f}  {r['identical']}", flush=True)


if __name__ == "__main__":
    main()

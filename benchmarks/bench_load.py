"""One daemon, four units under concurrent GNU tar writers and readers.

Starts `backerd serve` (FUSE) with four units, each on its own fresh cassette, and runs
three phases: four tar writers at once, four tar readers at once (extracting and
comparing), then two readers beside two writers appending. Meanwhile a poller asks the
control socket for status every --poll seconds and records each unit's byte counters
and how long each answer took.

Reported per phase and unit: user MB/s, and the longest interval during which the unit
had work but its counter did not move (its stall: a unit held up by another shows one as
long as the other's work). Reported for the control socket: answer time p50 / p99 /
max, against the 100 ms target. Needs root, /dev/fuse, GNU tar and mt-st. Run once,
niced:

    nice -n 10 .venv/bin/python benchmarks/bench_load.py [--megabytes 16] [--mode nhs]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_tar_tree import cpu_seconds, peak_rss_mb

from backerd.allocator import tune_allocator
from backerd.daemon.control import NotRunning, query

UNITS = 4


def serve(work: Path, mode: str) -> tuple[subprocess.Popen[bytes], list[str]]:
    """A daemon with four units; the non-rewinding node of each."""
    units = "".join(f'[[unit]]\nnumber = {n}\nmode = "{mode}"\n'
                    f'cassette = "{work}/unit{n}.cassette"\n' for n in range(UNITS))
    (work / "backerd.toml").write_text(f'transport = "fuse"\n{units}')
    env = dict(os.environ, BACKERD_STATE_DIR=str(work / "state"),
               BACKERD_RUNTIME_DIR=str(work / "run"))
    log = open(work / "backerd.log", "wb")  # noqa: SIM115 (lives as long as the daemon)
    proc = subprocess.Popen(
        [sys.executable, "-m", "backerd", "serve", "--config", str(work / "backerd.toml"),
         "--fuse-root", str(work / "dev")], env=env, stdout=log, stderr=log)
    while True:
        if proc.poll() is not None:
            raise SystemExit((work / "backerd.log").read_text())
        try:
            units_status = query(work / "run" / "control.sock")["units"]
            nodes = [u["nodes"]["non_rewinding"] for u in units_status]
            if len(nodes) == UNITS and all(os.path.exists(p) for p in nodes):
                return proc, nodes
        except NotRunning:
            pass
        time.sleep(0.05)


@dataclass
class Poller:
    """Status every ``every`` seconds: answer times and per-unit byte counters."""

    sock: Path
    every: float
    latencies: list[float] = field(default_factory=list)
    samples: list[tuple[float, list[int]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            status = query(self.sock, timeout=30)
            t1 = time.perf_counter()
            self.latencies.append(t1 - t0)
            self.samples.append((t1, [u["totals"]["write_bytes_total"]
                                      + u["totals"]["read_bytes_total"]
                                      for u in status["units"]]))
            self.stop.wait(self.every)


def longest_stall(samples: list[tuple[float, list[int]]], unit: int, start: float,
                  end: float) -> float:
    """Longest time within [start, end) over which the unit's counter did not move."""
    points = [(t, v[unit]) for t, v in samples if start <= t < end]
    worst, since = 0.0, start
    for (_, v0), (t1, v1) in zip(points, points[1:], strict=False):
        if v1 != v0:
            since = t1
        worst = max(worst, t1 - since)
    return worst


def run_phase(name: str, jobs: dict[int, list[str]], sizes: dict[int, int],
              poller: Poller) -> list[dict[str, object]]:
    """Start every unit's job at once; per unit: MB/s and the longest stall while busy."""
    t0 = time.perf_counter()
    procs = {u: subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for u, argv in jobs.items()}
    ends = {}
    while len(ends) < len(procs):
        for u, p in procs.items():
            if u not in ends and p.poll() is not None:
                ends[u] = time.perf_counter()
                if p.returncode:
                    raise SystemExit(f"{name}: unit {u}: {' '.join(jobs[u])} exited "
                                     f"{p.returncode}: {p.stderr.read().decode()}")
        time.sleep(0.01)
    for p in procs.values():
        p.stderr.close()  # type: ignore[union-attr]
    return [{"phase": name, "unit": u, "MB": sizes[u] / 1e6,
             "MB/s": sizes[u] / 1e6 / (ends[u] - t0),
             "stall_s": longest_stall(poller.samples, u, t0, ends[u])}
            for u in sorted(jobs)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    tune_allocator()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--megabytes", type=int, default=16, help="per unit and archive")
    ap.add_argument("--mode", default="nhs")
    ap.add_argument("--poll", type=float, default=0.05, help="seconds between status calls")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("mt"):
        raise SystemExit("needs root, /dev/fuse and mt-st")
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        work = Path(tmp)
        trees = []
        for u in range(UNITS):
            tree = work / f"src{u}"
            tree.mkdir()
            (tree / "data.bin").write_bytes(random.Random(u).randbytes(args.megabytes << 20))
            trees.append(tree)
        size = {u: (args.megabytes << 20) for u in range(UNITS)}
        proc, nodes = serve(work, args.mode)
        poller = Poller(work / "run" / "control.sock", args.poll)
        thread = threading.Thread(target=poller.run, daemon=True)
        thread.start()
        cpu0 = cpu_seconds(proc.pid)
        try:
            write = {u: ["tar", "-cf", nodes[u], "-C", str(trees[u]), "."] for u in range(UNITS)}
            results += run_phase("write x4", write, size, poller)
            for u in range(UNITS):
                subprocess.run(["mt", "-f", nodes[u], "rewind"], check=True)
                (work / f"out{u}").mkdir()
            read = {u: ["tar", "-xf", nodes[u], "-C", str(work / f"out{u}")]
                    for u in range(UNITS)}
            results += run_phase("read x4", read, size, poller)
            same = all((work / f"out{u}" / "data.bin").read_bytes()
                       == (trees[u] / "data.bin").read_bytes() for u in range(UNITS))
            for u in (0, 1):
                subprocess.run(["mt", "-f", nodes[u], "rewind"], check=True)
                shutil.rmtree(work / f"out{u}")
                (work / f"out{u}").mkdir()
            for u in (2, 3):
                subprocess.run(["mt", "-f", nodes[u], "eod"], check=True)
            mixed = {**{u: read[u] for u in (0, 1)}, **{u: write[u] for u in (2, 3)}}
            results += run_phase("read x2 + write x2", mixed, size, poller)
            same = same and all((work / f"out{u}" / "data.bin").read_bytes()
                                == (trees[u] / "data.bin").read_bytes() for u in (0, 1))
            cpu = cpu_seconds(proc.pid) - cpu0
            rss = peak_rss_mb(proc.pid)
        finally:
            poller.stop.set()
            thread.join(60)
            proc.terminate()
            proc.wait(120)
            if os.path.ismount(work / "dev"):
                subprocess.run(["umount", "-l", str(work / "dev")], check=False)
    lat = poller.latencies
    summary = {
        "mode": args.mode, "MB_per_unit": args.megabytes * 1.048576, "byte_exact": same,
        "status_calls": len(lat), "status_ms_p50": 1e3 * percentile(lat, 0.5),
        "status_ms_p99": 1e3 * percentile(lat, 0.99), "status_ms_max": 1e3 * max(lat),
        "daemon_cpu_s": cpu, "daemon_peak_rss_MB": rss,
    }
    if args.json:
        print(json.dumps({"units": results, "summary": summary}, indent=1))
        return
    print(f"{'phase':20} {'unit':>4} {'MB':>6} {'MB/s':>6} {'longest stall s':>16}")
    for r in results:
        print(f"{r['phase']:20} {r['unit']:>4} {r['MB']:>6.1f} {r['MB/s']:>6.2f} "
              f"{r['stall_s']:>16.2f}")
    print(f"byte-exact: {same}; status answers: {len(lat)}, p50 "
          f"{summary['status_ms_p50']:.1f} ms, p99 {summary['status_ms_p99']:.1f} ms, max "
          f"{summary['status_ms_max']:.1f} ms (target 100 ms: "
          f"{'PASS' if summary['status_ms_max'] <= 100 else 'FAIL'}); daemon CPU {cpu:.1f} s, "
          f"peak RSS {rss:.1f} MB")


if __name__ == "__main__":
    main()

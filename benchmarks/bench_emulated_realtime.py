"""Real-time pacing through an emulated card: underruns, daemon CPU and memory.

Starts `backerd serve --emulate isa --realtime` (or parport) on a fresh cassette in the
mode with the highest card byte rate (phs: 3050 bytes x 50 fields/s = 152.5 kB/s of
video, 130.7 kB/s of user data), writes random data with dd for about --seconds of
tape time, and reports the card's counters (the pass condition is zero underruns),
the service task's late ticks, and the daemon's CPU time and resident memory from
/proc. With --read it reads the recording back at tape speed and compares. The
daemon's resident memory is sampled every --sample seconds during the write, so a long
run (--minutes 10, the soak) shows whether it stays flat. Run once, niced, on a quiet
machine:

    nice -n 10 .venv/bin/python benchmarks/bench_emulated_realtime.py [--seconds 120]
    nice -n 10 .venv/bin/python benchmarks/bench_emulated_realtime.py --minutes 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backerd.daemon.control import NotRunning, query

RATE = {"phs": 130_700, "nhs": 129_360, "pls": 48_800, "nls": 49_560}


def serve(work: Path, mode: str, emulate: str) -> subprocess.Popen[bytes]:
    (work / "backerd.toml").write_text(f'transport = "fuse"\n[[unit]]\nmode = "{mode}"\n')
    env = dict(os.environ, BACKERD_STATE_DIR=str(work / "state"),
               BACKERD_RUNTIME_DIR=str(work / "run"))
    log = open(work / "backerd.log", "wb")  # noqa: SIM115 (lives as long as the daemon)
    proc = subprocess.Popen(
        [sys.executable, "-m", "backerd", "serve", "--config", str(work / "backerd.toml"),
         "--cassette", str(work / "tape.cassette"), "--fuse-root", str(work / "dev"),
         "--emulate", emulate, "--realtime"], env=env, stdout=log, stderr=log)
    while True:
        if proc.poll() is not None:
            raise SystemExit((work / "backerd.log").read_text())
        try:
            nodes = query(work / "run" / "control.sock")["units"][0]["nodes"]
            if all(os.path.exists(p) for p in nodes.values()):
                return proc
        except NotRunning:
            pass
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def write_sampled(argv: list[str], pid: int, every: float
                  ) -> tuple[subprocess.CompletedProcess[bytes], list[int]]:
    """Run the writer to its end, sampling the daemon's VmRSS every ``every`` seconds."""
    samples: list[int] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as writer:
        while True:
            try:
                out, err = writer.communicate(timeout=every)
                break
            except subprocess.TimeoutExpired:
                samples.append(memory_kib(pid).get("VmRSS", 0))
    return subprocess.CompletedProcess(argv, writer.returncode, out, err), samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--minutes", type=float, help="tape time in minutes (overrides --seconds)")
    ap.add_argument("--sample", type=float, default=10.0, metavar="S",
                    help="seconds between samples of the daemon's memory during the write")
    ap.add_argument("--mode", default="phs", choices=sorted(RATE))
    ap.add_argument("--emulate", default="isa", choices=("isa", "parport"))
    ap.add_argument("--read", action="store_true", help="read back and compare too")
    args = ap.parse_args()
    if args.minutes is not None:
        args.seconds = args.minutes * 60
    size = int(RATE[args.mode] * args.seconds) // 10240 * 10240
    data = random.Random(7).randbytes(size)
    with tempfile.TemporaryDirectory(prefix="bench-emu-rt-") as tmp:
        work = Path(tmp)
        (work / "data").write_bytes(data)
        proc = serve(work, args.mode, args.emulate)
        sock = work / "run" / "control.sock"
        node = query(sock)["units"][0]["nodes"]["rewinding"]
        try:
            cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            write, rss = write_sampled(["dd", f"if={work / 'data'}", f"of={node}",
                                        "bs=10240"], proc.pid, args.sample)
            if write.returncode:
                print(write.stderr.decode(), (work / "backerd.log").read_text()[-3000:])
                print(json.dumps(query(sock)["units"][0].get("hardware"), indent=1))
                raise SystemExit(1)
            wall, cpu = time.perf_counter() - t0, cpu_seconds(proc.pid) - cpu0
            status = query(sock)["units"][0]
            result = {
                "emulate": args.emulate, "mode": args.mode, "user_MB": size / 1e6,
                "write_s": round(wall, 1), "user_kB_per_s": round(size / wall / 1e3, 1),
                "tape_s": round(status["hardware"]["counters"]["bytes_sent"]
                                / (3050 * 50 if args.mode[0] == "p" else 2535 * 60), 1),
                "daemon_cpu_s": round(cpu, 1), "daemon_cpu_pct": round(100 * cpu / wall, 1),
                **{k + "_kiB": v for k, v in memory_kib(proc.pid).items()},
                "rss_kiB_samples": {"first": rss[0], "last": rss[-1], "max": max(rss),
                                    "count": len(rss)} if rss else None,
                "counters": status["hardware"]["counters"],
            }
            if args.read:
                t1 = time.perf_counter()
                read = subprocess.run(["dd", f"if={node}", "bs=10240"], capture_output=True)
                if read.returncode:
                    print(read.stderr.decode(), (work / "backerd.log").read_text()[-3000:])
                back = read.stdout
                result["read_s"] = round(time.perf_counter() - t1, 1)
                result["identical"] = back == data
                result["counters"] = query(sock)["units"][0]["hardware"]["counters"]
        finally:
            proc.terminate()
            proc.wait(120)
            log_tail = (work / "backerd.log").read_text()[-2000:]
            if os.path.ismount(work / "dev"):
                subprocess.run(["umount", "-l", str(work / "dev")], check=False)
    print(json.dumps(result, indent=1))
    if result["counters"]["underruns"]:
        print(log_tail)
    underruns = result["counters"]["underruns"]
    print(f"underruns: {underruns} ({'PASS' if underruns == 0 else 'FAIL'})")


if __name__ == "__main__":
    main()

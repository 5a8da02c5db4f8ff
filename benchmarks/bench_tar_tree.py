"""GNU tar of a directory tree through the served device, against tar on a plain file.

Measures, on the FUSE fallback in fast mode: tar -c of a tree (default 200 MB: a mix of
1 MiB, 64 KiB and 2 KiB random files) to the non-rewinding node, mt rewind, tar -x back,
a byte-exact comparison, MB/s each way and the ratio to the same tar commands on a plain
file; the daemon's peak RSS (VmHWM). Then, paced in real time (--realtime, 60 fields/s at
nhs), the daemon's CPU use in % of one core while tar writes and reads a small archive.
Needs root, /dev/fuse, GNU tar and mt-st. Run:

    .venv/bin/python benchmarks/bench_tar_tree.py [--megabytes 200] [--mode nhs]
"""

from __future__ import annotations

import argparse
import filecmp
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench_device import serve, timed

from backerd.allocator import tune_allocator

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def make_tree(root: Path, megabytes: int) -> int:
    rng = random.Random(7)
    total, i = 0, 0
    sizes = (1 << 20, 64 << 10, 2 << 10)
    while total < megabytes * 1_000_000:
        size = sizes[i % 3]
        d = root / f"dir{i // 50:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i:05d}.bin").write_bytes(rng.randbytes(size))
        total += size
        i += 1
    return total


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop(proc: subprocess.Popen[bytes], work: Path) -> None:
    proc.terminate()
    proc.wait(120)
    if os.path.ismount(work / "dev"):
        subprocess.run(["umount", "-l", str(work / "dev")], check=False)


def same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(
        same_tree(a / d, b / d) for d in cmp.common_dirs
    )


def fast_run(src: Path, size: int, mode: str, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    plain = work / "plain.tar"
    t_plain_c = timed("tar", "-cf", plain, "-C", src, ".")
    (work / "plain-out").mkdir()
    t_plain_x = timed("tar", "-xf", plain, "-C", work / "plain-out")
    plain.unlink()
    shutil.rmtree(work / "plain-out")

    proc, nodes = serve(work, mode)
    node = nodes["non_rewinding"]
    try:
        t_c = timed("tar", "-cf", node, "-C", src, ".")
        timed("mt", "-f", node, "rewind")
        out = work / "out"
        out.mkdir()
        t_x = timed("tar", "-xf", node, "-C", out)
        identical = same_tree(src, out)
        rss = peak_rss_mb(proc.pid)
    finally:
        stop(proc, work)
    mb = size / 1e6
    print(f"tree {mb:.0f} MB, mode {mode}, fast mode, tar default 10 KiB records")
    print(f"  tar -c to device   {mb / t_c:8.1f} MB/s  ({t_c:6.1f} s; plain file "
          f"{mb / t_plain_c:8.1f} MB/s, ratio {t_c / t_plain_c:5.1f}x)")
    print(f"  tar -x from device {mb / t_x:8.1f} MB/s  ({t_x:6.1f} s; plain file "
          f"{mb / t_plain_x:8.1f} MB/s, ratio {t_x / t_plain_x:5.1f}x)")
    print(f"  restored tree identical: {identical}")
    print(f"  daemon peak RSS {rss:.1f} MB")


def realtime_run(mode: str, work: Path, kilobytes: int) -> dict[str, float | bool]:
    """Write and read back a ``kilobytes`` archive at tape speed; the daemon's figures."""
    src = work / "rt-src"
    src.mkdir()
    (src / "data.bin").write_bytes(random.Random(3).randbytes(kilobytes << 10))
    proc, nodes = serve(work, mode, "--realtime")
    node = nodes["non_rewinding"]
    try:
        cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        timed("tar", "-cf", node, "-C", src, ".")
        timed("mt", "-f", node, "rewind")
        out = work / "rt-out"
        out.mkdir()
        timed("tar", "-xf", node, "-C", out)
        cpu1, t1 = cpu_seconds(proc.pid), time.perf_counter()
        identical = same_tree(src, out)
        rss = peak_rss_mb(proc.pid)
    finally:
        stop(proc, work)
    return {"tape_s": t1 - t0, "cpu_s": cpu1 - cpu0,
            "cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0), "identical": identical,
            "peak_rss_mb": rss}


def main() -> None:
    tune_allocator()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--mode", default="nhs")
    parser.add_argument("--realtime-kilobytes", type=int, default=1024)
    parser.add_argument("--skip-realtime", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("mt"):
        raise SystemExit("needs root, /dev/fuse and mt-st")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-tree-") as tmp:
        work = Path(tmp)
        src = work / "tree"
        size = make_tree(src, args.megabytes)
        fast_run(src, size, args.mode, work / "fast")
    if not args.skip_realtime:
        with tempfile.TemporaryDirectory(prefix="bench-rt-") as tmp:
            rt = realtime_run(args.mode, Path(tmp), args.realtime_kilobytes)
        print(f"real-time pacing, mode {args.mode}, {args.realtime_kilobytes} KiB archive "
              "written and read back:")
        print(f"  {rt['tape_s']:.1f} s of tape time, daemon CPU {rt['cpu_s']:.2f} s = "
              f"{rt['cpu_pct']:.2f} % of one core; identical: {rt['identical']}; "
              f"peak RSS {rt['peak_rss_mb']:.1f} MB")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

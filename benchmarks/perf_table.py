"""One table of backerd's performance: codec, device, real time, memory.

Rows:
* codec encode and decode MB/s per 3.102 mode, beside the original C implementation's
  figures (spec section 16, decode with its inner RS on, as ours always is) and their
  ratio (ours / C; above 1 = faster);
* GNU tar through the served device (FUSE) at 10 KiB and 1 MiB records, write and read;
* the daemon's CPU at real-time pacing (a tar written and read back at tape speed);
* the daemon's peak resident memory in those runs.

It reuses the benchmarks it summarises (bench_encode.encode, bench_decode.decode_once,
bench_device.bench_mode, bench_tar_tree.realtime_run): their own scripts give more
detail. Needs root, /dev/fuse, GNU tar and mt-st for the device rows. Run once, niced:

    nice -n 10 .venv/bin/python benchmarks/perf_table.py [--mib 8] [--device-megabytes 32]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_decode import decode_once
from bench_device import bench_mode
from bench_encode import encode
from bench_tar_tree import realtime_run
from machine import describe

from backerd.allocator import tune_allocator
from backerd.format.params import FORMATTED_MODES
from backerd.format.recorder import encode_recording

# Spec section 16: the original C codecs (3.102, 32 MiB random input, MB/s of user
# data, medians on a 2-core machine of the project's kind): encode, decode (inner RS on).
ORIGINAL_C = {
    "nls": (60.5, 15.2), "nhs": (53.7, 16.3), "pls": (52.0, 12.1), "phs": (47.6, 11.7),
    "nle": (39.9, 8.0), "nhe": (39.2, 7.9), "ple": (38.3, 7.9), "phe": (35.7, 7.7),
}


def codec_rows(mib: int, repeat: int) -> list[tuple[str, str, str, str]]:
    data = np.random.default_rng(1).integers(0, 256, mib << 20, dtype=np.uint8).tobytes()
    encode("nls", data[:100_000], 1 << 20)  # warm the code tables
    rows = []
    for name in FORMATTED_MODES:
        enc = min(_timed(lambda name=name: encode(name, data, 1 << 20)) for _ in range(repeat))
        raw = encode_recording(data, name)
        dec = float("inf")
        for _ in range(repeat):
            wall, _, note = decode_once(name, raw, data)
            if note != "ok":
                raise SystemExit(f"{name}: decode {note}")
            dec = min(dec, wall)
        c_enc, c_dec = ORIGINAL_C[name]
        ours_enc, ours_dec = len(data) / enc / 1e6, len(data) / dec / 1e6
        rows.append((f"codec {name} encode", f"{ours_enc:.1f} MB/s", f"{c_enc} MB/s",
                     f"{ours_enc / c_enc:.2f}"))
        rows.append((f"codec {name} decode", f"{ours_dec:.1f} MB/s", f"{c_dec} MB/s",
                     f"{ours_dec / c_dec:.2f}"))
    return rows


def _timed(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def device_rows(megabytes: int, mode: str) -> list[tuple[str, str, str, str]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="perf-src-") as tmp:
        src = Path(tmp)
        (src / "data.bin").write_bytes(random.Random(1).randbytes(megabytes << 20))
        for blocking, label in ((20, "10 KiB"), (2048, "1 MiB")):
            r = bench_mode(mode, src, blocking)
            if not r["identical"]:
                raise SystemExit(f"tar through the device, {label} records: not identical")
            rows.append((f"tar {mode} {label} records write", f"{r['write MB/s']:.2f} MB/s",
                         "", ""))
            rows.append((f"tar {mode} {label} records read", f"{r['read MB/s']:.2f} MB/s",
                         "", ""))
    return rows


def realtime_rows(mode: str, kilobytes: int) -> list[tuple[str, str, str, str]]:
    with tempfile.TemporaryDirectory(prefix="perf-rt-") as tmp:
        rt = realtime_run(mode, Path(tmp), kilobytes)
    if not rt["identical"]:
        raise SystemExit("real-time run: the tree read back differs")
    return [
        (f"daemon CPU at real time ({mode}, {kilobytes} KiB tar w+r, "
         f"{rt['tape_s']:.0f} s)", f"{rt['cpu_pct']:.1f} % of a core", "", ""),
        ("daemon peak RSS (real-time run)", f"{rt['peak_rss_mb']:.1f} MB", "", ""),
    ]


def main() -> None:
    tune_allocator()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=8, help="codec input, MiB (spec: 32)")
    ap.add_argument("--repeat", type=int, default=2, help="codec runs per mode, best kept")
    ap.add_argument("--device-megabytes", type=int, default=32)
    ap.add_argument("--device-mode", default="nhs")
    ap.add_argument("--realtime-kilobytes", type=int, default=1024)
    args = ap.parse_args()
    device = os.geteuid() == 0 and os.path.exists("/dev/fuse") and shutil.which("mt")
    load_before = os.getloadavg()[0]
    rows = codec_rows(args.mib, args.repeat)
    if device:
        rows += device_rows(args.device_megabytes, args.device_mode)
        rows += realtime_rows(args.device_mode, args.realtime_kilobytes)
    header = ("figure", "backerd", "original C", "ratio")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    print(f"\ncodec input {args.mib} MiB random, best of {args.repeat}; MB = 10^6 user "
          f"bytes per second of wall time; load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after | {describe()}")
    if not device:
        print("device rows skipped: needs root, /dev/fuse and mt-st")


if __name__ == "__main__":
    main()

"""Throughput of the 3.101/3.3 codecs and of the bkrenhanced outer code.

MB/s = 10^6 user bytes per second of wall time (best of --repeat), random input.

* encode: `legacy.encode_recording` (sector layer, GCR, fields) per mode and format;
* sector decode: `decode_sectors` on the clean sectors of that recording;
* bkrenhanced: encode, and decode with 10 lost sectors in every group (C = 716).

    .venv/bin/python benchmarks/bench_legacy.py [--mib 8] [--repeat 3] [--modes nls nle]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from backerd.allocator import tune_allocator
from backerd.format import bkrenhanced, gcr, legacy
from backerd.format.params import FORMATTED_MODES, mode
from backerd.format.sector_codecs import codec_for


def best_time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def data_sectors(fmt: str, name: str, data: bytes) -> np.ndarray:
    """The demodulated data sectors of a recording (fields at nominal offsets)."""
    params = mode(name, fmt)
    codec = codec_for(params)
    cap = params.capacity
    n = len(data) // cap
    payloads = codec.encode_sectors(
        np.frombuffer(data[: n * cap], np.uint8).reshape(n, cap),
        np.full(n, cap), np.arange(n),
    )
    if params.codec == "ep":
        payloads = gcr.demodulate(gcr.modulate(payloads))[0]
    return payloads


def main() -> None:
    tune_allocator()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", nargs="*", default=list(FORMATTED_MODES))
    args = parser.parse_args()
    size = int(args.mib * 2**20)
    data = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes()
    print(f"{'fmt':5} {'mode':4} {'encode MB/s':>12} {'sector decode MB/s':>19}")
    for fmt in ("3.101", "3.3"):
        for name in args.modes:
            enc = best_time(partial(legacy.encode_recording, data, name, fmt), args.repeat)
            codec = codec_for(mode(name, fmt))
            sectors = data_sectors(fmt, name, data)
            dec = best_time(partial(codec.decode_sectors, sectors), args.repeat)
            print(f"{fmt:5} {name:4} {size / enc / 1e6:12.1f} {size / dec / 1e6:19.1f}")

    cap = 716
    stream = bkrenhanced.encode(data, cap)
    sectors = np.frombuffer(stream, np.uint8).reshape(-1, cap)
    lost = np.zeros(len(sectors), bool)
    lost[np.arange(0, len(sectors), 255)[:, None] + np.arange(100, 110)] = True

    def decode() -> bytes:
        dec = bkrenhanced.BkrEnhancedDecoder(cap)
        pairs = zip(sectors, lost, strict=True)
        out = [dec.push(None if gone else s.tobytes()) for s, gone in pairs]
        out.append(dec.finish())
        return b"".join(out)

    assert decode() == data
    enc = best_time(lambda: bkrenhanced.encode(data, cap), args.repeat)
    dec = best_time(decode, args.repeat)
    print(f"bkrenhanced C={cap}: encode {size / enc / 1e6:.1f} MB/s, "
          f"decode (10 lost sectors/group) {size / dec / 1e6:.1f} MB/s")


if __name__ == "__main__":
    main()

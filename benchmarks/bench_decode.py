"""Decode throughput of the Player: MB/s of user data (10^6 bytes per second).

For each formatted 3.102 mode, 32 MiB of random bytes are recorded, then decoded
(1 MiB feeds, format detection on) clean and with exactly 3 byte errors in every inner
Reed-Solomon codeword of every field (EP: one flipped bit inside each chosen 9-bit GCR
word, so each error damages exactly one sector byte). Targets: >= 100 MB/s clean SP,
>= 30 MB/s at 3 errors/codeword, >= 40 MB/s EP.

    .venv/bin/python benchmarks/bench_decode.py [--size MiB] [--modes nls,phe] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from machine import describe

from backerd.allocator import tune_allocator
from backerd.format import frame
from backerd.format.params import FORMATTED_MODES, mode
from backerd.format.player import Player
from backerd.format.recorder import encode_recording

FEED = 1 << 20


def field_offsets(name: str, length: int) -> np.ndarray:
    g = mode(name).geometry
    count = 2 * (length // g.frame_size) + 2
    sizes = np.full(count, g.field_size, np.int64)
    sizes[0::2] += g.interlace
    offs = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return offs[offs + g.field_size <= length]


def with_codeword_errors(name: str, raw: bytes, per_codeword: int, seed: int = 1) -> bytes:
    """Exactly `per_codeword` damaged symbols in every inner codeword of every field."""
    p = mode(name)
    rng = np.random.default_rng(seed)
    offs = field_offsets(name, len(raw))
    f, i, n = offs.size, p.interleave, p.rs_n
    # distinct symbol positions m per codeword; sector byte = b + I*m (3.102 stride)
    m = np.argsort(rng.random((f, i, n), dtype=np.float32), axis=2)[:, :, :per_codeword]
    sector_byte = np.arange(i)[None, :, None] + i * m
    pay = frame.payload_positions(p)
    arr = np.frombuffer(raw, np.uint8).copy()
    base = offs[:, None, None] + p.leader
    if p.codec == "sp":
        where = base + pay[sector_byte]
        arr[where.ravel()] ^= rng.integers(1, 256, where.size, dtype=np.uint8)
    else:
        # flip one of the first 8 bits of the 9-bit word: changes that word only
        bit = 9 * sector_byte + rng.integers(0, 8, sector_byte.shape)
        where = base + pay[bit // 8]
        np.bitwise_xor.at(arr, where.ravel(), (0x80 >> (bit % 8)).astype(np.uint8).ravel())
    return arr.tobytes()


def decode_once(name: str, raw: bytes, expected: bytes) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, note) of one decode."""
    player = Player(name)
    out = []
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(0, len(raw), FEED):
        out.append(player.feed(raw[k : k + FEED]).data)
    out.append(player.finish().data)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    data = b"".join(out)
    note = "ok"
    if data != expected:
        note = "MISMATCH"
    elif not player.ended:
        note = "no EOR"
    return wall, cpu, note


def main() -> None:
    tune_allocator()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=float, default=32, help="MiB of user data (default 32)")
    ap.add_argument("--modes", default=",".join(FORMATTED_MODES))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--errors", type=int, default=3, help="errors per codeword (default 3)")
    a = ap.parse_args()
    size = int(a.size * (1 << 20))
    payload = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()
    print(f"user data {size} bytes; MB/s = 10^6 user bytes per second of wall time "
          f"(CPU: of process CPU time), best of {a.repeat}")
    print("load average", " ".join(f"{x:.2f}" for x in os.getloadavg()), "|", describe())
    errs = f"{a.errors} err/cw"
    print(f"{'mode':5} {'raw MB':>7} {'clean':>8} {'CPU':>7} {errs:>9} {'CPU':>7}  notes")
    modes = a.modes.split(",")
    streams = {}
    for name in modes:
        raw = encode_recording(payload, name)
        streams[name] = (raw, with_codeword_errors(name, raw, a.errors))
    # Rounds over all modes, best per mode and case: a slow spell of a shared machine
    # then touches one sample of every mode instead of every sample of one.
    best = {(name, case): [float("inf"), float("inf"), "ok"] for name in modes
            for case in (0, 1)}
    for _ in range(a.repeat):
        for name in modes:
            for case in (0, 1):
                wall, cpu, note = decode_once(name, streams[name][case], payload)
                entry = best[name, case]
                entry[0], entry[1] = min(entry[0], wall), min(entry[1], cpu)
                if note != "ok":
                    entry[2] = note
    for name in modes:
        (cw, cc, n1), (nw, nc, n2) = best[name, 0], best[name, 1]
        notes = n1 if n1 == n2 else f"clean {n1}; noisy {n2}"
        rate = [size / t / 1e6 for t in (cw, cc, nw, nc)]
        print(f"{name:5} {len(streams[name][0]) / 1e6:7.1f} {rate[0]:8.1f} {rate[1]:7.1f} "
              f"{rate[2]:9.1f} {rate[3]:7.1f}  {notes}", flush=True)
    print("load average", " ".join(f"{x:.2f}" for x in os.getloadavg()), "|", describe())


if __name__ == "__main__":
    main()

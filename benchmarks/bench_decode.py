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


def decode_rate(name: str, raw: bytes, expected: bytes, repeat: int) -> tuple[float, float, str]:
    """(wall MB/s, CPU MB/s, note), best of `repeat` runs each."""
    best = best_cpu = float("inf")
    note = "ok"
    for _ in range(repeat):
        player = Player(name)
        out = []
        t0, c0 = time.perf_counter(), time.process_time()
        for k in range(0, len(raw), FEED):
            out.append(player.feed(raw[k : k + FEED]).data)
        out.append(player.finish().data)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
        data = b"".join(out)
        if data != expected:
            note = "MISMATCH"
        elif not player.ended:
            note = "no EOR"
        lost = player.stats.lost_sectors
        if lost:
            note += f" ({lost} sectors lost, outer code restored)" if data == expected else ""
    return len(expected) / best / 1e6, len(expected) / best_cpu / 1e6, note


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
    print("load average", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    errs = f"{a.errors} err/cw"
    print(f"{'mode':5} {'raw MB':>7} {'clean':>8} {'CPU':>7} {errs:>9} {'CPU':>7}  notes")
    for name in a.modes.split(","):
        raw = encode_recording(payload, name)
        clean, clean_cpu, note1 = decode_rate(name, raw, payload, a.repeat)
        noisy_raw = with_codeword_errors(name, raw, a.errors)
        noisy, noisy_cpu, note2 = decode_rate(name, noisy_raw, payload, a.repeat)
        notes = note1 if note1 == note2 else f"clean {note1}; noisy {note2}"
        print(f"{name:5} {len(raw) / 1e6:7.1f} {clean:8.1f} {clean_cpu:7.1f} {noisy:9.1f} "
              f"{noisy_cpu:7.1f}  {notes}", flush=True)
    print("load average", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()

"""Throughput of the batched Reed-Solomon codec (spec section 16 targets).

Each scenario processes the codewords that carry 32 MiB of data symbols (e.g. ~404k
RS(93,83) codewords) and reports MB/s = 10^6 data symbols per second (best of --repeat).

    .venv/bin/python benchmarks/bench_rs.py [--mib 32] [--repeat 3] [--codes 93,83 255,235]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from backerd.allocator import tune_allocator
from backerd.format.rs import RSCode, rs_code

DEFAULT_CODES = [(93, 83), (118, 108), (68, 60), (255, 235)]


def best_time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall-clock and best process CPU seconds over repeat runs (the CPU figure is
    the meaningful one on a loaded machine; numpy here is single-threaded)."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


# Codewords per EP group sharing one pattern of lost sectors (C of mode nls).
GROUP = 826


def inject(
    rng: np.random.Generator, cw: np.ndarray, n_err: int, n_eras: int, group: int = 1
) -> tuple[np.ndarray, np.ndarray | None]:
    """n_err random errors and n_eras erasures at distinct random positions of every row;
    with group > 1, runs of `group` rows share their positions (EP lost sectors)."""
    rows, n = cw.shape
    recv = cw.copy()
    # distinct positions per row: the first columns of a random permutation per row
    n_groups = -(-rows // group)
    pos = np.argsort(rng.random((n_groups, n)), axis=1)[:, : n_err + n_eras]
    pos = np.repeat(pos, group, axis=0)[:rows]
    r = np.arange(rows)[:, None]
    if n_err:
        recv[r, pos[:, :n_err]] ^= rng.integers(1, 256, (rows, n_err), dtype=np.uint8)
    eras = None
    if n_eras:
        eras = np.zeros(cw.shape, dtype=bool)
        eras[r, pos[:, n_err:]] = True
        recv[eras] = rng.integers(0, 256, int(eras.sum()), dtype=np.uint8)
    return recv, eras


def scenarios(code: RSCode) -> list[tuple[str, int, int, int]]:
    """(name, errors, erasures, rows sharing the positions)."""
    t = code.nsym // 2
    out = [("decode clean", 0, 0, 1), ("decode 1 error", 1, 0, 1), ("decode 3 errors", 3, 0, 1)]
    out.append((f"decode {t} errors", t, 0, 1))
    for e in (t, code.nsym):
        out.append((f"decode {e} erasures", 0, e, 1))
        out.append((f"decode {e} eras/{GROUP} rows", 0, e, GROUP))
    return out


def report(code: RSCode, name: str, rows: int, times: tuple[float, float]) -> None:
    wall, cpu = times
    mb = rows * code.k / 1e6
    label = f"({code.n},{code.k})"
    print(f"{label:>10} {name:<24} {rows:>8} {wall:8.3f} {cpu:8.3f} {mb / cpu:9.1f}", flush=True)


def bench_code(code: RSCode, rows: int, repeat: int, rng: np.random.Generator) -> None:
    data = rng.integers(0, 256, (rows, code.k), dtype=np.uint8)
    report(code, "encode", rows, best_time(lambda: code.encode(data), repeat))
    cw = code.codewords(data)
    report(code, "syndromes clean", rows, best_time(lambda: code.syndromes(cw), repeat))
    for name, n_err, n_eras, group in scenarios(code):
        recv, eras = inject(rng, cw, n_err, n_eras, group)
        res = code.decode(recv, eras)
        if not (res.ok.all() and np.array_equal(res.corrected, cw)):
            raise SystemExit(f"({code.n},{code.k}) {name}: decode failed")
        report(code, name, rows, best_time(lambda r=recv, e=eras: code.decode(r, e), repeat))


def run(mib: float, repeat: int, codes: list[tuple[int, int]]) -> None:
    rng = np.random.default_rng(1)
    print(f"{'code':>10} {'scenario':<24} {'rows':>8} {'wall s':>8} {'cpu s':>8} {'MB/s cpu':>9}")
    for n, k in codes:
        bench_code(rs_code(n, k), int(np.ceil(mib * 2**20 / k)), repeat, rng)


def main() -> None:
    tune_allocator()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=float, default=32.0, help="data symbols per scenario, MiB")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--codes", nargs="*", default=None, help="n,k pairs, e.g. 93,83 255,235")
    args = ap.parse_args()
    codes = DEFAULT_CODES
    if args.codes:
        codes = [(int(a), int(b)) for a, b in (c.split(",") for c in args.codes)]
    run(args.mib, args.repeat, codes)


if __name__ == "__main__":
    main()

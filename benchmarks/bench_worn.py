"""Worn-tape curves: the fraction of files recovered exactly against noise level.

For every formatted mode (3.102) and each kind of playback damage of the simulated VCR
(`vcr.noise.NoiseModel`: byte errors, constant-level dropout bursts, line slips,
dropped fields), random files are recorded, damaged at each level and decoded by:

* ours: the Player as shipped (`DecoderOptions()`);
* ours with one strength switched off: erasures, dropout runs, resync, outer-code
  erasure placement (EP only);
* original: the original driver's method (`DecoderOptions.original()`: errors-only
  inner decoding, a sector lost on any line slip, outer erasures at the group index).

A file counts as recovered when the decoded bytes equal it exactly. Partial sectors
do not change that count (they only narrow what is reported lost), so they have no
curve. Also measured: how often runs of 0x00/0xFF bytes occur in the clean sectors
(the dropout-run threshold). Prints markdown tables; `--png` writes the curves
(project PNG writer; layout in docs/reliability.md).

    nice -n 10 .venv/bin/python benchmarks/bench_worn.py --png docs/worn-tape.png
    (defaults: 1 MB files, 3 files per point, 4 levels per noise type; 10-20 min)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass

import numpy as np

from backerd.format.decode_options import DecoderOptions
from backerd.format.fields import FieldCutter
from backerd.format.inner_decode import DROPOUT_RUN, constant_runs
from backerd.format.params import FORMATTED_MODES, Codec, mode
from backerd.format.player import Player, SectorLost
from backerd.format.recorder import encode_recording
from backerd.format.sync import FieldBatch, FieldSync
from backerd.observe.png import encode_png
from backerd.vcr.noise import NoiseModel

# Noise types and their levels. errors: byte error rate (per byte of the field);
# dropout: probability that a field has a burst of zeros (mean 40 bytes, geometric);
# slip: probability that a field has a line dropped or repeated; gap: probability that
# a field is missing from the playback.
LEVELS = {
    "errors": (0.002, 0.004, 0.008, 0.016),
    "dropout": (0.003, 0.01, 0.03, 0.1),
    "slip": (0.003, 0.01, 0.03, 0.1),
    "gap": (0.001, 0.003, 0.01, 0.03),
}
DECODERS = {
    "ours": DecoderOptions(),
    "-erasures": DecoderOptions().without("erasures"),
    "-dropout_runs": DecoderOptions().without("dropout_runs"),
    "-resync": DecoderOptions().without("resync"),
    "-outer_placement": DecoderOptions().without("outer_placement"),
    "-partial_sectors": DecoderOptions().without("partial_sectors"),
    "original": DecoderOptions.original(),
}
# Exact files do not depend on partial sectors: their curve is the bytes they keep.
FILE_CURVES = [k for k in DECODERS if k != "-partial_sectors"]
BYTE_COLUMNS = ("ours", "-partial_sectors", "original")
COLOURS = {"ours": (31, 119, 180), "-erasures": (255, 127, 14), "-dropout_runs": (44, 160, 44),
           "-resync": (148, 103, 189), "-outer_placement": (140, 86, 75),
           "-partial_sectors": (127, 127, 127), "original": (214, 39, 40)}


def noise_model(kind: str, level: float, seed: int, field_size: int) -> NoiseModel:
    if kind == "errors":
        return NoiseModel(seed=seed, errors=level * field_size)
    return NoiseModel(seed=seed, **{kind: level})


def decoders_for(name: str) -> dict[str, DecoderOptions]:
    """Outer-code placement exists in EP modes only, partial sectors in SP modes only."""
    skip = "-partial_sectors" if mode(name).codec is Codec.EP else "-outer_placement"
    return {k: v for k, v in DECODERS.items() if k != skip}


def recovered(name: str, noisy: bytes, data: bytes, options: DecoderOptions) -> tuple[bool, int]:
    """Whether the file came back exactly, and how many of its bytes were delivered
    right and not reported lost."""
    player = Player(name, "3.102", options=options)
    out, tail = player.feed(noisy), player.finish()
    got = out.data + tail.data
    if got == data:
        return True, len(data)
    lost = np.zeros(len(data), bool)
    for ev in out.events + tail.events:
        if isinstance(ev, SectorLost):
            lost[ev.offset : ev.offset + ev.length] = True
    n = min(len(got), len(data))
    same = np.frombuffer(got[:n], np.uint8) == np.frombuffer(data[:n], np.uint8)
    return False, int((same & ~lost[:n]).sum())


@dataclass
class Point:
    mode: str
    kind: str
    level: float
    counts: dict  # decoder -> files recovered
    files: int
    good_bytes: dict  # decoder -> user bytes delivered right (all files)
    size: int


def run_mode(name: str, size: int, files: int, levels: dict) -> tuple[list[Point], list]:
    p = mode(name)
    rng = np.random.default_rng(sum(name.encode()))
    originals, clean_fields = [], []
    for _ in range(files):
        data = rng.integers(0, 256, size, np.uint8).tobytes()
        cutter = FieldCutter(p)
        raw = encode_recording(data, name)
        originals.append(data)
        clean_fields.append(cutter.cut(raw) + cutter.rest())
    points = []
    decs = decoders_for(name)
    for kind, kind_levels in levels.items():
        for level in kind_levels:
            counts = dict.fromkeys(decs, 0)
            good = dict.fromkeys(decs, 0)
            for f, (data, fields) in enumerate(zip(originals, clean_fields, strict=True)):
                model = noise_model(kind, level, 1000 * f + 7, p.geometry.field_size)
                noisy = b"".join(g for g in (model.apply(i, 0, x) for i, x in enumerate(fields))
                                 if g is not None)
                for label, options in decs.items():
                    exact, right = recovered(name, noisy, data, options)
                    counts[label] += exact
                    good[label] += right
            points.append(Point(name, kind, level, counts, files, good, size))
            print(f"  {name} {kind:8} {level:<6} " + " ".join(
                f"{k}={v}" for k, v in counts.items()), file=sys.stderr, flush=True)
    return points, clean_fields


def run_lengths(name: str, clean_fields: list, size: int) -> tuple[int, dict[int, int]]:
    """Payload bytes of the data sectors and runs of each length (>= L) among them."""
    p = mode(name)
    n_data = -(-size // p.capacity)
    found = {length: 0 for length in range(3, DROPOUT_RUN + 1)}
    total = 0
    for fields in clean_fields:
        sync = FieldSync(p)
        batch = FieldBatch.concat([sync.feed(b"".join(fields)), sync.finish()], sync.payload_size)
        pay = batch.payload[p.n_bor : p.n_bor + n_data]
        total += pay.size
        for length in found:
            runs = constant_runs(pay, length)
            found[length] += int((runs[:, 1:] & ~runs[:, :-1]).sum() + runs[:, 0].sum())
    return total, found


def table(points: list[Point], kind: str) -> str:
    modes = sorted({pt.mode for pt in points}, key=FORMATTED_MODES.index)
    labels = FILE_CURVES
    lines = [f"| mode | {kind} level | " + " | ".join(labels) + " |",
             "|---|---|" + "---|" * len(labels)]
    for name in modes:
        for pt in (q for q in points if q.mode == name and q.kind == kind):
            cells = [f"{pt.counts[k]}/{pt.files}" if k in pt.counts else "-" for k in labels]
            lines.append(f"| {name} | {pt.level} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def byte_table(points: list[Point]) -> str:
    """SP modes: percent of user bytes delivered right, where some file was damaged."""
    lines = ["| mode | noise | level | " + " | ".join(BYTE_COLUMNS) + " |",
             "|---|---|---|" + "---|" * len(BYTE_COLUMNS)]
    for pt in points:
        if mode(pt.mode).codec is not Codec.SP or pt.counts["ours"] == pt.files:
            continue
        total = pt.files * pt.size
        cells = [f"{100 * pt.good_bytes[k] / total:.2f}" for k in BYTE_COLUMNS]
        lines.append(f"| {pt.mode} | {pt.kind} | {pt.level} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(points: list[Point]) -> list[str]:
    """Points where some decoder recovers a file but ours does not beat the original."""
    out = []
    for pt in points:
        ours, orig = pt.counts["ours"], pt.counts["original"]
        if (ours or orig) and ours <= orig:
            out.append(f"{pt.mode} {pt.kind} {pt.level}: ours {ours}, original {orig}"
                       f"{' (all recovered)' if ours == orig == pt.files else ''}")
    return out


# ---------------------------------------------------------------------------- plot
PANEL_W, PANEL_H, PAD = 150, 110, 14


def _line(img, x0, y0, x1, y1, colour) -> None:
    steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    xs = np.linspace(x0, x1, steps).round().astype(int)
    ys = np.linspace(y0, y1, steps).round().astype(int)
    for dx in (0, 1):
        for dy in (0, 1):
            img[ys + dy, xs + dx] = colour


def render(points: list[Point], levels: dict) -> np.ndarray:
    """Panels: one row per noise type (errors, dropout, slip, gap), one column per
    mode (FORMATTED_MODES order); x = level index, y = fraction recovered (0..1).
    A legend row of colour swatches in FILE_CURVES order sits on top."""
    modes = [m for m in FORMATTED_MODES if any(pt.mode == m for pt in points)]
    kinds = list(levels)
    top = 3 * PAD
    h = top + len(kinds) * (PANEL_H + PAD) + PAD
    w = len(modes) * (PANEL_W + PAD) + PAD
    img = np.full((h, w, 3), 255, np.uint8)
    for i, label in enumerate(FILE_CURVES):
        x = PAD + i * 3 * PAD
        img[PAD : 2 * PAD, x : x + 2 * PAD] = COLOURS[label]
    for r, kind in enumerate(kinds):
        for c, name in enumerate(modes):
            x0, y0 = PAD + c * (PANEL_W + PAD), top + r * (PANEL_H + PAD)
            img[y0 : y0 + PANEL_H, x0] = img[y0 : y0 + PANEL_H, x0 + PANEL_W] = 0
            img[y0, x0 : x0 + PANEL_W] = img[y0 + PANEL_H, x0 : x0 + PANEL_W + 1] = 0
            for q in (0.25, 0.5, 0.75):
                img[y0 + int(PANEL_H * q), x0 + 1 : x0 + PANEL_W : 3] = 190
            pts = [pt for pt in points if pt.mode == name and pt.kind == kind]
            n = len(pts)
            for k, label in enumerate(FILE_CURVES):
                if label not in (pts[0].counts if pts else {}):
                    continue
                # Each decoder's line 2 px lower than the one before: equal curves
                # stay visible side by side instead of hiding each other.
                xy = [(x0 + 6 + (PANEL_W - 14) * i / max(n - 1, 1),
                       y0 + PANEL_H - 16 - (PANEL_H - 22) * pt.counts[label] / pt.files
                       + 2 * k) for i, pt in enumerate(pts)]
                for (a, b), (c2, d) in zip(xy, xy[1:], strict=False):
                    _line(img, a, b, c2, d, COLOURS[label])
                for a, b in xy:
                    ia, ib = int(round(a)), int(round(b))
                    img[ib - 1 : ib + 3, ia - 1 : ia + 3] = COLOURS[label]
    return img


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000, help="bytes per file")
    ap.add_argument("--files", type=int, default=3, help="files per point")
    ap.add_argument("--levels", type=int, default=4, help="levels per noise type (<= 4)")
    ap.add_argument("--modes", nargs="*", default=list(FORMATTED_MODES))
    ap.add_argument("--png", help="write the curves to this PNG file")
    ap.add_argument("--json", help="write the points to this JSON file")
    args = ap.parse_args()
    levels = {k: v[: args.levels] for k, v in LEVELS.items()}
    t0 = time.perf_counter()
    points, runs = [], {}
    for name in args.modes:
        pts, clean = run_mode(name, args.size, args.files, levels)
        points += pts
        if mode(name).codec is Codec.SP:
            runs[name] = run_lengths(name, clean, args.size)
    print(f"# Worn-tape curves: {args.files} files of {args.size} bytes per point\n")
    for kind in levels:
        print(f"## {kind}\n\n{table(points, kind)}\n")
    print(f"## SP: user bytes delivered right (percent)\n\n{byte_table(points)}\n")
    print("## runs of 0x00/0xFF in clean data sectors (payload bytes; runs >= L)\n")
    print("| mode | bytes | " + " | ".join(f"L={n}" for n in range(3, DROPOUT_RUN + 1)) + " |")
    print("|---|---|" + "---|" * (DROPOUT_RUN - 2))
    for name, (total, found) in runs.items():
        print(f"| {name} | {total} | " + " | ".join(str(v) for v in found.values()) + " |")
    bad = verdict(points)
    print("\nours not strictly above the original where a file was recovered:"
          + ("".join(f"\n- {b}" for b in bad) if bad else " none"))
    print(f"\n{time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([dataclasses.asdict(pt) for pt in points], fh)
    if args.png:
        with open(args.png, "wb") as fh:
            fh.write(encode_png(render(points, levels)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

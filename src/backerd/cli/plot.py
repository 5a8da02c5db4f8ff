"""``backerd plot``: signal health along the tape as a PNG.

``backerd plot IMAGE --file N -o out.png`` decodes st file N of a cassette image (the
label, if any, is not counted) and draws corrected symbols per field, key-match margin,
lost sectors and line slips. ``--last-read`` asks the running daemon for the trace of
the recording it read last. With the ``plot`` extra (matplotlib) the strips have axes;
without it a built-in image is drawn and a note says which extra gives the full plot.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backerd.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", nargs="?", type=Path, help="a cassette image")
    parser.add_argument("--file", type=int, metavar="N", help="st file number (0 = first)")
    parser.add_argument("--last-read", action="store_true",
                        help="the recording the daemon read last (see --unit)")
    parser.add_argument("--unit", type=int, default=0, metavar="N")
    parser.add_argument("--config", type=Path, metavar="FILE")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.png")
    parser.add_argument("--size", default="1200x800", metavar="WxH", help="pixels")
    parser.add_argument("--builtin", action="store_true",
                        help="use the built-in renderer even if matplotlib is installed")


def _size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not (sep and w.isdigit() and h.isdigit()) or not (
            16 <= int(w) <= 20000 and 16 <= int(h) <= 20000):
        raise UsageError(f"--size wants WxH in pixels (16..20000), got {text!r}")
    return int(w), int(h)


def trace_of_file(image: Path, file: int):  # -> Trace
    from backerd.catalog.rebuild import label_of
    from backerd.cli.progress import Bar
    from backerd.observe.fieldtrace import FieldTrace
    from backerd.vcr.sim import Cassette

    with Cassette.open(image, readonly=True) as cassette:
        index = file + (1 if label_of(cassette) is not None else 0)
        recs = cassette.recordings
        if not 0 <= index < len(recs) or file < 0:
            raise UsageError(f"{image}: no file {file}")
        rec = recs[index]
        tracer = FieldTrace(rec.mode, rec.fmt if rec.fmt in ("3.102", "3.101", "3.3")
                            else "auto", start=rec.start)
        bar = Bar(f"decode file {file}", rec.fields, "fields")
        for at in range(rec.start, rec.end, 64):
            for f in cassette.read_fields(at, min(64, rec.end - at)):
                tracer.feed_field(f)
            bar.update(at + 64 - rec.start)
        bar.done()
        tracer.finish()
        return tracer.trace


def run(args: argparse.Namespace) -> int:
    from backerd.observe.plot import PLOT_EXTRA, have_matplotlib, plot_png

    width, height = _size(args.size)
    if args.last_read:
        from backerd.daemon.config import load_config
        from backerd.daemon.control import ask
        from backerd.observe.fieldtrace import Trace

        reply = ask(load_config(args.config).control_socket,
                    {"request": "trace", "unit": args.unit})
        trace = Trace(reply["start"], reply["corrected"], reply["margin"], reply["lost"],
                      reply["slips"])
    elif args.image is not None and args.file is not None:
        trace = trace_of_file(args.image, args.file)
    else:
        raise UsageError("give IMAGE --file N, or --last-read")
    if not len(trace):
        raise UsageError("nothing to plot: the recording has no fields")
    builtin = args.builtin or not have_matplotlib()
    data = plot_png(trace, width, height, builtin=builtin)
    args.output.write_bytes(data)
    note = "" if not builtin or args.builtin else (
        f" (built-in image; install the {PLOT_EXTRA} extra for axes and labels)")
    print(f"{args.output}: {width}x{height} PNG, {len(trace)} fields{note}", file=sys.stderr)
    return 0

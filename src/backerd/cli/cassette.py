"""``backerd cassette``: create, inspect, fill and empty simulated cassette images.

new     make a blank cassette image (sparse: costs no space until recorded on)
info    standard, length, wear, and the recordings with their position on tape
record  append a raw Backer stream (e.g. from ``backerd encode``) as a recording at EOD
dump    write the raw stream of one recording (e.g. for ``backerd decode``)
protect set or clear the write-protect tab
label   write a label at BOT (refuses a cassette with data unless --force: erases it)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import BinaryIO

from backerd.errors import MediumError, UsageError
from backerd.format.params import AUTO, FORMAT_CHOICES, Standard

CHUNK = 1 << 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("new", help="create a blank cassette image")
    p.add_argument("image")
    p.add_argument("--standard", default=Standard.NTSC.value, choices=[s.value for s in Standard],
                   type=str.lower, help="video standard (default ntsc)")
    p.add_argument("--length", default="E-180",
                   help="cassette length: E-30..E-300, T-15..T-180, or 1..600 minutes "
                        "(default E-180)")
    p.add_argument("--force", action="store_true", help="replace an existing regular file")
    p = sub.add_parser("info", help="show the cassette and its recordings")
    p.add_argument("image")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--mode", help="mode to count the capacity left in (default: the mode "
                   "of the last recording, else nhs or phs)")
    p = sub.add_parser("record", help="append a raw stream (stdin) as a recording at EOD")
    p.add_argument("image")
    p.add_argument("--mode", required=True, help="mode the stream was made in (nls, nhe, ...)")
    p.add_argument("--format", default=AUTO, choices=FORMAT_CHOICES,
                   help="format release of the stream, for readers (default auto)")
    p = sub.add_parser("dump", help="write the raw stream of recording N to stdout")
    p.add_argument("image")
    p.add_argument("--file", type=int, required=True, metavar="N",
                   help="recording number, 0 = first")
    p.add_argument("--key-file", type=Path, metavar="FILE",
                   help="decode and decrypt the recording (an encrypted unit's cassette)")
    p = sub.add_parser("label", help="write a label at BOT (a blank cassette, or --force)")
    p.add_argument("image")
    p.add_argument("text")
    p.add_argument("--force", action="store_true", help="label a cassette holding data "
                   "(everything on it is erased)")
    p.add_argument("--mode", help="mode of the label recording (default: nhs or phs)")
    p = sub.add_parser("protect", help="set (or with --off clear) the write-protect tab")
    p.add_argument("image")
    p.add_argument("--off", action="store_true")


def run(args: argparse.Namespace) -> int:
    from backerd.vcr.sim import Cassette

    if args.action == "new":
        with Cassette.create(args.image, args.standard, args.length, force=args.force) as c:
            print(f"{args.image}: blank {c.standard.upper()} cassette, {c.length_name}, "
                  f"{_hms(c.slots, c.fps)} ({c.slots} fields)")
        return 0
    if args.action == "info":
        with Cassette.open(args.image, readonly=True) as c:
            info = c.describe()
        info["capacity_left"] = capacity_left(info, args.mode)
        if args.json:
            json.dump(info, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            _print_info(info)
        if info["past_end"]:  # listed above, but the image is damaged: say so and fail
            sys.stdout.flush()
            print(f"backerd cassette: {args.image}: {info['past_end']}", file=sys.stderr)
            return MediumError.exit_status
        return 0
    if args.action == "record":
        return _record(args)
    if args.action == "dump":
        return _dump(args)
    if args.action == "label":
        return _label(args)
    if args.action == "protect":
        with Cassette.open(args.image) as c:
            c.write_protected = not args.off
            print(f"{args.image}: write protection {'on' if c.write_protected else 'off'}")
        return 0
    raise UsageError(f"unknown action {args.action!r}")


def _label(args: argparse.Namespace) -> int:
    from backerd.catalog.label import new_label
    from backerd.medium.labelled import write_label
    from backerd.vcr.sim import Cassette, SimDeck

    with Cassette.open(args.image) as c:
        label = new_label(args.text, c.standard.upper(), c.slots // c.fps)
        mode = args.mode or ("phs" if c.standard == "pal" else "nhs")
        write_label(SimDeck(c), label, mode, force=args.force)
    print(f"{args.image}: labelled {label.text!r} ({label.uuid})")
    return 0


def _hms(fields: int, fps: int) -> str:
    from backerd.vcr.base import format_time

    return format_time(fields, fps)


def _print_info(info: dict) -> None:
    fps = info["fps"]
    print(f"cassette   {info['path']}")
    print(f"standard   {info['standard'].upper()}, {info['length']} "
          f"({info['duration']}, {info['fields']} fields)")
    wear = info["wear"]
    print(f"protect    {'on' if info['write_protected'] else 'off'}")
    print(f"wear       {wear.get('passes', 0)} passes, {wear.get('fields', 0)} fields "
          "past the heads")
    recs = info["recordings"]
    if recs:
        print(f"{'file':>4}  {'start':>8}  {'length':>8}  mode  format  {'bytes':>12}  "
              f"{'blocks':>8}  end")
    for i, r in enumerate(recs):
        size = "?" if r["user_bytes"] is None else str(r["user_bytes"])
        blocks = "stream" if r["blocks"] is None else str(sum(c for _, c in r["blocks"]))
        end = "filemark" if r["filemark"] else "no filemark"
        if r["origin"] != "medium":
            end += f" ({r['origin']})"
        print(f"{i:>4}  {_hms(r['start'], fps):>8}  {_hms(r['fields'], fps):>8}  "
              f"{r['mode']:<4}  {r['fmt']:<6}  {size:>12}  {blocks:>8}  {end}")
    left = info["fields"] - info["eod"]
    print(f"EOD        {info['eod_time']} (field {info['eod']}), {_hms(left, fps)} of tape left")
    room = info["capacity_left"]
    print(f"capacity   {room['bytes']:,} bytes of user data left in mode {room['mode']} "
          f"({room['before_early_warning']:,} before the early-warning point)")
    if info["past_end"]:
        print(f"DAMAGED    {info['past_end']}")
    lost = info.get("interrupted")
    if lost:
        mode = lost["mode"] or "unknown mode"
        print(f"signal     after EOD at {_hms(lost['start'], fps)} ({lost['fields']} "
              f"fields, {mode}): a recording in progress, or an interrupted one that "
              "the daemon recovers when it loads the cassette")


def capacity_left(info: dict, mode: str | None) -> dict:
    """User bytes that still fit after EOD in ``mode`` (default: the cassette's mode):
    to the end of the tape, and before the early-warning point where writes stop."""
    from backerd.format.params import Standard, check_standard
    from backerd.format.params import mode as mode_params
    from backerd.medium.backer import EARLY_WARNING_SECONDS
    from backerd.observe.preflight import capacity_bytes

    recs = info["recordings"]
    name = mode or (recs[-1]["mode"] if recs else Standard.parse(info["standard"]).default_mode)
    params = mode_params(name)
    check_standard(params.name, info["standard"])
    free = info["fields"] - info["eod"]
    zone = int(EARLY_WARNING_SECONDS * info["fps"])
    return {"mode": params.name, "bytes": capacity_bytes(params, free),
            "before_early_warning": capacity_bytes(params, free - zone)}


def _record(args: argparse.Namespace) -> int:
    from backerd.format.fields import FieldCutter
    from backerd.format.params import check_standard
    from backerd.format.params import mode as mode_params
    from backerd.vcr.base import Recording
    from backerd.vcr.sim import Cassette, SimDeck

    params = mode_params(args.mode)
    stdin: BinaryIO = sys.stdin.buffer
    first = stdin.read(CHUNK)
    if not first:
        raise UsageError("no input on stdin: nothing recorded")
    with Cassette.open(args.image) as c:
        check_standard(params.name, c.standard)
        recs = c.recordings
        start = recs[-1].end if recs else 0
        deck = SimDeck(c)
        c.begin_recording(start, params.name, args.format, index=len(recs))
        deck.seek(start)
        cutter = FieldCutter(params)
        chunk = first
        total = 0
        while chunk:
            deck.record(cutter.cut(chunk))
            total += len(chunk)
            chunk = stdin.read(CHUNK)
        deck.record(cutter.rest())
        fields = deck.position() - start
        c.commit_recording(Recording(start, fields, params.name, args.format,
                                     user_bytes=total if params.is_raw else None,
                                     blocks=None, filemark=True, origin="record"))
        print(f"{args.image}: recording {len(recs)} at {_hms(start, c.fps)}, "
              f"{fields} fields ({_hms(fields, c.fps)})", file=sys.stderr)
    return 0


def _dump(args: argparse.Namespace) -> int:
    from backerd.cli.progress import Bar
    from backerd.vcr.sim import Cassette

    out = sys.stdout.buffer
    if args.key_file is not None:
        from backerd.cli.unseal import dump_plaintext

        dump_plaintext(Path(args.image), args.file, args.key_file, out)
        return 0
    with Cassette.open(args.image, readonly=True) as c:
        recs = c.recordings
        if not 0 <= args.file < len(recs):
            have = f"recordings 0..{len(recs) - 1}" if recs else "no recordings"
            raise UsageError(f"no recording {args.file}: the cassette has {have}")
        rec = recs[args.file]
        if args.file in c.lost_recordings:
            raise MediumError(f"{args.image}: recording {args.file} cannot be dumped: "
                              f"{c.past_end}")
        bar = Bar(f"dump {args.file}", rec.fields, "fields")
        for at in range(rec.start, rec.end, 256):
            fields = c.read_fields(at, min(256, rec.end - at))
            out.write(b"".join(f for f in fields if f is not None))
            bar.update(at + len(fields) - rec.start)
        bar.done()
        out.flush()
    return 0

"""``backerd encode``: user bytes on stdin -> raw Backer stream on stdout.

Streams in fixed chunks, so memory stays bounded (one EP group at most) whatever the
input length. The output is one recording (BOR, data, EOR, pair padding), exactly what
the original driver wrote for the same bytes; raw modes pass bytes through. Formats
3.101 and 3.3 are written as their `bkrencode` utility wrote them (optionally through
the bkrenhanced outer code in EP modes), for making test tapes for old readers.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from backerd.cli.progress import Progress, input_size
from backerd.format.params import Format

if TYPE_CHECKING:
    from backerd.format.legacy import LegacyRecorder

_CHUNK = 1 << 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", required=True, metavar="MODE",
                        help="nls nhs pls phs nle nhe ple phe (or a raw mode nlr nhr plr phr)")
    parser.add_argument("--format", default=Format.V3102.value, metavar="FORMAT",
                        help="format release to write: 3.102 (default), 3.101 or 3.3")
    parser.add_argument("--bkrenhanced", action="store_true",
                        help="3.101/3.3 EP modes: add the bkrenhanced outer code first")
    parser.add_argument("--no-progress", action="store_true",
                        help="never show the progress line on stderr")


def run(args: argparse.Namespace) -> int:
    from backerd.errors import UsageError
    from backerd.format.params import mode
    from backerd.format.recorder import Recorder

    params = mode(args.mode, args.format)  # unknown mode/format: UsageError
    recorder: Recorder | LegacyRecorder
    if not params.format.is_legacy:
        if args.bkrenhanced:
            raise UsageError("--bkrenhanced is for formats 3.101 and 3.3 (3.102 EP has its "
                             "outer code built in)")
        recorder = Recorder(params)
    else:
        if params.is_raw:
            raise UsageError(f"raw mode {args.mode} has no format; use --format 3.102")
        from backerd.format.legacy import LegacyRecorder

        recorder = LegacyRecorder(params, bkrenhanced=args.bkrenhanced)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    progress = Progress(f"encode {args.mode}", input_size(stdin), enabled=not args.no_progress)
    read = written = 0
    try:
        while chunk := stdin.read(_CHUNK):
            read += len(chunk)
            out = recorder.write(chunk)
            stdout.write(out)
            written += len(out)
            progress.update(read, written)
        stdout.write(recorder.close())
        stdout.flush()
    finally:
        progress.done()
    return 0

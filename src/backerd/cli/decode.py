"""`backerd decode`: a raw Backer stream on stdin, the recorded user bytes on stdout.

Streams in chunks with bounded memory. Exit status 0 only when every user byte was
recovered; statistics go to stderr (human-readable, or JSON with --json). When the
first end-of-record sector was lost, the decoder deduces where the record ended from
the sectors around it; the report says so ("end_inferred"). Where the sectors left
allow more than one end, the output stops at the likeliest and the report names how
many more user bytes may have been lost after it ("end_possibly_lost": the exit status
stays 0 for those alone, as no byte known to be data is missing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from backerd.cli.progress import Progress, input_size
from backerd.format.params import AUTO, FORMAT_CHOICES

if TYPE_CHECKING:
    from backerd.errors import BackerError

CHUNK = 1 << 20
# Raw bytes kept from the start of the stream to explain a stream that did not decode.
DIAGNOSE_BYTES = 4 << 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", required=True, metavar="MODE",
                        help="recording mode: nls nhs pls phs nle nhe ple phe (or raw nlr ...)")
    parser.add_argument("--format", default=AUTO, dest="fmt", choices=FORMAT_CHOICES,
                        help="format release of the stream (default: detect)")
    parser.add_argument("--bkrenhanced", action="store_true",
                        help="3.101/3.3 EP: undo the bkrenhanced outer code")
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first byte that cannot be recovered")
    parser.add_argument("--json", action="store_true",
                        help="statistics on stderr as one JSON object")
    parser.add_argument("--key-file", type=Path, metavar="FILE",
                        help="decrypt the recording of an encrypted unit with this key")
    parser.add_argument("--cassette-uuid", metavar="UUID",
                        help="with --key-file: the UUID in the cassette's label")
    parser.add_argument("--file", type=int, default=0, metavar="N",
                        help="with --key-file: the recording's file number as st counts "
                             "it (0 = the first after the label)")


def run(args: argparse.Namespace) -> int:
    from backerd.errors import MediumError
    from backerd.format.player import EndOfRecord, Player, SectorLost, UnrecoverableData

    player = Player(args.mode, args.fmt, strict=args.strict, bkrenhanced=args.bkrenhanced)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    unsealing = None
    if args.key_file is not None:
        from backerd.cli.unseal import UnsealingOutput
        from backerd.errors import UsageError

        if args.cassette_uuid is None:
            raise UsageError("--key-file needs --cassette-uuid (the label's, as backerd status "
                             "shows it; cassette dump --key-file finds it by itself)")
        stdout = unsealing = UnsealingOutput(stdout, args.key_file, args.cassette_uuid,
                                             args.file)
    progress = Progress(f"decode {args.mode}", input_size(stdin))
    head = bytearray()
    lost: list[SectorLost] = []
    ends: list[EndOfRecord] = []
    read = written = 0
    ended = False
    error: BackerError | None = None
    try:
        while not ended:
            chunk = stdin.read(CHUNK)
            if not chunk:
                break
            read += len(chunk)
            if len(head) < DIAGNOSE_BYTES:
                head += chunk[: DIAGNOSE_BYTES - len(head)]
            out = player.feed(chunk)
            written += _write(stdout, out, lost, ends)
            ended = out.end_of_record
            progress.update(read, written)
        if not ended:
            out = player.finish()
            written += _write(stdout, out, lost, ends)
            ended = out.end_of_record
    except UnrecoverableData as exc:
        written += _write(stdout, exc.output, lost, ends)
        error = exc
    except MediumError as exc:
        error = exc
    finally:
        progress.done()
        stdout.flush()
    if unsealing is not None:
        error = error or unsealing.finish()
    if error is None and player.fmt != "raw":
        error = _stream_problem(player, ended, bytes(head), read, args)
    if error is None and lost:
        total = sum(e.length for e in lost)
        error = MediumError(f"{total} user bytes in {len(lost)} ranges could not be recovered"
                            f" (first at byte {lost[0].offset})")
    _report(player, args, written, lost, ends, error)
    if error is not None:
        raise error
    return 0


def _write(stdout, out, lost: list, ends: list) -> int:
    from backerd.format.player import EndOfRecord, SectorLost

    if out.data:
        stdout.write(out.data)
    lost.extend(e for e in out.events if isinstance(e, SectorLost))
    ends.extend(e for e in out.events if isinstance(e, EndOfRecord))
    return len(out.data)


def _stream_problem(player, ended: bool, head: bytes, read: int, args) -> BackerError | None:
    """A one-line explanation when the stream did not hold a whole recording."""
    from backerd.errors import FormatError
    from backerd.format.player import identify

    if ended:
        return None
    st = player.stats
    if read == 0:
        return FormatError("no input: the stream is empty")
    if st.sectors_decoded == 0:
        others = [(m, f) for m, f, _ in identify(head) if (m, f) != (args.mode, player.fmt)]
        if others:
            m, f = others[0]
            return FormatError(
                f"the stream is not in mode {args.mode}"
                + ("" if args.fmt == AUTO else f" format {args.fmt}")
                + f": it looks like mode {m} (format {f})")
        if st.fields == 0:
            return FormatError(f"no signal: no Backer field of mode {args.mode} in {read} bytes")
        return FormatError(f"no decodable sector in {st.fields} fields of mode {args.mode}")
    return FormatError(
        f"truncated stream: no end-of-record marker after {player.stats.sectors_decoded}"
        " sectors")


def _report(player, args, written: int, lost: list, ends: list,
            error: Exception | None) -> None:
    st = player.stats
    end_inferred = any(e.inferred for e in ends)
    possibly_lost = sum(e.possibly_lost for e in ends)
    if args.json:
        doc = {
            "mode": args.mode, "format": player.fmt, "user_bytes": written,
            "end_of_record": player.ended, "end_inferred": end_inferred,
            "end_possibly_lost": possibly_lost,
            "raw_consumed": player.raw_consumed,
            "lost": [{"sector": e.sector, "offset": e.offset, "length": e.length} for e in lost],
            "statistics": st.as_dict(),
            "error": None if error is None else str(error),
        }
        sys.stderr.write(json.dumps(doc) + "\n")
        return
    if player.fmt in (None, "raw"):
        return  # nothing was decoded: the error line says why
    lines = [f"Format           {player.fmt or 'unknown'} {args.mode}",
             f"User Bytes       {written}", st.summary()]
    if end_inferred:
        lines.insert(2, "End of Record    inferred (its first sector was lost)"
                     + (f"; up to {possibly_lost} more user bytes possibly lost"
                        if possibly_lost else ""))
    sys.stderr.write("\n".join(lines) + "\n")

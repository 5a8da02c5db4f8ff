"""``backerd restore NAME [--to DIR] [--as-of TIME] [--path PATTERN] [--dry-run] [--json]``.

Works out from the catalog the last full dump and the incrementals after it, says which
cassette to insert when the loaded one is not it, and extracts them in order with GNU
tar's incremental semantics (``backerd.jobs.restore_run``). ``--to`` defaults to the
current directory; ``--to /`` restores in place.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the job ([[job]] name = ...)")
    parser.add_argument("--to", type=Path, default=Path("."), metavar="DIR",
                        help="where to restore (default: the current directory)")
    parser.add_argument("--as-of", metavar="TIME",
                        help="the state as of this date or time (ISO 8601; default: now)")
    parser.add_argument("--path", action="append", default=[], metavar="PATTERN",
                        help="restore only members matching this shell pattern (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan only")
    parser.add_argument("--resume", type=int, default=0, metavar="STEP",
                        help="start at this step of the plan (after changing cassettes)")
    parser.add_argument("--config", type=Path, metavar="FILE")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from backerd.daemon.config import load_config
    from backerd.jobs.config import find_job
    from backerd.jobs.restore_run import parse_time, run_restore

    config = load_config(args.config)
    job = find_job(config.jobs, args.name)
    as_of = parse_time(args.as_of) if args.as_of else None
    out = run_restore(config, job, to=args.to.resolve(), as_of=as_of, patterns=args.path,
                      dry_run=args.dry_run, resume=args.resume)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{job.name}: {len(out['steps'])} tape file(s) on "
          f"{', '.join(out['cassettes'])}, in this order:")
    for step in out["steps"]:
        print(f"  {step['step']:>3}  {step['level']:<11} {step['started']}  "
              f"cassette {step['cassette']} file {step['file']} ({step['bytes']:,} bytes)")
    for note in out["notes"]:
        print(f"  note: {note}")
    if not args.dry_run:
        print(f"restored to {out['restored_to']}; every member read back as written")
    return 0

"""``backerd backup NAME [--config FILE] [--json] [--full]``: run one backup job.

Preflight, dry run (``skipped`` when nothing changed), an incremental (or full) GNU tar
archive at end of data, the catalog, and verify (``backerd.jobs.backup_run``). Exits 0
for written or skipped; otherwise prints one line with the reason and exits with the
error's status (8 preflight, 9 tar, 10 verify mismatch).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the job ([[job]] name = ...)")
    parser.add_argument("--config", type=Path, metavar="FILE")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--full", action="store_true",
                        help="write a full dump now, whatever full_every says")


def run(args: argparse.Namespace) -> int:
    from backerd.daemon.config import load_config
    from backerd.jobs.backup_run import run_backup
    from backerd.jobs.config import find_job

    config = load_config(args.config)
    outcome, error = run_backup(config, find_job(config.jobs, args.name), full=args.full)
    if args.json:
        print(json.dumps(outcome.as_json()))
    elif outcome.result == "skipped":
        print(f"{outcome.job}: skipped (nothing changed since the last run)")
    else:
        verified = {True: "verified", False: "VERIFY FAILED", None: "not verified"}
        more = outcome.cassettes[1:]
        onward = f" and on {', '.join(more)}" if more else ""
        print(f"{outcome.job}: {outcome.level} written to {outcome.cassette} file "
              f"{outcome.file}{onward}: {outcome.files} files, {outcome.bytes:,} bytes, "
              f"{verified[outcome.verified]}")
    if error is not None:
        raise error
    return 0

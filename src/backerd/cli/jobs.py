"""``backerd jobs [--json]``: every job's last result, next cassette, what would expire."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from backerd.daemon.config import load_config
    from backerd.jobs.report import jobs_report

    report = jobs_report(load_config(args.config))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if not report["jobs"]:
        print("no jobs configured (add [[job]] tables to the configuration)")
    for job in report["jobs"]:
        last = job["last"]
        if last is None:
            said = "never run"
        else:
            said = f"{last['result']} {last['level']} {last['started']}"
            if last["cassette"] is not None:
                said += f" on {last['cassette']} file {last['file']}"
            if last["verified"] is not None:
                said += ", verified" if last["verified"] else ", VERIFY FAILED"
            if last["reason"]:
                said += f" ({last['reason']})"
        print(f"{job['job']} (unit {job['unit']}: {' '.join(job['paths'])})")
        print(f"  last run:      {said}")
        print(f"  next run:      {job['next_level']} on {job['next_cassette']}")
        if job["next_bytes"] is not None:
            count = job["next_cassettes"]
            takes = "unknown" if count is None else f"{count} cassette{'s' * (count != 1)}"
            print(f"  takes:         {takes} (about {job['next_bytes']:,} bytes, as the "
                  "last run at this level)")
        expiring = ", ".join(f"#{r['id']} {r['level']} {r['started']} ({r['cassette']} file "
                             f"{r['file']})" for r in job["would_expire"]) or "nothing"
        print(f"  would expire:  {expiring}")
    print("reusable cassettes: " + (", ".join(report["reusable"]) or "none"))
    return 0

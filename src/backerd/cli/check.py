"""``backerd check --unit N [--need BYTES] [--label TEXT]``: preflight before a backup.

Asks the running daemon: is the right cassette loaded, is it writable, is there room,
is it inside its wear limit? Prints the answers on one screen; exits 1 when the backup
would fail. With ``--need`` it also says how many cassettes the backup takes in the
unit's mode: what this one holds before its early-warning point, then blank cassettes
of the same length (a multi-volume archive, ``tar -M``, docs/usage.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from backerd.errors import UsageError

_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_bytes(text: str) -> int:
    """``123``, ``10K``, ``2.5G`` (binary multiples) -> bytes."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1:] if t[-1:] in _SUFFIXES else ""
    number = t[: len(t) - len(unit)]
    try:
        value = float(number)
    except ValueError:
        raise UsageError(f"--need wants a size like 700M or 4G, got {text!r}") from None
    if value < 0:
        raise UsageError("--need must not be negative")
    return int(value * _SUFFIXES[unit])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unit", type=int, default=0, metavar="N")
    parser.add_argument("--need", type=parse_bytes, metavar="BYTES",
                        help="size of the backup (suffixes K, M, G, T)")
    parser.add_argument("--label", metavar="TEXT", help="the cassette that should be loaded")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--config", type=Path, metavar="FILE")


def run(args: argparse.Namespace) -> int:
    from backerd.daemon.config import load_config
    from backerd.daemon.control import ask

    reply = ask(load_config(args.config).control_socket,
                {"request": "check", "unit": args.unit, "need": args.need, "label": args.label})
    if args.json:
        print(json.dumps(reply, indent=2))
    else:
        for a in reply["answers"]:
            print(f"{'ok  ' if a['ok'] else 'FAIL'}  {a['question']:<24} {a['detail']}")
        volumes = reply.get("volumes")
        if volumes:
            print(f"{'':4}  {'cassettes needed':<24} {volumes['detail']}")
        print("backup can start" if reply["ok"] else "backup would fail")
    return 0 if reply["ok"] else 1

"""``backerd monitor``: a live view of every unit, refreshed like the original monitor.

On a terminal the view is redrawn in place each interval; otherwise one plain
``key=value`` line per unit is printed per poll (for logs and scripts).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interval", type=float, default=1.0, metavar="SECONDS")
    parser.add_argument("--count", type=int, default=0, metavar="N",
                        help="stop after N polls (default: until interrupted)")
    parser.add_argument("--config", type=Path, metavar="FILE")
    parser.add_argument("--socket", type=Path, metavar="PATH")


def run(args: argparse.Namespace) -> int:
    from backerd.daemon.config import load_config
    from backerd.daemon.control import query
    from backerd.observe.monitor import plain_line, unit_lines

    path = args.socket or load_config(args.config).control_socket
    tty = sys.stdout.isatty()
    previous: dict[Any, dict] = {}
    last = time.monotonic()
    polls = 0
    while True:
        reply = query(path)
        now = time.monotonic()
        seconds = now - last
        last = now
        lines: list[str] = []
        for unit in reply.get("units", []):
            prev = previous.get(unit.get("number"))
            if tty:
                lines += unit_lines(unit, prev, seconds)
            else:
                lines.append(plain_line(unit, prev, seconds))
            previous[unit.get("number")] = unit
        if tty:
            sys.stdout.write("\x1b[H\x1b[J" + time.strftime("backerd monitor  %H:%M:%S\n\n")
                             + "\n".join(lines) + "\n")
        else:
            sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        polls += 1
        if args.count and polls >= args.count:
            return 0
        time.sleep(max(args.interval, 0.1))

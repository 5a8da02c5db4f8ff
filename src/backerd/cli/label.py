"""``backerd label --unit N TEXT``: label the cassette in a unit of the running daemon.

The label is a short recording at BOT (text, UUID, standard, length, creation time,
encrypted flag), hidden from st numbering. A cassette holding data is refused unless
``--force``, and then only with the tape at BOT: labelling erases what was on it.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="label text (1-64 printable characters)")
    parser.add_argument("--unit", type=int, default=0, metavar="N")
    parser.add_argument("--force", action="store_true",
                        help="label a cassette holding data (erases it; tape must be at BOT)")
    parser.add_argument("--config", type=Path, metavar="FILE")


def run(args: argparse.Namespace) -> int:
    from backerd.catalog.label import check_text
    from backerd.daemon.config import load_config
    from backerd.daemon.control import ask

    check_text(args.text)
    reply = ask(load_config(args.config).control_socket,
                {"request": "label", "unit": args.unit, "text": args.text, "force": args.force},
                timeout=600)
    label = reply["label"]
    print(f"unit {args.unit}: labelled {label['text']!r} ({label['uuid']}, "
          f"{label['standard']}, {label['length_seconds'] // 60} min)")
    return 0

"""``backerd status``: show the units of a running daemon (``--json`` for scripts)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the daemon's JSON reply")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="the daemon's configuration (to find its status socket)")
    parser.add_argument("--socket", type=Path, metavar="PATH",
                        help="the status socket (default: control.sock in the runtime directory)")


def _position(unit: dict[str, Any]) -> str:
    pos = unit.get("position") or {}
    file, block = pos.get("file"), pos.get("block")
    drive = unit.get("drive") or {}
    bits = drive.get("gstat") or drive.get("status_bits") or []
    where = f"file {file}, block {block}" if file is not None else "position unknown"
    return where + (f" [{' '.join(map(str, bits))}]" if bits else "")


def _cassette_lines(unit: dict[str, Any]) -> list[str]:
    from backerd.observe.counters import format_counters

    if "labelled" not in unit:
        return []
    if unit.get("loaded") is False:
        return [f"  no cassette (insert one: backerd deck insert --unit {unit.get('number')} "
                "IMAGE)"]
    label = unit.get("cassette_label")
    wear = unit.get("wear") or {}
    name = (f"label {label['text']!r} ({label['uuid']})" if label
            else "no label (blank, or written by the original driver)")
    out = [f"  {name}, wear {wear.get('passes')}/{wear.get('limit')} passes"
           + (" (WORN)" if wear.get("worn") else "")]
    left = unit.get("capacity_left_bytes")
    if isinstance(left, int):
        out.append(f"  {left:,} bytes of user data left in mode {unit.get('mode')} before "
                   "the early-warning point")
        if unit.get("nearly_full"):
            out.append("  WARNING: the cassette is nearly full; a larger archive needs tar -M "
                       "with backerd next-volume (docs/usage.md)")
    counters = unit.get("counters") or {}
    for which in ("current", "last"):
        c = counters.get(which) or {}
        if c.get("byte_errors") is None and which == "last":
            continue
        out.append(f"  {which} recording:")
        out += ["    " + line for line in format_counters(c)]
    return out


def format_status(reply: dict[str, Any]) -> str:
    transport = reply.get("transport", "?")
    kind = {"cuse": "CUSE char devices", "fuse": "FUSE fallback"}.get(transport, transport)
    lines = [f"backerd {reply.get('backerd', '?')}, pid {reply.get('pid', '?')}: {kind}"
             f" ({reply.get('transport_reason', '')})"]
    for unit in reply.get("units", []):
        nodes = unit.get("nodes", {})
        opened = unit.get("open")
        lines += [
            f"unit {unit.get('number')} ({unit.get('name')}):",
            f"  rewinding      {nodes.get('rewinding')}",
            f"  non-rewinding  {nodes.get('non_rewinding')}",
            f"  deck {unit.get('deck')}, cassette {unit.get('cassette')}, mode {unit.get('mode')}"
            + (", realtime" if unit.get("realtime") else ""),
            f"  {_position(unit)}, " + (f"open on {opened}" if opened else "not open"),
        ]
        lines += _cassette_lines(unit)
        waiting = (unit.get("vcr") or {}).get("waiting")
        if waiting:
            lines.append(f"  OPERATOR, request {waiting.get('number')}: {waiting.get('text')}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from backerd.daemon.config import load_config
    from backerd.daemon.control import query

    path = args.socket or load_config(args.config).control_socket
    reply = query(path)
    if args.json:
        print(json.dumps(reply, indent=2, sort_keys=True))
    else:
        print(format_status(reply))
    return 0

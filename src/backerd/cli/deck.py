"""``backerd deck ready|cancel --unit N``: answer the daemon's request to the operator.

Under manual VCR control the daemon asks a person to press a button or wind the tape
(``backerd status`` shows the request). ``ready`` says it is done; ``cancel`` says it
cannot be done, which fails the tape operation waiting for it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from backerd.errors import ControlError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("ready", "cancel"),
                        help="ready: the request is done; cancel: it cannot be done")
    parser.add_argument("--unit", type=int, default=0, metavar="N", help="unit number (0)")
    parser.add_argument("--prompt", type=int, metavar="K",
                        help="acknowledge only request number K (as `backerd status` shows)")
    parser.add_argument("--reason", default="", help="why it cannot be done (cancel)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="the daemon's configuration (to find its control socket)")
    parser.add_argument("--socket", type=Path, metavar="PATH",
                        help="the control socket (default: control.sock in the runtime directory)")


def request_line(args: argparse.Namespace) -> str:
    words = ["deck", args.action, str(args.unit)]
    if args.action == "ready" and args.prompt is not None:
        words.append(str(args.prompt))
    if args.action == "cancel" and args.reason:
        words += " ".join(args.reason.split()).split(" ")
    return " ".join(words)


def run(args: argparse.Namespace) -> int:
    from backerd.daemon.config import load_config
    from backerd.daemon.control import query

    path = args.socket or load_config(args.config).control_socket
    reply = query(path, request_line(args))
    if not isinstance(reply, dict) or "error" in reply:
        message = reply.get("error") if isinstance(reply, dict) else "malformed reply"
        raise ControlError(str(message))
    print(reply.get("message", "ok"))
    return 0

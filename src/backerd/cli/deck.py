"""``backerd deck ready|cancel|insert|eject --unit N``: the VCR's cassette and operator.

Under manual VCR control the daemon asks a person to press a button or wind the tape
(``backerd status`` shows the request). ``ready`` says it is done; ``cancel`` says it
cannot be done, which fails the tape operation waiting for it.

``eject`` rewinds and ejects the unit's cassette; ``insert IMAGE`` loads another one
into the simulated VCR (``--new`` creates a missing image, by default with the standard
and length of the cassette ejected last). On a real deck the operator inserts the
cassette and runs ``insert NAME``: NAME picks its recording catalog. Both are refused
(device busy) while a node of the unit is open.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from backerd.errors import ControlError

# a manual insert waits for a person: the client waits as long as the daemon may
INSERT_TIMEOUT = 3600.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("ready", "cancel", "insert", "eject"),
                        help="ready: the request is done; cancel: it cannot be done; "
                             "insert: load a cassette; eject: rewind and eject it")
    parser.add_argument("image", nargs="?", type=Path,
                        help="insert: the cassette image (simulated VCR)")
    parser.add_argument("--unit", type=int, default=0, metavar="N", help="unit number (0)")
    parser.add_argument("--prompt", type=int, metavar="K",
                        help="acknowledge only request number K (as `backerd status` shows)")
    parser.add_argument("--reason", default="", help="why it cannot be done (cancel)")
    parser.add_argument("--new", action="store_true",
                        help="insert: create the image if it is missing")
    parser.add_argument("--standard", choices=("ntsc", "pal"),
                        help="insert --new: standard of a created image (default: as ejected)")
    parser.add_argument("--length", metavar="L",
                        help="insert --new: length of a created image (default: as ejected)")
    parser.add_argument("--timeout", type=float, default=INSERT_TIMEOUT, metavar="S",
                        help="insert/eject: seconds to wait for the daemon (and operator)")
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


def change_request(args: argparse.Namespace) -> dict:
    """The JSON request of ``insert``/``eject`` (paths made absolute: the daemon's
    working directory is not the caller's)."""
    if args.action == "eject":
        return {"request": "eject", "unit": args.unit}
    return {"request": "insert", "unit": args.unit,
            "image": None if args.image is None else str(args.image.absolute()),
            "new": args.new, "standard": args.standard, "length": args.length}


def run(args: argparse.Namespace) -> int:
    from backerd.daemon.config import load_config
    from backerd.daemon.control import ask, query

    path = args.socket or load_config(args.config).control_socket
    if args.action in ("insert", "eject"):
        reply = ask(path, change_request(args), timeout=args.timeout)
        print(reply.get("message", "ok"))
        return 0
    reply = query(path, request_line(args))
    if not isinstance(reply, dict) or "error" in reply:
        message = reply.get("error") if isinstance(reply, dict) else "malformed reply"
        raise ControlError(str(message))
    print(reply.get("message", "ok"))
    return 0

"""``backerd next-volume --unit N [--insert IMAGE] [--timeout S] [--force]``: tar's -F.

GNU tar in multi-volume mode (``-M``) closes the device at the end of a cassette and
runs its new-volume script (``-F``), with TAR_VOLUME (the volume it is about to start),
TAR_ARCHIVE and TAR_SUBCOMMAND in the environment; a zero exit means "the next volume
is ready", anything else stops tar. This command is that script:

1. it notes which cassette is in the unit, and ejects it (rewind, unload);
2. with ``--insert IMAGE`` it loads IMAGE (simulated VCR; created when missing while
   writing, like the cassette ejected; on a real deck IMAGE is the cassette's name and
   the operator is prompted to insert it and answers ``backerd deck ready``), else it
   waits until a cassette is inserted (``backerd deck insert``);
3. it judges the new cassette (``catalog.volumes.volume_refusal``): not the one just
   ejected and, while writing, not write-protected and holding no backups inside their
   retention unless ``--force``; a refusal is one line on stderr and exit status 1;
4. while writing it records the cassette as the next volume of the archive's volume
   set in the catalog, and exits 0 with the cassette at BOT.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from backerd.catalog.volumes import VolumeFacts, volume_refusal
from backerd.errors import BackerError

POLL = 0.5  # s between looks at the deck while waiting for a cassette
DEFAULT_TIMEOUT = 3600.0
# tar subcommands that write the archive; anything else reads it
WRITING = frozenset({"-c", "-r", "-u", "-A"})


class VolumeRefused(BackerError):
    """The cassette inserted must not be the next volume (tar then stops)."""

    exit_status = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unit", type=int, default=0, metavar="N", help="unit number (0)")
    parser.add_argument("--insert", type=Path, metavar="IMAGE",
                        help="load this cassette image (simulated VCR) instead of waiting")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                        help="seconds to wait for the next cassette (default 3600)")
    parser.add_argument("--force", action="store_true",
                        help="accept a cassette holding backups inside their retention")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="the daemon's configuration (to find its control socket)")
    parser.add_argument("--socket", type=Path, metavar="PATH",
                        help="the control socket (default: control.sock in the runtime directory)")


def tar_context(environ: dict[str, str] | os._Environ[str]) -> tuple[int | None, str, bool]:
    """(volume tar starts, archive, writing?) from tar's environment. Run by hand (no
    TAR_SUBCOMMAND), the checks for writing apply: the safe side."""
    text = environ.get("TAR_VOLUME", "")
    volume = int(text) if text.isdigit() else None
    subcommand = environ.get("TAR_SUBCOMMAND", "")
    return volume, environ.get("TAR_ARCHIVE", ""), subcommand in WRITING or not subcommand


def _facts(path: Path, unit: int, **extra: Any) -> tuple[VolumeFacts, dict[str, Any]]:
    from backerd.daemon.control import ask

    reply = ask(path, {"request": "volume", "unit": unit, **extra})
    return VolumeFacts.from_json(reply), reply


def _wait_for_cassette(path: Path, args: argparse.Namespace) -> None:
    print(f"backerd next-volume: insert the next cassette into unit {args.unit}, then "
          f"run: backerd deck insert --unit {args.unit} IMAGE (a real deck: the "
          "cassette's NAME)", file=sys.stderr)
    deadline = time.monotonic() + args.timeout
    while not _facts(path, args.unit)[0].loaded:
        if time.monotonic() > deadline:
            raise VolumeRefused(f"no cassette was inserted into unit {args.unit} within "
                                f"{args.timeout:g} s")
        time.sleep(POLL)


def run(args: argparse.Namespace) -> int:
    from backerd.daemon.config import load_config
    from backerd.daemon.control import ask

    path = args.socket or load_config(args.config).control_socket
    volume, archive, writing = tar_context(os.environ)
    before, _ = _facts(path, args.unit)
    if before.loaded:  # one unloaded by mt offline is taken out by the insert
        ask(path, {"request": "eject", "unit": args.unit}, timeout=args.timeout)
    if args.insert is not None:
        ask(path, {"request": "insert", "unit": args.unit, "new": writing, "prompt": True,
                   "image": str(args.insert.absolute())}, timeout=args.timeout)
    else:
        _wait_for_cassette(path, args)
    after, _ = _facts(path, args.unit)
    refusal = volume_refusal(before.identity, after, writing=writing, force=args.force)
    if refusal is not None:
        raise VolumeRefused(f"unit {args.unit}: {refusal}")
    noted = ""
    if writing and volume is not None and before.identity is not None:
        _, reply = _facts(path, args.unit, sequence={
            "archive": archive, "tar_volume": volume, "previous": before.identity,
            "previous_file": max(before.recordings - 1, 0)})
        sequence = reply.get("sequence")
        if isinstance(sequence, dict):
            noted = f", cassette {sequence['volume']} of the volume set {sequence['set']}"
    which = f"volume {volume}" if volume is not None else "the next volume"
    print(f"backerd next-volume: unit {args.unit}: {which} is {after.describe()}{noted}",
          file=sys.stderr)
    return 0

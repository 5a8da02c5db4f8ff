"""``backerd serve``: run the tape device daemon in the foreground until SIGTERM."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

from backerd.errors import BackerError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="TOML configuration (default: $BACKERD_CONFIG, then "
                             "/etc/backerd/backerd.toml if present, else one simulated unit)")
    parser.add_argument("--cassette", type=Path, metavar="IMAGE",
                        help="cassette image of unit 0 (created if missing; default: "
                             "backer0.cassette in the state directory)")
    parser.add_argument("--fuse-root", type=Path, metavar="DIR",
                        help="where the FUSE fallback mounts the nodes (default /run/backerd/dev)")
    parser.add_argument("--realtime", action="store_true",
                        help="pace the simulated VCR at real tape speed")
    parser.add_argument("--emulate", choices=("isa", "parport"),
                        help="record through an emulated Backer card (the real backend "
                             "against software hardware) instead of the plain simulated VCR")
    parser.add_argument("--transport", choices=("auto", "cuse", "fuse"),
                        help="how to serve the nodes (default: the configuration's, auto); "
                             "cuse refuses to start without /dev/cuse instead of mounting FUSE")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")


def first_backer_error(exc: BaseException) -> BackerError | None:
    """The BackerError inside a (possibly nested) exception group, if any."""
    if isinstance(exc, BackerError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = first_backer_error(inner)
            if found is not None:
                return found
    return None


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("backerd: %(message)s"))
    root = logging.getLogger("backerd")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def cassette_standard(path: Path) -> str | None:
    """The video standard of the cassette image at ``path``, None if there is none yet."""
    from backerd.vcr.sim import Cassette

    if not path.exists():
        return None
    with Cassette.open(path, readonly=True) as cassette:
        return cassette.standard


def run(args: argparse.Namespace) -> int:
    # before numpy is imported: OpenBLAS would start a thread per core that keeps the
    # capabilities the daemon drops once it serves (daemon.privileges); the codecs' arrays
    # are integers, which never use BLAS
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import trio

    from backerd.daemon.config import load_config, resolve_modes
    from backerd.daemon.service import run_until_signalled
    from backerd.daemon.trust import check_config

    setup_logging(args.verbose)
    config = load_config(args.config).with_overrides(
        cassette=args.cassette.absolute() if args.cassette else None,
        fuse_root=args.fuse_root.absolute() if args.fuse_root else None,
        realtime=args.realtime,
        deck=f"emulated-{args.emulate}" if args.emulate else None,
    )
    if args.transport:
        config = dataclasses.replace(config, transport=args.transport)
    # before anything is opened: nothing another user could change is trusted
    check_config(config.source, [unit.cassette for unit in config.units])
    # the mode follows the cassette unless configured (a PAL image needs a PAL mode)
    config = resolve_modes(config, cassette_standard)
    try:
        trio.run(run_until_signalled, config)
    except BaseExceptionGroup as group:
        found = first_backer_error(group)
        if found is None:
            raise
        raise found from None
    return 0

"""Command-line entry point.

Each subcommand lives in its own module ``backerd.cli.<name>`` exposing
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when
their command runs, so ``backerd decode`` never pays for trio or the daemon.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from backerd import __version__
from backerd.allocator import tune_allocator
from backerd.errors import BackerError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "encode": ("backerd.cli.encode", "encode user bytes (stdin) into a raw Backer stream (stdout)"),
    "decode": ("backerd.cli.decode", "decode a raw Backer stream (stdin) into user bytes (stdout)"),
    "serve": ("backerd.cli.serve", "run the tape device daemon in the foreground"),
    "status": ("backerd.cli.status", "show the state of a running daemon's units"),
    "deck": ("backerd.cli.deck", "insert or eject a cassette; answer the daemon's request to "
             "the operator"),
    "next-volume": ("backerd.cli.next_volume", "tar's new-volume script (-F): eject, insert "
                    "and check the next cassette"),
    "cassette": ("backerd.cli.cassette", "create and inspect simulated cassette images"),
    "catalog": ("backerd.cli.catalog", "what is on every cassette: ls, show, find, set, rebuild"),
    "plot": ("backerd.cli.plot", "draw signal health along the tape as a PNG"),
    "label": ("backerd.cli.label", "label the cassette in a unit (a recording at BOT)"),
    "check": ("backerd.cli.check", "preflight: right cassette, writable, room, wear"),
    "backup": ("backerd.cli.backup", "run a backup job: incremental tar, skip, verify"),
    "restore": ("backerd.cli.restore", "restore a backup job's files from its tape chain"),
    "jobs": ("backerd.cli.jobs", "backup jobs: last result, next cassette, retention"),
    "monitor": ("backerd.cli.monitor", "live view of the units: signal health, throughput"),
    "key": ("backerd.cli.key", "encryption keys: new, export (with a paper form), import"),
    "demo": ("backerd.cli.demo", "a self-contained run of the main job on a simulated VCR"),
    "install-system": ("backerd.cli.install_system",
                       "install the systemd units, udev rule and modules-load.d entry"),
}


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit status 2).

    argparse prints the whole usage block before the error; scripts and the journal then
    see several lines for one mistake. The usage is one ``--help`` away.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="backerd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"backerd {__version__}")
    parser.set_defaults(_missing=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            p.set_defaults(_missing=True)
            continue
        module.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args._missing:
        parser.error(f"command {args.command!r} is not available in this build")
    tune_allocator()
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except BackerError as exc:
        print(f"backerd {args.command}: {exc.message}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print(f"backerd {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141
    except OSError as exc:
        # the environment refused (disk full on stdout, a file vanished): one line, not
        # a traceback; the commands name their own paths where they know them
        where = f": {exc.filename}" if exc.filename else ""
        print(f"backerd {args.command}: {exc.strerror or exc}{where}", file=sys.stderr)
        _drop_stdout()
        return 1


def _drop_stdout() -> None:
    """Unflushed output that cannot be written must not fail again at exit."""
    try:
        sys.stdout.flush()
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)

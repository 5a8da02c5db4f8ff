"""``backerd install-system``: install (or remove) the systemd units, udev rule and
modules-load.d entry, pointed at the backerd being run; never over an edited file."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from backerd.errors import InstallError, UsageError

SYSTEM_ROOT = Path("/")  # where the units are checked by systemd and reloaded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=Path("/"), metavar="DIR",
                        help="install under DIR instead of / (an image, a test)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be done, change nothing")
    parser.add_argument("--uninstall", action="store_true",
                        help="remove what install-system installed and nobody edited since")
    parser.add_argument("--transport", choices=("auto", "cuse", "fuse"), default="auto",
                        help="cuse adds the namespace hardening drop-in (serving CUSE only); "
                             "auto: cuse where /dev/cuse or the cuse module exists")


def running_backerd() -> tuple[str, str]:
    """The backerd command being run: (absolute path as called, its resolved target)."""
    candidates = [sys.argv[0], os.path.join(os.path.dirname(sys.executable), "backerd"),
                  shutil.which("backerd") or ""]
    for candidate in candidates:
        if (candidate and os.path.basename(candidate) == "backerd"
                and os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            return os.path.abspath(candidate), os.path.realpath(candidate)
    raise UsageError("cannot tell where the backerd command is (run install-system through "
                     "the installed backerd command, not python -m backerd)")


def warn(message: str) -> None:
    print(f"backerd install-system: warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from backerd.install import apply, plan

    root: Path = args.root.absolute()
    if not root.is_dir():
        raise UsageError(f"--root {root}: not a directory")
    manifest = apply.read_manifest(root)
    if args.uninstall:
        backerd = ""
        on_disk = apply.disk_hashes(root, map(plan.PurePosixPath, manifest))
        chosen = plan.plan_uninstall(on_disk, manifest)
    else:
        backerd, target = running_backerd()
        problem = plan.exec_path_problem(backerd)
        if problem:
            raise UsageError(problem)
        hidden = plan.hidden_by_protect_home(backerd, target)
        if hidden:
            warn(f"ExecStart runs {hidden}, under a home directory: a home that is not "
                 "mounted (or ProtectHome=) stops the service; install backerd system-wide "
                 "(e.g. a venv in /opt/backerd) and run its install-system")
        transport = args.transport
        if transport == "auto":
            transport = "cuse" if apply.cuse_available() else "fuse"
        wanted = plan.wanted_files(transport, apply.shipped_sources(), backerd)
        targets = set(wanted) | {plan.PurePosixPath(t) for t in manifest}
        chosen = plan.plan_install(wanted, apply.disk_hashes(root, targets), manifest)
        print(f"transport {transport}: "
              + ("with the CUSE namespace hardening drop-in" if transport == "cuse"
                 else "base unit only (the FUSE mount must stay visible on the host)"))
    for action in chosen.actions:
        print(("would " if args.dry_run else "") + action.describe())
    if not chosen.actions:
        print(f"nothing installed under {root} (no manifest)")
    for message in chosen.warnings:
        warn(message)
    if args.dry_run:
        return 0
    apply.carry_out(root, chosen, backerd)
    if root == SYSTEM_ROOT and not args.uninstall:
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            warn("systemd-analyze not found: the units were not verified")
        else:
            complaints = apply.verify(apply.unit_files(root, chosen), analyze)
            if complaints:
                raise InstallError("systemd-analyze verify: " + "; ".join(complaints))
            print("systemd-analyze verify: no complaints")
    if root == SYSTEM_ROOT:
        _reload()
    if not args.uninstall:
        print("next: systemctl enable --now backerd; for a nightly job NAME: "
              "systemctl enable --now backerd-backup@NAME.timer")
    return 0


def _reload() -> None:
    """Make a running systemd and udev see the new files (nothing is enabled or started)."""
    if not Path("/run/systemd/system").is_dir():
        return  # not booted with systemd (a container, a chroot)
    for command in (["systemctl", "daemon-reload"], ["udevadm", "control", "--reload"]):
        if shutil.which(command[0]):
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                warn(f"{' '.join(command)}: {result.stderr.strip() or result.returncode}")

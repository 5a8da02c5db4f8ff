"""Helpers of the system tests: the daemon subprocess, tool runners, output parsers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backerd.daemon.control import NotRunning, query
from backerd.daemon.mount import mounts_at

DEVICE_KIND = os.environ.get("BACKERD_TEST_DEVICE", "fuse")
MODE = os.environ.get("BACKERD_TEST_MODE", "nhs")
# hang guards only (never assertions about speed); TCG guests are slow, hence generous
START_TIMEOUT = float(os.environ.get("BACKERD_TEST_START_TIMEOUT", "120"))
STOP_TIMEOUT = 120.0
TOOL_TIMEOUT = 600.0



def _missing_tools() -> list[str]:
    missing = []
    mt = shutil.which("mt")
    if mt is None:
        missing.append("mt (mt-st)")
    else:
        out = subprocess.run([mt, "--version"], capture_output=True, text=True)
        if "mt-st" not in out.stdout + out.stderr:
            missing.append("mt-st (the mt found is another one)")
    tar = shutil.which("tar")
    if tar is None or "GNU tar" not in subprocess.run(
        [tar, "--version"], capture_output=True, text=True
    ).stdout:
        missing.append("GNU tar")
    for tool in ("cpio", "dd", "cmp"):
        if shutil.which(tool) is None:
            missing.append(tool)
    if DEVICE_KIND == "fuse":
        if not os.path.exists("/dev/fuse"):
            missing.append("/dev/fuse")
        if os.geteuid() != 0:
            missing.append("root (to mount FUSE without fusermount)")
    elif DEVICE_KIND == "cuse":
        if not os.path.exists("/dev/cuse"):
            missing.append("/dev/cuse (run inside the VM: tests/vm)")
    else:
        missing.append(f"a known BACKERD_TEST_DEVICE (got {DEVICE_KIND!r}; use fuse or cuse)")
    return missing


MISSING = _missing_tools()


class ToolError(AssertionError):
    pass


@dataclass
class Daemon:
    """A ``backerd serve`` subprocess on its own cassette, with helpers to drive tools."""

    tmp: Path
    cassette: Path
    fuse_root: Path
    config_file: Path
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    last_status: dict[str, Any] = field(default_factory=dict)
    cassette_option: bool = True  # pass --cassette (one-unit configurations only)

    @property
    def control_socket(self) -> Path:
        return Path(self.env["BACKERD_RUNTIME_DIR"]) / "control.sock"

    def node(self, name: str) -> str:
        return f"/dev/{name}" if DEVICE_KIND == "cuse" else str(self.fuse_root / name)

    @property
    def rew(self) -> str:
        """The rewinding node (rewinds on close)."""
        return self.node("backer0")

    @property
    def nrew(self) -> str:
        """The non-rewinding node."""
        return self.node("nbacker0")

    def backerd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "backerd", *args]

    def start(self) -> None:
        assert self.proc is None, "daemon already running"
        self.starts += 1
        with open(self.log, "ab") as log:
            log.write(f"---- start #{self.starts}\n".encode())
            log.flush()
            cassette = ["--cassette", str(self.cassette)] if self.cassette_option else []
            self.proc = subprocess.Popen(
                self.backerd("serve", "--config", str(self.config_file), *cassette,
                             "--fuse-root", str(self.fuse_root)),
                env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise AssertionError(f"backerd serve exited with {rc} at start:\n{self.log_tail()}")
            with contextlib.suppress(NotRunning):
                status = query(self.control_socket, timeout=5)
                numbers = [u["number"] for u in status.get("units", [])] or [0]
                if all(os.path.exists(self.node(f"{kind}{n}"))
                       for n in numbers for kind in ("backer", "nbacker")):
                    self.last_status = status
                    return
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"backerd serve not ready after {START_TIMEOUT} s:\n"
                                     f"{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the daemon and wait for it; returns (and records) its exit status."""
        rc = self.signal_and_wait(sig)
        self.unmount()
        return rc

    def signal_and_wait(self, sig: int) -> int:
        """Signal the daemon and wait for it to exit, leaving whatever it left mounted."""
        assert self.proc is not None, "daemon not running"
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"backerd did not stop on {sig!r}:\n{self.log_tail()}") from None
        self.proc = None
        self.exit_codes.append(rc)
        return rc

    def mounts(self) -> list[str]:
        """The filesystems mounted on the FUSE root, bottom first (stale ones included)."""
        with open("/proc/self/mountinfo", "rb") as table:
            return mounts_at(self.fuse_root, table.read())

    def mounted(self) -> bool:
        """Whether the FUSE root is still in the mount table (stale or not)."""
        return bool(self.mounts())

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        self.unmount()

    def unmount(self) -> None:
        """Detach every layer left on the FUSE root, so no dead mount outlives the test."""
        for _ in range(8):
            if DEVICE_KIND != "fuse" or not self.mounted():
                return
            subprocess.run(["umount", "-l", str(self.fuse_root)], check=False)

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def run(self, *cmd: str | Path, ok: bool = True, input: bytes | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run a tool; by default fail the test (with the daemon's log) unless it exits 0."""
        argv = [str(c) for c in cmd]
        result = subprocess.run(argv, input=input, capture_output=True, cwd=cwd,
                                timeout=TOOL_TIMEOUT, env=self.env)
        if ok and result.returncode != 0:
            raise ToolError(
                f"{' '.join(argv)} exited {result.returncode}\n"
                f"stdout: {result.stdout[-2000:].decode(errors='replace')}\n"
                f"stderr: {result.stderr[-2000:].decode(errors='replace')}\n"
                f"daemon log:\n{self.log_tail()}"
            )
        return result

    def mt(self, dev: str, *op: str) -> str:
        return self.run("mt", "-f", dev, *op).stdout.decode()

    def status(self) -> dict[str, Any]:
        import json

        out = self.run(*self.backerd("status", "--json", "--socket", str(self.control_socket)))
        return json.loads(out.stdout)


def parse_mt_status(text: str) -> dict[str, Any]:
    """File/block numbers and status bit names from mt-st's ``status`` output."""
    import re

    m = re.search(r"File number=(-?\d+), block number=(-?\d+)", text)
    assert m, f"no file/block numbers in mt status output:\n{text}"
    bits = text.split("General status bits on", 1)[1].split("\n", 1)[1].split()
    return {"file": int(m.group(1)), "block": int(m.group(2)), "bits": set(bits)}


def same_tree(a: Path, b: Path) -> list[str]:
    """Differences between two trees (names, kinds, link targets, bytes); [] if equal."""
    diffs = []
    names_a = sorted(p.relative_to(a) for p in a.rglob("*"))
    names_b = sorted(p.relative_to(b) for p in b.rglob("*"))
    if names_a != names_b:
        diffs.append(f"names differ: {set(names_a) ^ set(names_b)}")
    for rel in names_a:
        pa, pb = a / rel, b / rel
        if not (pb.exists() or pb.is_symlink()):
            continue
        if pa.is_symlink() or pb.is_symlink():
            if not (pa.is_symlink() and pb.is_symlink()) or os.readlink(pa) != os.readlink(pb):
                diffs.append(f"{rel}: symlink differs")
        elif pa.is_file():
            if not pb.is_file() or pa.read_bytes() != pb.read_bytes():
                diffs.append(f"{rel}: contents differ")
        elif pa.is_dir() != pb.is_dir():
            diffs.append(f"{rel}: kind differs")
    return diffs


def new_daemon(home: Path, units: str, cassette_option: bool = True) -> Daemon:
    """A daemon (not started) with its state, runtime dir and config under ``home``."""
    state, run = home / "state", home / "run"
    state.mkdir(exist_ok=True)
    config_file = home / "backerd.toml"
    config_file.write_text(f'transport = "{DEVICE_KIND}"\n{units}')
    env = dict(os.environ, BACKERD_STATE_DIR=str(state), BACKERD_RUNTIME_DIR=str(run))
    env.pop("NOTIFY_SOCKET", None)
    return Daemon(tmp=home, cassette=home / "tape.cassette", fuse_root=home / "dev",
                  config_file=config_file, env=env, log=home / "backerd.log",
                  cassette_option=cassette_option)


def stop_checked(d: Daemon) -> None:
    """Stop ``d`` with SIGTERM, insist on a clean exit, and unmount its nodes."""
    if d.proc is not None:
        rc = d.stop()
        assert rc == 0, f"backerd exited {rc} on SIGTERM:\n{d.log_tail()}"
    d.unmount()


def mark_system_tests(here: Path, items: list[Any]) -> None:
    """Mark the tests under ``here`` as system tests, skipped with the reason where a tool
    or the kernel interface they need is missing (the conftests' collection hook)."""
    import pytest

    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.system)
            if MISSING:
                item.add_marker(pytest.mark.skip(reason="needs " + ", ".join(MISSING)))


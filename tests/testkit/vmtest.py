"""What the QEMU tests (tests/vm) share: what the host must have to boot a guest, the
directory shared with it, and stopping QEMU by its pidfile so it never outlives a test."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "vm"
RUN_VM = HERE / "run-vm.sh"


def vm_missing(tools: Iterable[str] = ()) -> list[str]:
    """What the host lacks to boot the guest and run ``tools`` in it (empty: nothing)."""
    missing = []
    if shutil.which("qemu-system-x86_64") is None:
        missing.append("qemu-system-x86_64 (apt: qemu-system-x86)")
    if not glob.glob("/boot/vmlinuz-*-amd64"):
        missing.append("a Debian kernel in /boot (apt: linux-image-amd64)")
    if not Path("/bin/busybox").exists():
        missing.append("/bin/busybox (apt: busybox-static)")
    missing += [tool for tool in tools if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    return missing


@contextmanager
def shared_directory(prefix: str) -> Iterator[Path]:
    """The directory shared with the guest: outside pytest's basetemp, which another
    pytest run may prune while the guest still writes to it, and a short path for the
    kernel command line."""
    out = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield out
    finally:
        shutil.rmtree(out, ignore_errors=True)


def kill_qemu(out: Path) -> bool:
    """SIGKILL the QEMU serving ``out`` (by its pidfile, checked against its command line);
    False when it is not running."""
    try:
        pid = int((out / "qemu.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    if b"qemu-system" in cmdline and str(out).encode() in cmdline:
        os.kill(pid, signal.SIGKILL)
        return True
    return False


def stop_vm(proc: subprocess.Popen[bytes], out: Path) -> None:
    """Make sure neither run-vm.sh nor its QEMU outlives the test (timeout, Ctrl-C)."""
    if proc.poll() is None:
        proc.terminate()  # run-vm.sh stops qemu on SIGTERM
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    kill_qemu(out)

"""The system suite (tests/system) inside a QEMU guest against real CUSE char devices.

The host has no CUSE (CONFIG_CUSE unset), so the guest boots Debian's kernel under TCG
with the host's / shared read-only over 9p (tests/vm/run-vm.sh), loads cuse, and runs
this repository's tests/system with the host venv's Python and BACKERD_TEST_DEVICE=cuse:
the daemon then serves /dev/backer0 and /dev/nbacker0 and real mt-st/tar/cpio/dd use
them. Results come back as junit XML through a shared directory.

The transport's own tests (tests/daemon/test_fuse_transport.py) run their CUSE cases in
the same boot.

Skipped (with the reason) only when qemu, a kernel image or busybox is missing, or when
the guest does not boot. Env: BACKERD_VM_TESTS (a pytest -k expression for the system
tests in the guest; "" runs them all), BACKERD_VM_MODE (Backer mode, default nhr),
VM_TIMEOUT, VM_MEM.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from backerd.format.params import mode
from testkit.vmtest import RUN_VM, shared_directory, stop_vm, vm_missing

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# pytest -k expression selecting the system tests run in the guest; empty = the whole
# suite. Measured under TCG: the whole suite in 9.4 min with the host half busy, of which
# tar -b 1 (3000 tiny records, each a Python round trip at ~50x slowdown) took 2.3 min.
GUEST_TESTS = os.environ.get("BACKERD_VM_TESTS", "")
# Raw mode by default: the guest checks the CUSE device path, and TCG makes the numpy
# codec ~50x slower; the codec itself runs through the same suite on the host (FUSE).
GUEST_MODE = os.environ.get("BACKERD_VM_MODE", "nhr")
# Tests of the sector formats' decoding (marked "sectors") have nothing to check in a raw
# mode, and the FUSE run on the host covers them: deselected here, not skipped. Workflows
# built on the node's plain operations (marked "workflow": backup jobs, encryption) use
# nothing of the transport the rest of the suite does not, and take minutes each under
# TCG: the host's FUSE run covers them, and the stage stays within CI's time.
GUEST_MARKS = ["-m", "not sectors and not workflow" if mode(GUEST_MODE).is_raw
               else "not workflow"]
GUEST_RUNS = ("system", "transport")
VM_TIMEOUT = int(os.environ.get("VM_TIMEOUT", "1800"))  # a hang guard: TCG is slow

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def _guest_script(out: Path) -> str:
    """What the guest runs: the system suite against CUSE, junit and logs into ``out``."""
    env = {
        "BACKERD_TEST_DEVICE": "cuse",
        "BACKERD_TEST_MODE": GUEST_MODE,
        "BACKERD_TEST_START_TIMEOUT": "300",
        "PYTHONUNBUFFERED": "1",
        "HOME": "/root",
    }
    q = shlex.quote
    common = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-rs",
              "--durations=12"]
    runs = [  # (name, arguments): the system suite, then the transport's own CUSE cases
        ("system", ["--basetemp=/dev/shm/backerd-system", *GUEST_MARKS,
                    *(["-k", GUEST_TESTS] if GUEST_TESTS else []), "tests/system"]),
        ("transport", ["--basetemp=/dev/shm/backerd-transport", "-k", "cuse",
                       "tests/daemon/test_fuse_transport.py"]),
    ]
    lines = [
        "#!/bin/bash",
        f"echo booted > {q(str(out))}/booted",
        "echo \"guest: $(uname -r), up $(cut -d' ' -f1 /proc/uptime)s\"",
        "[ -c /dev/cuse ] || modprobe cuse",
        "ls -l /dev/cuse",
        *(f"export {k}={q(v)}" for k, v in env.items()),
        f"cd {q(str(ROOT))}",
        "rc=0",
    ]
    for name, args in runs:
        log = q(f"{out}/pytest-{name}.log")
        lines += [
            shlex.join([*common, f"--junitxml={out}/junit-{name}.xml", *args])
            + f" > {log} 2>&1 || rc=1",
            f"tail -n 25 {log}",
        ]
    lines += [
        "echo \"guest: pytest exit $rc, up $(cut -d' ' -f1 /proc/uptime)s\"",
        "exit $rc",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def vm_out() -> Iterator[Path]:
    with shared_directory("backerd-vm-") as out:
        yield out


def test_system_suite_on_real_cuse_in_a_vm(vm_out: Path) -> None:
    missing = vm_missing(("cpio", "modprobe", "mt", "base64", "timeout"))
    if missing:
        pytest.skip("CUSE VM stage needs " + ", ".join(missing))
    out = vm_out
    script = out / "guest.sh"
    script.write_text(_guest_script(out))
    script.chmod(0o755)
    env = dict(os.environ, VM_TIMEOUT=str(VM_TIMEOUT), VM_MEM=os.environ.get("VM_MEM", "2048"))
    console_file = out / "console.log"
    with open(console_file, "w") as console_out:
        proc = subprocess.Popen(
            [str(RUN_VM), str(out), f"/bin/bash {script}"],
            stdout=console_out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        try:
            proc.wait(VM_TIMEOUT + 120)
        finally:
            stop_vm(proc, out)
    console = console_file.read_text(errors="replace")[-6000:]
    print(console)
    if proc.returncode == 98:
        pytest.skip(f"could not build the guest initramfs:\n{console}")
    if not (out / "booted").exists():
        pytest.skip(f"the guest did not boot (run-vm.sh exit {proc.returncode}):\n{console}")
    for name in GUEST_RUNS:
        junit = out / f"junit-{name}.xml"
        log = (out / f"pytest-{name}.log").read_text(errors="replace") if (
            out / f"pytest-{name}.log").exists() else "(no log)"
        assert junit.exists(), f"guest pytest ({name}) left no junit:\n{log[-4000:]}\n{console}"
        suite = ET.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        assert suite is not None
        counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
        print(f"guest {name} tests: {counts}")
        assert counts["tests"] > 0, log
        assert counts["failures"] == 0 and counts["errors"] == 0, log[-8000:]
        # a skip inside the guest means a test did not really run against CUSE
        assert counts["skipped"] == 0, log[-8000:]
    assert proc.returncode == 0, console

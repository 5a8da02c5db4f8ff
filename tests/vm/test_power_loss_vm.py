"""Power loss: QEMU killed while the daemon in the guest writes through real CUSE.

The guest (tests/vm/run-vm.sh) serves /dev/nbacker0 with the cassette image on the
directory it shares with the host, writes one archive with GNU tar and closes it, then
starts a second one; the host SIGKILLs QEMU at a random moment of that write, so the
guest's daemon, kernel and page cache vanish at once, as in a power cut. The image left
behind is then served by a daemon on the host and must recover like the kill -9 case
(testkit.faults.check_after_crash): the closed file byte-exact, the interrupted one
absent or a prefix of what tar sent, the next append working.

Marked vm and slow (a TCG boot takes minutes); skipped when QEMU, a kernel or busybox
is missing or the guest does not boot. Env: BACKERD_VM_MODE (default nhr, as the VM
stage), BACKERD_POWER_SEED (the kill moment's seed).
"""

from __future__ import annotations

import os
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.faults import TAR_OPTIONS, check_after_crash, make_tree, reference_archive
from testkit.systemtest import MISSING, new_daemon, stop_checked
from testkit.vmtest import RUN_VM, kill_qemu, shared_directory, vm_missing

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODE = os.environ.get("BACKERD_VM_MODE", "nhr")
SEED = int(os.environ.get("BACKERD_POWER_SEED", "1"))
BOOT_TIMEOUT = 900.0  # a hang guard: boot, imports and the first archive under TCG
KILL_WINDOW = 20.0  # seconds after the second tar starts within which QEMU dies

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def _guest_script(out: Path) -> str:
    q = shlex.quote
    py = q(sys.executable)
    tar = shlex.join(["tar", *TAR_OPTIONS])
    idle = (f"{py} -c 'import time; from pathlib import Path; "
            "from backerd.daemon.control import query\n"
            "while query(Path(\"/run/backerd-test/control.sock\"))[\"units\"][0][\"open\"]: "
            "time.sleep(0.1)'")
    return "\n".join([
        "#!/bin/bash",
        f"echo booted > {q(str(out))}/booted",
        "[ -c /dev/cuse ] || modprobe cuse",
        f"cd {q(str(ROOT))}",
        "export BACKERD_RUNTIME_DIR=/run/backerd-test BACKERD_STATE_DIR=/var/lib/backerd-test",
        "export PYTHONUNBUFFERED=1 HOME=/root",
        # the catalog (SQLite in WAL mode) stays off the 9p share: the image is the point
        f"printf 'transport = \"cuse\"\\ncatalog = \"\"\\n[[unit]]\\nmode = \"{MODE}\"\\n' "
        "> /root/backerd-test.toml",  # a directory only root can write: serve checks
        f"{py} -m backerd serve --config /root/backerd-test.toml --cassette "
        f"{q(str(out / 'tape.cassette'))} > {q(str(out))}/guest-backerd.log 2>&1 &",
        "server=$!",  # a daemon that dies at start ends the run at once, not at the timeout
        "for i in $(seq 1200); do [ -e /dev/nbacker0 ] && break; "
        "kill -0 $server 2>/dev/null || exit 4; sleep 0.5; done",
        f"{tar} -cf /dev/nbacker0 -C {q(str(out))} first || exit 3",
        idle,
        f"echo > {q(str(out))}/writing",
        f"{tar} -cf /dev/nbacker0 -C {q(str(out))} second && {idle} "
        f"&& echo > {q(str(out))}/second-done",
        "sleep 3600",
    ]) + "\n"


@pytest.fixture
def vm_out() -> Iterator[Path]:
    with shared_directory("backerd-pl-") as out:
        yield out


def test_power_loss_during_a_write_recovers_like_kill_9(vm_out: Path) -> None:
    missing = [*MISSING, *vm_missing()]
    if missing:
        pytest.skip("the power-loss VM test needs " + ", ".join(missing))
    out = vm_out
    (out / "host").mkdir()
    host = new_daemon(out / "host", f'[[unit]]\nmode = "{MODE}"\n')
    host.cassette = out / "tape.cassette"
    first = reference_archive(host, make_tree(out / "first", SEED, 150_000), out / "first.tar")
    second = reference_archive(host, make_tree(out / "second", SEED + 1, 3_000_000),
                               out / "second.tar")
    make_tree(out / "third", SEED + 2, 100_000)
    script = out / "guest.sh"
    script.write_text(_guest_script(out))
    script.chmod(0o755)
    env = dict(os.environ, VM_TIMEOUT=str(int(BOOT_TIMEOUT + 600)),
               VM_MEM=os.environ.get("VM_MEM", "2048"))
    console_file = out / "console.log"
    closed = False
    with open(console_file, "w") as console_out:
        proc = subprocess.Popen([str(RUN_VM), str(out), f"/bin/bash {script}"],
                                stdout=console_out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + BOOT_TIMEOUT
            while not (out / "writing").exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if (out / "writing").exists():
                time.sleep(random.Random(SEED).uniform(0, KILL_WINDOW))
                closed = (out / "second-done").exists()
                assert kill_qemu(out), "QEMU was not running at the kill"
            proc.wait(120)
        finally:
            kill_qemu(out)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    console = console_file.read_text(errors="replace")[-4000:]
    if not (out / "booted").exists():
        pytest.skip(f"the guest did not boot (run-vm.sh exit {proc.returncode}):\n{console}")
    guest_log = (out / "guest-backerd.log").read_text(errors="replace")[-3000:] if (
        out / "guest-backerd.log").exists() else "(no guest daemon log)"
    assert (out / "writing").exists(), f"the guest never began the second archive:\n" \
                                       f"{console}\n{guest_log}"
    print(f"power cut {'after' if closed else 'during'} the second archive (seed {SEED})")
    host.start()
    try:
        # the guest kept no catalog: the host's own knows only what it sees from here on
        survived = check_after_crash(host, out, first, second, "third", closed=closed,
                                     separate=False, catalog_saw_writes=False)
    finally:
        stop_checked(host)
    print(f"the interrupted archive kept {len(survived)} of {len(second)} bytes")

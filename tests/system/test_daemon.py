"""The daemon as a whole: status, clean stop mid-recording, cassettes shared with the CLI."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testkit.systemtest import DEVICE_KIND, MODE, STOP_TIMEOUT, Daemon, parse_mt_status, same_tree


def test_status_json_lists_nodes_cassette_and_position(daemon: Daemon, tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.write_bytes(bytes(3 * 512))
    daemon.run("dd", f"if={data}", f"of={daemon.nrew}", "bs=512")
    status = daemon.status()
    assert status["transport"] == DEVICE_KIND
    [unit] = status["units"]
    assert unit["nodes"] == {"rewinding": daemon.rew, "non_rewinding": daemon.nrew}
    assert unit["transport"] == DEVICE_KIND
    assert unit["cassette"] == str(daemon.cassette)
    assert unit["mode"] == MODE
    assert unit["position"] == {"file": 1, "block": 0}
    text = daemon.run(*daemon.backerd("status", "--socket", str(daemon.control_socket)))
    assert daemon.nrew in text.stdout.decode()


def test_log_says_which_transport(daemon: Daemon) -> None:
    log = daemon.log.read_text()
    word = "CUSE" if DEVICE_KIND == "cuse" else "FUSE"
    assert f"serving {'CUSE char devices' if word == 'CUSE' else 'the FUSE fallback'}" in log
    assert daemon.nrew in log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_stop_signal_mid_recording_closes_it(daemon: Daemon, tmp_path: Path,
                                             sig: signal.Signals) -> None:
    """SIGTERM, or the SIGHUP of a closed terminal, while a writer holds the node open:
    a log line, the recording gets its EOR, the nodes are gone, exit 0."""
    blocks = [random.Random(i).randbytes(10240) for i in range(4)]
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import os, sys
            fd = os.open({daemon.nrew!r}, os.O_WRONLY)
            for i in range(4):
                os.write(fd, __import__("random").Random(i).randbytes(10240))
            print("written", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as writer:
        try:
            assert writer.stdout is not None and writer.stdout.readline() == "written\n"
            log_before = daemon.log.read_text()
            assert daemon.signal_and_wait(sig) == 0
        finally:
            writer.kill()
    stopped_log = daemon.log.read_text()[len(log_before):]
    assert f"{sig.name} received: stopping" in stopped_log
    if DEVICE_KIND == "fuse":
        assert not daemon.mounted(), "the daemon left its FUSE mount behind"
    else:
        assert not os.path.exists(daemon.nrew)
    daemon.start()
    back = tmp_path / "back"
    result = daemon.run("dd", f"if={daemon.nrew}", f"of={back}", "bs=10240")
    assert b"4+0 records in" in result.stderr
    assert back.read_bytes() == b"".join(blocks)
    # dd read up to the filemark the shutdown wrote, and past it
    assert parse_mt_status(daemon.mt(daemon.nrew, "status"))["file"] == 1


def test_cassette_written_through_device_decodes_offline(daemon: Daemon, tree: Path) -> None:
    archive = daemon.tmp / "a.tar"
    daemon.run("tar", "-cf", archive, "-C", tree.parent, tree.name)
    daemon.run("dd", f"if={archive}", f"of={daemon.nrew}", "bs=10240")
    assert daemon.stop() == 0
    raw = daemon.run(*daemon.backerd("cassette", "dump", str(daemon.cassette), "--file", "0"))
    decoded = daemon.run(*daemon.backerd("decode", "--mode", MODE), input=raw.stdout)
    assert decoded.stdout == archive.read_bytes()
    daemon.start()


def test_offline_encoded_recording_reads_through_device(daemon: Daemon, tree: Path) -> None:
    archive = daemon.tmp / "a.tar"
    daemon.run("tar", "-cf", archive, "-C", tree.parent, tree.name)
    assert daemon.stop() == 0
    raw = daemon.run(*daemon.backerd("encode", "--mode", MODE), input=archive.read_bytes())
    daemon.run(*daemon.backerd("cassette", "record", str(daemon.cassette), "--mode", MODE),
               input=raw.stdout)
    daemon.start()
    out = daemon.tmp / "out"
    out.mkdir()
    daemon.run("tar", "-xf", daemon.rew, "-C", out)  # a foreign recording: no block marks
    assert same_tree(tree, out / "src") == []


def test_systemd_notify_ready_watchdog_and_stopping(daemon: Daemon) -> None:
    """Type=notify: READY=1 with a STATUS once the nodes exist, WATCHDOG=1 pings as
    WATCHDOG_USEC asks while the unit is idle or working, STOPPING=1 on SIGTERM."""
    assert daemon.stop() == 0
    sock_path = daemon.tmp / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.settimeout(STOP_TIMEOUT)
        daemon.env.update(NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="200000")
        try:
            daemon.start()
            ready = sock.recv(4096).decode().splitlines()
            assert ready[0] == "READY=1"
            assert ready[1] == f"STATUS=serving 1 unit over {DEVICE_KIND.upper()}"
            assert os.path.exists(daemon.nrew)
            assert sock.recv(4096) == b"WATCHDOG=1"
            daemon.run("dd", "if=/dev/zero", f"of={daemon.nrew}", "bs=10k", "count=30")
            assert sock.recv(4096) == b"WATCHDOG=1"
            assert daemon.stop() == 0
            messages = []
            while not messages or messages[-1] == b"WATCHDOG=1":
                messages.append(sock.recv(4096))
            assert messages[-1].startswith(b"STOPPING=1\nSTATUS=stopping")
        finally:
            del daemon.env["NOTIFY_SOCKET"], daemon.env["WATCHDOG_USEC"]


def test_systemd_unit_and_udev_rules() -> None:
    root = Path(__file__).resolve().parents[2]
    unit = (root / "systemd" / "backerd.service").read_text()
    keys = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and line[0].isalpha()
    )
    assert keys["Type"] == "notify"
    assert keys["ExecStart"].endswith("backerd serve")
    assert keys["Restart"] == "on-failure" and keys["KillSignal"] == "SIGTERM"
    analyze = shutil.which("systemd-analyze")
    if analyze:  # check the syntax with systemd itself, pointing at this checkout's backerd
        fixed = unit.replace(keys["ExecStart"], f"{sys.executable} -m backerd serve")
        here = Path(os.environ.get("TMPDIR", "/tmp")) / f"backerd-verify-{os.getpid()}.service"
        here.write_text(fixed)
        try:
            result = subprocess.run([analyze, "verify", str(here)], capture_output=True,
                                    text=True)
        finally:
            here.unlink()
        problems = [line for line in result.stderr.splitlines() if "backerd-verify" in line]
        assert not problems, result.stderr
    rules = (root / "udev" / "60-backerd.rules").read_text()
    for kernel in ("backer[0-9]*", "nbacker[0-9]*"):
        assert (f'SUBSYSTEM=="cuse", KERNEL=="{kernel}", GROUP="tape", MODE="0660"'
                in rules)


@pytest.mark.slow
def test_a_busy_unit_does_not_hold_up_another(two_units: Daemon, tmp_path: Path) -> None:
    """While unit 0 records in real time, unit 1 and the status socket still answer."""
    d = two_units
    data = tmp_path / "d"
    data.write_bytes(random.Random(3).randbytes(2 * 1024 * 1024))  # ~15 s of nhs tape
    with subprocess.Popen(["dd", f"if={data}", f"of={d.nrew}", "bs=64k"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as writer:
        try:
            assert parse_mt_status(d.mt(d.node("nbacker1"), "status"))["file"] == 0
            d.run("dd", f"if={data}", f"of={d.node('nbacker1')}", "bs=64k", "count=2")
            status = d.status()
            assert writer.poll() is None, "unit 0 finished first: nothing was shown"
            assert status["units"][0]["open"] == "nbacker0"
            assert status["units"][1]["position"] == {"file": 1, "block": 0}
        finally:
            writer.kill()


def test_second_daemon_is_refused_with_one_line(daemon: Daemon, tmp_path: Path) -> None:
    other = tmp_path / "other.cassette"
    result = daemon.run(*daemon.backerd("serve", "--cassette", str(other), "--fuse-root",
                                        str(tmp_path / "dev2")), ok=False)
    assert result.returncode == 7
    assert result.stderr.decode().strip().splitlines() == [
        f"backerd serve: another backerd is already running "
        f"(its control socket {daemon.control_socket} answers)"
    ]
    assert not other.exists()
    assert daemon.status()["units"][0]["cassette"] == str(daemon.cassette)

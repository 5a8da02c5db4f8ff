"""Least privilege of the running daemon: its capabilities, and what its control socket
lets other users do."""

from __future__ import annotations

import grp
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from backerd.daemon import privileges
from backerd.daemon.control import REQUEST_LIMIT
from testkit.systemtest import DEVICE_KIND, MODE, Daemon, new_daemon, parse_mt_status, stop_checked

NOBODY = 65534


PUBLIC_UNIT = 6


@pytest.fixture(scope="module")
def public_daemon() -> Iterator[Daemon]:
    """A daemon whose control socket other users can reach: under a directory they may
    traverse (pytest's own temporary directories are root's alone)."""
    home = Path(tempfile.mkdtemp(prefix="backerd-security-", dir="/tmp"))
    home.chmod(0o755)
    # its own unit number: CUSE device names are global, and the module's shared daemon
    # serves unit 0 meanwhile
    d = new_daemon(home, f'[[unit]]\nnumber = {PUBLIC_UNIT}\nmode = "{MODE}"\n')
    try:
        d.start()
        yield d
    finally:
        try:
            stop_checked(d)
        finally:
            shutil.rmtree(home, ignore_errors=True)


def thread_caps(pid: int) -> dict[str, privileges.ThreadCaps]:
    """Every thread's capability sets, by thread id and name."""
    out = {}
    for task in sorted(Path(f"/proc/{pid}/task").iterdir()):
        try:
            caps = privileges.parse_status((task / "status").read_text())
            name = (task / "comm").read_text().strip()
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        assert caps is not None
        out[f"{task.name} {name}"] = caps
    return out


def test_the_running_daemon_keeps_only_what_its_transport_needs(daemon: Daemon) -> None:
    assert os.geteuid() == 0, "the system tests run as root (FUSE mount)"
    assert daemon.proc is not None
    pid = daemon.proc.pid
    # the expected set from the kernel's own numbering (linux/capability.h), not the module's
    sys_admin = 1 << 21
    keep = sys_admin if DEVICE_KIND == "fuse" else 0
    # serve some I/O first, so that worker and codec threads have started
    daemon.run("dd", "if=/dev/urandom", f"of={daemon.nrew}", "bs=10k", "count=40")
    daemon.mt(daemon.nrew, "rewind")
    daemon.run("dd", f"if={daemon.nrew}", "of=/dev/null", "bs=10k")
    threads = thread_caps(pid)
    assert len(threads) > 1, "the daemon runs worker threads"
    for name, caps in threads.items():
        assert (caps.effective, caps.permitted, caps.bounding) == (keep, keep, keep), name
        assert caps.inheritable == caps.ambient == 0, name
    status = Path(f"/proc/{pid}/status").read_text()
    assert "NoNewPrivs:\t1" in status
    # and it still serves and stops cleanly (FUSE: unmounts with what it kept)
    daemon.mt(daemon.nrew, "rewind")
    assert parse_mt_status(daemon.mt(daemon.nrew, "status"))["file"] == 0
    assert daemon.stop() == 0
    assert not daemon.mounted()


# -- the control socket ---------------------------------------------------------------


def raw_request(path: Path, data: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        reply = b""
        try:
            while chunk := s.recv(65536):
                reply += chunk
        except ConnectionResetError:
            # the daemon closed with the rest of an oversized request unread: the kernel
            # reports that once the reply, which came first, has been read
            assert reply
    return json.loads(reply)


def as_nobody(path: Path, line: str, *, groups: tuple[int, ...] = ()) -> dict:
    """Send ``line`` as another user (not root, not the daemon's user or group), member
    of ``groups``."""
    script = ("import json, socket, sys\n"
              "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(10)\n"
              "s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b'\\n')\n"
              "data = b''\n"
              "while chunk := s.recv(65536): data += chunk\n"
              "print(data.decode())\n")

    def become_nobody() -> None:
        os.setgroups(list(groups))
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    # the system's python: a virtual environment may sit where that user cannot reach
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    result = subprocess.run([python, "-c", script, str(path), line],
                            capture_output=True, text=True, timeout=30,
                            preexec_fn=become_nobody, check=False)
    if "PermissionError" in result.stderr:
        return {"refused": "connect"}
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def tape_gid() -> int:
    try:
        return grp.getgrnam("tape").gr_gid
    except KeyError:
        return 0


def test_the_control_socket_is_for_root_and_the_tape_group(public_daemon: Daemon) -> None:
    daemon = public_daemon
    st = daemon.control_socket.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o660, 0, tape_gid())
    if DEVICE_KIND == "fuse":  # the same for the nodes (CUSE's are the udev rule's)
        for node in (daemon.node(f"backer{PUBLIC_UNIT}"), daemon.node(f"nbacker{PUBLIC_UNIT}")):
            st = os.stat(node)
            assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o660, 0, tape_gid())
    assert as_nobody(daemon.control_socket, "status") == {"refused": "connect"}
    if tape_gid():
        reply = as_nobody(daemon.control_socket, "status", groups=(tape_gid(),))
        assert reply["units"][0]["number"] == PUBLIC_UNIT


def test_an_oversized_request_is_refused(daemon: Daemon) -> None:
    reply = raw_request(daemon.control_socket, b"x" * (REQUEST_LIMIT * 4) + b"\n")
    assert reply["error"].startswith(f"request longer than {REQUEST_LIMIT} bytes")
    assert daemon.status()["units"][0]["number"] == 0  # and it keeps serving


def test_an_unknown_request_is_refused(daemon: Daemon) -> None:
    reply = raw_request(daemon.control_socket, b'{"request": "write", "data": "x"}\n')
    assert reply["error"].startswith("unknown request")
    reply = raw_request(daemon.control_socket, b"rewind 0\n")
    assert reply["error"].startswith("unknown request")


@pytest.mark.parametrize("line", ['{"request": "label", "text": "mine", "force": true}',
                                  '{"request": "rebuild"}', f"deck ready {PUBLIC_UNIT}"])
def test_another_user_cannot_write_or_move_the_tape(public_daemon: Daemon, line: str) -> None:
    daemon = public_daemon
    daemon.run("dd", "if=/dev/zero", f"of={daemon.node(f'nbacker{PUBLIC_UNIT}')}", "bs=10k",
               "count=3")
    before = daemon.status()["units"][0]
    # a member of the socket's group (may ask for status) who is not root
    reply = as_nobody(daemon.control_socket, line, groups=(tape_gid(),))
    assert reply["error"].startswith("not allowed to send")
    after = daemon.status()["units"][0]
    assert after["position"] == before["position"]
    assert after.get("cassette_label") == before.get("cassette_label")

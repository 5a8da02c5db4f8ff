"""The daemon as a whole: status, clean stop mid-recording, cassettes shared with the CLI."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from systemtest import DEVICE_KIND, MODE, Daemon, parse_mt_status, same_tree


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


def test_sigterm_mid_recording_closes_it(daemon: Daemon, tmp_path: Path) -> None:
    """SIGTERM while a writer holds the node open: the recording gets its EOR, exit 0."""
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
            assert daemon.stop(signal.SIGTERM) == 0
        finally:
            writer.kill()
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

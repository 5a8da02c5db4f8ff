"""Labels, the catalog, status counters, metrics, preflight and plots against a real
daemon process fed by GNU tar, on a simulated VCR with playback noise."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backerd.format.params import mode
from testkit.promcheck import parse as parse_metrics
from testkit.systemtest import MODE, Daemon, new_daemon, stop_checked

NOISE = "seed=7,errors=2"
LONG = "a-rather-long-directory-name-for-tape/" * 3 + "and-a-file-name-well-past-100-chars.txt"


@pytest.fixture
def noisy(no_shared_daemon: None, tmp_path: Path) -> Iterator[Daemon]:
    metrics = tmp_path / "textfile" / "backerd.prom"
    d = new_daemon(tmp_path, f'metrics_file = "{metrics}"\n'
                              f'[[unit]]\nmode = "{MODE}"\nnoise = "{NOISE}"\n')
    d.start()
    try:
        yield d
    finally:
        stop_checked(d)


def backerd(d: Daemon, *args: str, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    return d.run(*d.backerd(*args, "--config", str(d.config_file)), ok=ok)


def catalog(d: Daemon, *args: str) -> object:
    db = Path(d.env["BACKERD_STATE_DIR"]) / "catalog.db"
    return json.loads(d.run(*d.backerd("catalog", "--catalog", str(db), *args)).stdout)


def make_tree(root: Path, name: str) -> Path:
    base = root / name
    (base / Path(LONG).parent).mkdir(parents=True)
    (base / LONG).write_bytes(b"long " * 2000)
    (base / "small.txt").write_text(name)
    return base


def comparable(snapshot: dict) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("written_at", "written_by")}
            for r in snapshot["recordings"]]


@pytest.mark.sectors
@pytest.mark.skipif(mode(MODE).is_raw,
                    reason=f"mode {MODE} has no error correction to survive the deck's noise")
def test_label_catalog_counters_metrics_check_plot_rebuild(noisy: Daemon, tmp_path: Path
                                                           ) -> None:
    d = noisy
    backerd(d, "label", "--unit", "0", "MONDAY-01")
    [unit] = d.status()["units"]
    assert unit["cassette_label"]["text"] == "MONDAY-01" and unit["labelled"]
    assert "cassette labelled 'MONDAY-01'" in d.log.read_text()
    # two archives: GNU long names, then pax
    first, second = make_tree(tmp_path, "first"), make_tree(tmp_path, "second")
    d.run("tar", "--format=gnu", "-cf", d.nrew, "-C", tmp_path, first.name)
    d.run("tar", "--format=pax", "-cf", d.nrew, "-C", tmp_path, second.name)
    # the label is hidden: file 0 is the first archive, mt fsf 1 reaches the second
    d.mt(d.nrew, "rewind")
    d.mt(d.nrew, "fsf", "1")
    listed = d.run("tar", "-tf", d.nrew).stdout.decode().split()
    assert f"second/{LONG}" in listed
    d.mt(d.nrew, "rewind")
    assert f"first/{LONG}" in d.run("tar", "-tf", d.nrew).stdout.decode().split()
    # the catalog answers "which cassette, which file, where"
    hits = catalog(d, "find", "*and-a-file-name*", "--json")
    assert [(h["label"], h["file_number"], h["path"]) for h in hits] == [
        ("MONDAY-01", 0, f"first/{LONG}"), ("MONDAY-01", 1, f"second/{LONG}")]
    # the driver counters moved under the deck's noise
    [unit] = d.status()["units"]
    counters = unit["counters"]
    read = counters["current"] if counters["current"]["byte_errors"] else counters["last"]
    assert read["byte_errors"] > 0 and read["worst_block"] > 0
    assert read["worst_key"] is not None and read["sector_number"] is not None
    assert unit["totals"]["corrected_symbols_total"] >= read["byte_errors"]
    assert unit["position"]["file"] is not None and unit["wear"]["passes"] >= 0
    # preflight
    assert backerd(d, "check", "--unit", "0", "--need", "1M", "--label", "MONDAY-01"
                   ).returncode == 0
    assert backerd(d, "check", "--unit", "0", "--need", "100T", ok=False).returncode == 1
    wrong = backerd(d, "check", "--unit", "0", "--label", "TUESDAY", ok=False)
    assert wrong.returncode == 1 and b"TUESDAY" in wrong.stdout
    # plot of the last read, and the monitor's plain lines
    png = tmp_path / "last.png"
    backerd(d, "plot", "--last-read", "-o", str(png), "--size", "800x400", "--builtin")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (800, 400)
    mon = backerd(d, "monitor", "--count", "2", "--interval", "0.2").stdout.decode()
    assert mon.count("unit=0 label=MONDAY-01") == 2
    # the live catalog equals a rebuild from the tape
    uuid = unit["cassette_uuid"]
    live = catalog(d, "show", uuid, "--members", "--json")
    assert [r["content"] for r in live["recordings"]] == ["tar", "tar"]
    rebuilt = json.loads(backerd(d, "catalog", "rebuild", "--unit", "0", "--json").stdout)
    assert rebuilt["files"] == 2 and rebuilt["labelled"]
    again = catalog(d, "show", uuid, "--members", "--json")
    assert comparable(again) == comparable(live)
    # metrics: written atomically at stop, parsed by an independent reader
    assert d.stop() == 0
    families = parse_metrics((tmp_path / "textfile" / "backerd.prom").read_text())
    assert families["backerd_tape_filemarks_written_total"]["samples"][0][1] >= 2
    [(labels, _)] = families["backerd_cassette_info"]["samples"]
    assert labels["label"] == "MONDAY-01" and labels["uuid"] == uuid
    assert families["backerd_tape_write_bytes_total"]["samples"][0][1] > 0
    # offline: a rebuild of the image into a fresh catalog equals the live one
    fresh = tmp_path / "fresh.db"
    d.run(*d.backerd("catalog", "--catalog", str(fresh), "rebuild", str(d.cassette)))
    offline = json.loads(d.run(*d.backerd("catalog", "--catalog", str(fresh), "show", uuid,
                                          "--members", "--json")).stdout)
    assert comparable(offline) == comparable(live)
    d.start()
    # labelling again: refused while data is on it, and --force only at BOT
    refused = backerd(d, "label", "--unit", "0", "TUESDAY-01", ok=False)
    assert refused.returncode == 2 and b"holds data" in refused.stderr
    d.mt(d.nrew, "fsf", "1")
    away = backerd(d, "label", "--unit", "0", "--force", "TUESDAY-01", ok=False)
    assert away.returncode == 2 and b"BOT" in away.stderr
    d.mt(d.nrew, "rewind")
    backerd(d, "label", "--unit", "0", "--force", "TUESDAY-01")
    [unit] = d.status()["units"]
    assert unit["cassette_label"]["text"] == "TUESDAY-01"
    d.mt(d.nrew, "rewind")
    assert d.run("tar", "-tf", d.nrew, ok=False).returncode != 0  # nothing left to read
    old = {c["label"]: c for c in catalog(d, "ls", "--json")}
    assert old["MONDAY-01"]["state"] == "retired" and old["MONDAY-01"]["files"] == 0
    assert old["TUESDAY-01"]["state"] == "blank"


def test_kill_9_mid_archive_leaves_no_row_for_it(noisy: Daemon, tmp_path: Path) -> None:
    d = noisy
    first = make_tree(tmp_path, "done")
    d.run("tar", "-cf", d.nrew, "-C", tmp_path, first.name)
    big = tmp_path / "big"
    big.mkdir()
    (big / "payload.bin").write_bytes(bytes(range(256)) * 40_000)  # ~10 MB
    archive = tmp_path / "big.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(tmp_path), "big"], check=True)
    # the archive's first 4 MB go to the device and the writer stays open: the daemon
    # dies mid-archive however fast it takes records
    with subprocess.Popen(["dd", f"of={d.nrew}", "bs=10240"], stdin=subprocess.PIPE,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as writer:
        assert writer.stdin is not None
        writer.stdin.write(archive.read_bytes()[:4_000_000])
        writer.stdin.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = json.loads(d.run(*d.backerd("status", "--json", "--socket",
                                                 str(d.control_socket))).stdout)
            if status["units"][0]["totals"]["write_bytes_total"] > 2_000_000:
                break
            time.sleep(0.05)
        assert d.proc is not None
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        d.proc = None
        d.unmount()
        writer.stdin.close()
        writer.wait(60)
    db = Path(d.env["BACKERD_STATE_DIR"]) / "catalog.db"
    [cassette] = json.loads(d.run(*d.backerd("catalog", "--catalog", str(db), "ls",
                                             "--json")).stdout)
    rows = catalog(d, "show", cassette["uuid"], "--json")["recordings"]
    assert [(r["file_number"], r["content"]) for r in rows] == [(0, "tar")]
    d.start()  # recovery on load may index the interrupted signal: never as a tar row
    rows = catalog(d, "show", cassette["uuid"], "--json")["recordings"]
    assert rows[0]["content"] == "tar"
    assert all(r["status"] == "unindexed" for r in rows[1:])

"""``backerd catalog`` and ``backerd plot`` on cassette images made as the original
driver made them (raw Backer streams recorded with ``backerd cassette record``)."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from backerd.cli import main

BACKERD = [sys.executable, "-m", "backerd"]


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([*BACKERD, *args], input=stdin, capture_output=True)


def tar_of(names: list[str]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 2000
            info.mtime = 1_650_000_000
            tf.addfile(info, io.BytesIO(b"q" * 2000))
    return out.getvalue()


@pytest.fixture(scope="module")
def old_cassette(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unlabelled cassette: a tar archive and a non-tar file, recorded as raw streams."""
    image = tmp_path_factory.mktemp("old") / "old.cassette"
    assert run("cassette", "new", str(image), "--length", "E-30").returncode == 0
    long_name = "projects/" + "really-long-directory-name/" * 6 + "notes.txt"
    for data in (tar_of(["etc/hosts", long_name]), bytes(range(256)) * 40):
        stream = run("encode", "--mode", "nhs", stdin=data)
        assert stream.returncode == 0, stream.stderr
        rec = run("cassette", "record", str(image), "--mode", "nhs", stdin=stream.stdout)
        assert rec.returncode == 0, rec.stderr
    return image


def test_rebuild_ls_show_find_set(old_cassette: Path, tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "cat.db")
    assert main(["catalog", "--catalog", db, "rebuild", str(old_cassette), "--name", "OLD-1",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["labelled"] is False and summary["files"] == 2 and summary["members"] == 2
    assert main(["catalog", "--catalog", db, "find", "notes.txt", "--json"]) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert hit["label"] == "OLD-1" and hit["file_number"] == 0 and hit["size"] == 2000
    assert hit["path"].startswith("projects/really-long")
    assert main(["catalog", "--catalog", db, "find", "nothing-like-this"]) == 1
    capsys.readouterr()
    assert main(["catalog", "--catalog", db, "set", "OLD-1", "--location", "box 4",
                 "--state", "retired"]) == 0
    capsys.readouterr()
    assert main(["catalog", "--catalog", db, "ls", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["state"], row["location"], row["files"]) == ("retired", "box 4", 2)
    assert main(["catalog", "--catalog", db, "show", "OLD-1", "--json"]) == 0
    snap = json.loads(capsys.readouterr().out)
    assert [r["content"] for r in snap["recordings"]] == ["tar", "opaque"]
    assert snap["recordings"][1]["bytes"] == 256 * 40
    # a second rebuild gives the same rows and keeps what people set
    assert main(["catalog", "--catalog", db, "rebuild", str(old_cassette), "--name",
                 "OLD-1"]) == 0
    capsys.readouterr()
    assert main(["catalog", "--catalog", db, "show", "OLD-1", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["cassette"]["location"] == "box 4"
    strip = [{k: v for k, v in r.items() if k != "written_at"} for r in snap["recordings"]]
    assert strip == [{k: v for k, v in r.items() if k != "written_at"}
                     for r in again["recordings"]]


def test_unknown_cassette_is_one_line_error(tmp_path: Path) -> None:
    result = run("catalog", "--catalog", str(tmp_path / "c.db"), "show", "NOPE")
    assert result.returncode == 2
    assert result.stderr.decode().strip() == "backerd catalog: no cassette 'NOPE' in the catalog"


def test_plot_file_is_a_png_of_the_asked_size(old_cassette: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.png"
    result = run("plot", str(old_cassette), "--file", "1", "-o", str(out), "--size", "640x200")
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (640, 200)
    assert b"plot] extra" in result.stderr or b"PNG" in result.stderr


def test_cassette_label_offline_then_rebuild(tmp_path: Path, capsys) -> None:
    image = tmp_path / "new.cassette"
    assert run("cassette", "new", str(image), "--length", "E-30").returncode == 0
    assert run("cassette", "label", str(image), "FRIDAY").returncode == 0
    stream = run("encode", "--mode", "nhs", stdin=tar_of(["x/y"])).stdout
    assert run("cassette", "record", str(image), "--mode", "nhs", stdin=stream).returncode == 0
    refused = run("cassette", "label", str(image), "OTHER")
    assert refused.returncode == 2 and b"holds data" in refused.stderr
    db = str(tmp_path / "c.db")
    assert main(["catalog", "rebuild", str(image), "--catalog", db, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["labelled"] and summary["label"] == "FRIDAY" and summary["files"] == 1
    assert main(["catalog", "find", "x/y", "--catalog", db, "--json"]) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert hit["file_number"] == 0 and hit["label"] == "FRIDAY"  # the label is not file 0
    assert run("cassette", "label", str(image), "OTHER", "--force").returncode == 0
    assert main(["catalog", "rebuild", str(image), "--catalog", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 0

"""``backerd cassette``: new, info, record, dump, protect."""

from __future__ import annotations

import io
import json
import lzma
import os
import sys
from pathlib import Path

import pytest

from backerd.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"


def run(monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes],
        *argv: str, stdin: bytes = b"") -> tuple[int, bytes, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    status = main(["cassette", *argv])
    out, err = capsysbinary.readouterr()
    return status, out, err.decode()


def test_new_info_record_dump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    image = str(tmp_path / "c.img")
    status, out, _ = run(monkeypatch, capsysbinary, "new", image, "--standard", "pal",
                         "--length", "E-240")
    assert status == 0 and b"E-240" in out and b"4:00:00" in out
    status, _, err = run(monkeypatch, capsysbinary, "new", image)
    assert status == 2 and "already exists" in err and "--force" in err

    raws = {m: lzma.decompress((DATA / f"3.102-{m}-m1000.raw.xz").read_bytes())
            for m in ("pls", "phe")}
    for m, raw in raws.items():
        status, _, err = run(monkeypatch, capsysbinary, "record", image, "--mode", m,
                             stdin=raw)
        assert status == 0, err

    status, out, _ = run(monkeypatch, capsysbinary, "info", image, "--json")
    info = json.loads(out)
    assert (info["standard"], info["length"], info["fields"]) == ("pal", "E-240", 240 * 3000)
    recs = info["recordings"]
    assert [r["mode"] for r in recs] == ["pls", "phe"]
    # fields = stream bytes / field bytes (PAL: no interlace bytes)
    assert [r["fields"] for r in recs] == [len(raws["pls"]) // 1220, len(raws["phe"]) // 3050]
    assert recs[1]["start"] == recs[0]["fields"]
    assert info["eod"] == recs[1]["start"] + recs[1]["fields"]

    status, out, _ = run(monkeypatch, capsysbinary, "info", image)
    text = out.decode()
    assert "PAL" in text and "pls" in text and "phe" in text and "EOD" in text

    for i, m in enumerate(raws):
        status, out, _ = run(monkeypatch, capsysbinary, "dump", image, "--file", str(i))
        assert status == 0 and out == raws[m]


def test_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    image = str(tmp_path / "c.img")
    status, _, err = run(monkeypatch, capsysbinary, "info", image)
    assert status == 2 and "no cassette image" in err and "Traceback" not in err
    run(monkeypatch, capsysbinary, "new", image, "--length", "T-30")
    cases = [
        (("dump", image, "--file", "0"), b"", "no recordings"),
        (("record", image, "--mode", "nls"), b"", "no input"),
        (("record", image, "--mode", "pls"), b"x" * 5000, "PAL"),
        (("record", image, "--mode", "xyz"), b"x" * 5000, "unknown mode"),
        (("new", image, "--length", "E-7", "--force"), b"", "unknown cassette length"),
    ]
    for argv, stdin, message in cases:
        status, _, err = run(monkeypatch, capsysbinary, *argv, stdin=stdin)
        assert status == 2 and message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1
    status, _, err = run(monkeypatch, capsysbinary, "protect", image)
    assert status == 0
    status, _, err = run(monkeypatch, capsysbinary, "record", image, "--mode", "nlr",
                         stdin=b"x" * 5000)
    assert status != 0 and "write-protected" in err
    status, out, _ = run(monkeypatch, capsysbinary, "info", image)
    assert b"protect    on" in out
    run(monkeypatch, capsysbinary, "protect", image, "--off")
    status, _, err = run(monkeypatch, capsysbinary, "record", image, "--mode", "nlr",
                         stdin=b"x" * 5000)
    assert status == 0, err
    status, out, _ = run(monkeypatch, capsysbinary, "dump", image, "--file", "0")
    assert out == b"x" * 5000
    status, _, err = run(monkeypatch, capsysbinary, "dump", image, "--file", "1")
    assert status == 2 and "recordings 0..0" in err


def test_truncated_image_fails_info_and_dump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    image = str(tmp_path / "c.img")
    run(monkeypatch, capsysbinary, "new", image, "--length", "T-15")
    raw = lzma.decompress((DATA / "3.102-nls-m1000.raw.xz").read_bytes())
    for _ in range(2):
        status, _, err = run(monkeypatch, capsysbinary, "record", image, "--mode", "nls",
                             stdin=raw)
        assert status == 0, err
    status, out, _ = run(monkeypatch, capsysbinary, "info", image, "--json")
    first = json.loads(out)["recordings"][0]
    # cut the file inside recording 1: recording 0 is whole, recording 1 is not
    data_offset, slot = 4096 + 2 * (4 << 20), 3072
    os.truncate(tmp_path / "c.img", data_offset + (first["fields"] + 2) * slot)

    status, out, err = run(monkeypatch, capsysbinary, "info", image)
    assert status == 4 and "Traceback" not in err
    assert "recording 1 lies past its end" in err and len(err.strip().splitlines()) == 1
    assert b"recording 1 lies past its end" in out and b"nls" in out  # still listed
    status, out, err = run(monkeypatch, capsysbinary, "info", image, "--json")
    assert status == 4 and "recording 1" in json.loads(out)["past_end"]
    status, out, err = run(monkeypatch, capsysbinary, "dump", image, "--file", "1")
    assert status == 4 and out == b"" and "recording 1 cannot be dumped" in err
    status, out, err = run(monkeypatch, capsysbinary, "dump", image, "--file", "0")
    assert status == 0 and out == raw  # what the file still holds is intact


def test_damaged_images_and_misplaced_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    image = tmp_path / "c.img"
    run(monkeypatch, capsysbinary, "new", str(image), "--length", "T-15")
    head = image.read_bytes()[:4096]
    with image.open("r+b") as f:
        f.write(head.replace(b'"slots": 54000', b'"slots": "abc"'))
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    link = tmp_path / "link"
    link.symlink_to(target)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases = [
        (("info", str(image)), 4, "slots is 'abc', expected integer"),
        (("dump", str(image), "--file", "0"), 4, "slots is 'abc'"),
        (("info", str(tmp_path)), 2, "is a directory"),
        (("dump", str(tmp_path), "--file", "0"), 2, "is a directory"),
        (("new", str(link), "--force"), 2, "symbolic link: refusing to replace it"),
        (("new", str(fifo), "--force"), 2, "FIFO: refusing to replace it"),
        (("new", str(tmp_path / "long"), "--length", "1000"), 2, "1..600 minutes"),
    ]
    for argv, expected, message in cases:
        status, _, err = run(monkeypatch, capsysbinary, *argv)
        assert status == expected and message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert target.read_bytes() == b"precious" and link.is_symlink()
    assert not (tmp_path / "long").exists()


def test_info_capacity_left_in_the_cassette_mode(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsysbinary: pytest.CaptureFixture[bytes]
                                                 ) -> None:
    from backerd.format.fields import fields_needed
    from backerd.format.params import mode

    image = str(tmp_path / "c.img")
    run(monkeypatch, capsysbinary, "new", image, "--standard", "pal", "--length", "5")
    raw = lzma.decompress((DATA / "3.102-phe-m1000.raw.xz").read_bytes())
    assert run(monkeypatch, capsysbinary, "record", image, "--mode", "phe", stdin=raw)[0] == 0
    status, out, _ = run(monkeypatch, capsysbinary, "info", image, "--json")
    info = json.loads(out)
    room = info["capacity_left"]
    assert room["mode"] == "phe"  # the mode of the last recording
    free = info["fields"] - info["eod"]
    params = mode("phe")
    # the most bytes that fit: one more needs a field more than is left
    for fields, key in ((free, "bytes"), (free - 60 * 50, "before_early_warning")):
        assert fields_needed(params, room[key]) <= fields < fields_needed(params, room[key] + 1)
    status, out, _ = run(monkeypatch, capsysbinary, "info", image, "--mode", "pls")
    assert status == 0 and b"left in mode pls" in out
    status, _, err = run(monkeypatch, capsysbinary, "info", image, "--mode", "nhs")
    assert status == 2 and "NTSC" in err

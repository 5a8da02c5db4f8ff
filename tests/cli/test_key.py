"""``backerd key new|export|import`` through the command line's entry point."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from backerd.cli import main
from backerd.errors import CryptError

pytest.importorskip("cryptography")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_new_export_import_paper_round_trip(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    pw = tmp_path / "pw"
    pw.write_text("a passphrase\n")
    key = tmp_path / "unit.key"
    status, out, _ = run(capsys, "key", "new", str(key), "--passphrase-file", str(pw))
    assert status == 0 and "new key" in out
    status, out, _ = run(capsys, "key", "export", str(key))
    document, paper = out.split("\n\n", 1)
    assert json.loads(document)["fingerprint"] in paper.splitlines()[0]
    (tmp_path / "paper.txt").write_text(paper)
    status, out, _ = run(capsys, "key", "import", str(tmp_path / "back.key"), "--from",
                         str(tmp_path / "paper.txt"), "--passphrase-file", str(pw))
    assert status == 0
    back = json.loads((tmp_path / "back.key").read_text())
    assert back["key"] == json.loads(document)["key"] and back["wrap"]["kdf"] == "scrypt"
    # a second new on the same file is refused with one line and exit status CryptError.exit_status
    status, _, err = run(capsys, "key", "new", str(key), "--passphrase-file", str(pw))
    assert status == CryptError.exit_status and "never replaced" in err and err.count("\n") == 1


def test_import_reports_the_line_with_a_typo(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    pw = tmp_path / "pw"
    pw.write_text("x\n")
    run(capsys, "key", "new", str(tmp_path / "k"), "--passphrase-file", str(pw))
    _, paper, _ = run(capsys, "key", "export", "--paper", str(tmp_path / "k"))
    lines = paper.splitlines()
    row = lines[3]
    lines[3] = row[:4] + ("A" if row[4] != "A" else "B") + row[5:]
    (tmp_path / "typo").write_text("\n".join(lines))
    status, _, err = run(capsys, "key", "import", str(tmp_path / "k2"), "--from",
                         str(tmp_path / "typo"), "--passphrase-file", str(pw))
    assert status == CryptError.exit_status
    assert "line 3 does not match" in err or "heading says" in err
    assert not (tmp_path / "k2").exists()


def test_without_cryptography_one_line_says_what_to_install(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    status, _, err = run(capsys, "key", "new", str(tmp_path / "k"), "--passphrase-file",
                         str(tmp_path / "missing"))
    assert status == CryptError.exit_status and "pip install 'backerd[crypt]'" in err

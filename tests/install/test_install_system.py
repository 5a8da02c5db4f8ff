"""``backerd install-system`` into a temporary root, checked by systemd itself."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from backerd.cli import main
from backerd.errors import InstallError
from backerd.install import apply

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze not found (Debian package systemd; .ci/run "
                            "installs it)")
BASE_SCORE_LIMIT = 4.5  # systemd-analyze security exposure, lower is safer
UNITS = Path("etc/systemd/system")


def install(root: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["install-system", "--root", str(root), *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def exposure(unit: Path) -> float:
    assert ANALYZE is not None
    result = subprocess.run([ANALYZE, "security", "--offline=true", str(unit)],
                            capture_output=True, text=True, check=False)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


def test_installs_every_file_pointed_at_this_backerd(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = install(tmp_path, "--transport", "cuse", capsys=capsys)
    assert status == 0, err
    files = tree(tmp_path)
    assert sorted(files) == sorted([
        "etc/modules-load.d/backerd.conf", "etc/udev/rules.d/60-backerd.rules",
        "etc/systemd/system/backerd.service",
        "etc/systemd/system/backerd.service.d/cuse-hardening.conf",
        "etc/systemd/system/backerd-backup@.service", "etc/systemd/system/backerd-backup@.timer",
        "etc/systemd/system/backerd-backup-failed@.service", "var/lib/backerd/installed.json"])
    backerd = json.loads(files["var/lib/backerd/installed.json"])["backerd"]
    assert Path(backerd).name == "backerd" and Path(backerd).is_file()
    starts = [line for text in files.values() for line in text.decode().splitlines()
              if line.startswith("ExecStart=") and "backerd" in line.split()[0]]
    assert starts and all(line.split("=", 1)[1].lstrip("-+").startswith(backerd + " ")
                          for line in starts)
    assert "cuse" in files["etc/modules-load.d/backerd.conf"].decode().split()
    # what a fresh install shows, then a second run changes nothing
    assert out.count("install ") == 7
    before = tree(tmp_path)
    status, out, _ = install(tmp_path, "--transport", "cuse", capsys=capsys)
    assert status == 0 and out.count("unchanged ") == 7
    assert tree(tmp_path) == before


@needs_analyze
def test_installed_units_pass_systemd_analyze_verify(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert install(tmp_path, "--transport", "cuse", capsys=capsys)[0] == 0
    units = sorted(p for p in (tmp_path / UNITS).iterdir() if p.is_file())
    assert len(units) == 4
    assert apply.verify(units, ANALYZE or "") == []


@needs_analyze
def test_verify_reports_a_broken_unit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The check above can fail: a missing binary, a key systemd does not know in the
    drop-in."""
    assert install(tmp_path, "--transport", "cuse", capsys=capsys)[0] == 0
    unit = tmp_path / UNITS / "backerd-backup@.service"
    unit.write_text(unit.read_text().replace("ExecStart=/", "ExecStart=/nonexistent/"))
    complaints = apply.verify([unit], ANALYZE or "")
    assert complaints and "not executable" in complaints[-1]
    drop_in = tmp_path / UNITS / "backerd.service.d" / "cuse-hardening.conf"
    drop_in.write_text(drop_in.read_text() + "ProtectEverything=yes\n")
    complaints = apply.verify([tmp_path / UNITS / "backerd.service"], ANALYZE or "")
    assert any("ProtectEverything" in line for line in complaints)


@needs_analyze
def test_security_exposure_of_the_base_unit_and_with_the_cuse_drop_in(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base_root, cuse_root = tmp_path / "fuse", tmp_path / "cuse"
    base_root.mkdir()
    cuse_root.mkdir()
    assert install(base_root, "--transport", "fuse", capsys=capsys)[0] == 0
    assert install(cuse_root, "--transport", "cuse", capsys=capsys)[0] == 0
    base = exposure(base_root / UNITS / "backerd.service")
    hardened = exposure(cuse_root / UNITS / "backerd.service")
    assert base <= BASE_SCORE_LIMIT
    assert hardened < base  # the drop-in is read and adds to the base


def test_an_edited_file_survives_install_and_uninstall(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert install(tmp_path, "--transport", "cuse", capsys=capsys)[0] == 0
    rules = tmp_path / "etc/udev/rules.d/60-backerd.rules"
    edited = rules.read_text() + 'SUBSYSTEM=="cuse", KERNEL=="backer0", SYMLINK+="tape"\n'
    rules.write_text(edited)
    status, out, err = install(tmp_path, "--transport", "cuse", capsys=capsys)
    assert status == 0 and rules.read_text() == edited
    assert f"warning: {Path('/etc/udev/rules.d/60-backerd.rules')} (edited" in err
    status, out, err = install(tmp_path, "--uninstall", capsys=capsys)
    assert status == 0
    assert tree(tmp_path) == {"etc/udev/rules.d/60-backerd.rules": edited.encode()}
    assert not (tmp_path / UNITS / "backerd.service.d").exists()


def test_a_file_that_was_there_before_is_not_ours(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "etc/modules-load.d/backerd.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("# the administrator's own\ncuse\n")
    status, _, err = install(tmp_path, "--transport", "fuse", capsys=capsys)
    assert status == 0 and "not installed by backerd" in err
    manifest = json.loads((tmp_path / "var/lib/backerd/installed.json").read_text())
    assert "/etc/modules-load.d/backerd.conf" not in manifest["files"]
    install(tmp_path, "--uninstall", capsys=capsys)
    assert tree(tmp_path) == {"etc/modules-load.d/backerd.conf": conf.read_bytes()}


def test_changing_the_transport_removes_the_drop_in(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    install(tmp_path, "--transport", "cuse", capsys=capsys)
    status, out, _ = install(tmp_path, "--transport", "fuse", capsys=capsys)
    assert status == 0 and "remove       /etc/systemd/system/backerd.service.d/" in out
    assert not (tmp_path / UNITS / "backerd.service.d").exists()


def test_dry_run_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = install(tmp_path, "--dry-run", "--transport", "cuse", capsys=capsys)
    assert status == 0 and "would install" in out
    assert tree(tmp_path) == {}
    install(tmp_path, "--transport", "cuse", capsys=capsys)
    before = tree(tmp_path)
    status, out, _ = install(tmp_path, "--dry-run", "--uninstall", capsys=capsys)
    assert status == 0 and out.count("would remove") == 7
    assert tree(tmp_path) == before


def test_a_broken_manifest_stops_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "var/lib/backerd/installed.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("not json")
    status, out, err = install(tmp_path, capsys=capsys)
    assert status == InstallError.exit_status
    assert err.strip().splitlines() == [
        f"backerd install-system: {manifest} is not a backerd install manifest; "
        "move it away to go on"]
    assert tree(tmp_path) == {"var/lib/backerd/installed.json": b"not json"}


def test_the_shipped_files_are_package_data() -> None:
    sources = apply.shipped_sources()
    assert set(sources) == {f.source for f in apply.FILES}
    assert all(text.strip() for text in sources.values())


def test_a_backerd_under_home_is_warned_about(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("backerd.cli.install_system.running_backerd",
                        lambda: ("/usr/local/bin/backerd", "/home/ann/venv/bin/backerd"))
    status, _, err = install(tmp_path, "--transport", "fuse", capsys=capsys)
    assert status == 0
    assert "warning: ExecStart runs /home/ann/venv/bin/backerd, under a home directory" in err
    unit = (tmp_path / UNITS / "backerd.service").read_text()
    assert "ExecStart=/usr/local/bin/backerd serve\n" in unit


def test_the_failure_hook_writes_one_status_line(tmp_path: Path) -> None:
    """Its command as systemd would run it: $$ is a $, %i the job's name."""
    unit = apply.shipped_sources()["systemd/backerd-backup-failed@.service"]
    (line,) = [x for x in unit.splitlines() if x.startswith("ExecStart=")]
    argv = shlex.split(line.removeprefix("ExecStart=").replace("$$", "$").replace("%i", "home"))
    result = subprocess.run(argv, env={"STATE_DIRECTORY": str(tmp_path), "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, check=True)
    logged = (tmp_path / "backup-failures.log").read_text().splitlines()
    assert logged == result.stdout.splitlines()
    assert len(logged) == 1
    assert logged[0].endswith(" backup job home failed (journalctl -u backerd-backup@home.service)")


@needs_analyze
def test_installing_into_the_system_root_runs_verify(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With DIR the system's root (here a stand-in), systemd checks the units, and a
    unit it rejects (one the administrator broke, left alone) is an error."""
    monkeypatch.setattr("backerd.cli.install_system.SYSTEM_ROOT", tmp_path)
    status, out, _ = install(tmp_path, "--transport", "fuse", capsys=capsys)
    assert status == 0 and "systemd-analyze verify: no complaints" in out
    unit = tmp_path / UNITS / "backerd-backup@.service"
    unit.write_text(unit.read_text().replace("ExecStart=/", "ExecStart=/nonexistent/"))
    status, out, err = install(tmp_path, "--transport", "fuse", capsys=capsys)
    assert status == InstallError.exit_status
    assert "backerd install-system: systemd-analyze verify: " in err
    assert "/nonexistent/" in err and "not executable" in err


def test_uninstall_with_nothing_installed_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = install(tmp_path, "--uninstall", capsys=capsys)
    assert (status, out, err) == (0, f"nothing installed under {tmp_path} (no manifest)\n", "")
    assert tree(tmp_path) == {}

"""daemon.trust: the daemon refuses a configuration or cassettes other users could change."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from backerd.cli import main
from backerd.daemon import trust
from backerd.daemon.trust import Entry, judge
from backerd.errors import UnsafePermissions

DIR, FILE = stat.S_IFDIR, stat.S_IFREG
ROOT_DIR = Entry("/", DIR | 0o755, 0, 0)


def chain(*entries: Entry) -> list[Entry]:
    return [ROOT_DIR, *entries]


# (the directory holding the file, the file) -> refused? written out by hand
CASES = [
    (Entry("/etc", DIR | 0o755, 0, 0), Entry("/etc/b.toml", FILE | 0o644, 0, 0), None),
    (Entry("/etc", DIR | 0o755, 0, 0), Entry("/etc/b.toml", FILE | 0o666, 0, 0), "every user"),
    (Entry("/etc", DIR | 0o777, 0, 0), Entry("/etc/b.toml", FILE | 0o644, 0, 0), "every user"),
    # sticky /tmp holding the file itself is no excuse: others may create names there
    (Entry("/tmp", DIR | 0o1777, 0, 0), Entry("/tmp/b.toml", FILE | 0o644, 0, 0), "every user"),
    (Entry("/etc", DIR | 0o775, 0, 0), Entry("/etc/b.toml", FILE | 0o644, 0, 0), None),
    (Entry("/etc", DIR | 0o775, 0, 26), Entry("/etc/b.toml", FILE | 0o644, 0, 0), "group 26"),
    (Entry("/etc", DIR | 0o755, 0, 0), Entry("/etc/b.toml", FILE | 0o664, 0, 26), "group 26"),
    (Entry("/etc", DIR | 0o755, 0, 0), Entry("/etc/b.toml", FILE | 0o644, 1000, 0), "uid 1000"),
    (Entry("/etc", DIR | 0o755, 1000, 0), Entry("/etc/b.toml", FILE | 0o644, 0, 0), "uid 1000"),
]


@pytest.mark.parametrize(("folder", "file", "refused"), CASES)
def test_the_rule(folder: Entry, file: Entry, refused: str | None) -> None:
    problem = judge(chain(folder, file), {0}, {0}, final=2)
    assert (problem is None) == (refused is None)
    if refused is not None:
        assert refused in (problem or "")


def test_a_sticky_directory_higher_up_is_fine_but_not_a_plain_writable_one() -> None:
    sticky = Entry("/tmp", DIR | 0o1777, 0, 0)
    plain = Entry("/tmp", DIR | 0o777, 0, 0)
    below = [Entry("/tmp/d", DIR | 0o755, 0, 0), Entry("/tmp/d/b.toml", FILE | 0o644, 0, 0)]
    assert judge(chain(sticky, *below), {0}, {0}, final=2) is None
    assert "every user" in (judge(chain(plain, *below), {0}, {0}, final=2) or "")


def test_the_daemons_own_user_and_group_are_trusted() -> None:
    entries = chain(Entry("/srv", DIR | 0o775, 1000, 1000),
                    Entry("/srv/b.toml", FILE | 0o664, 1000, 1000))
    assert judge(entries, {0}, {0}, final=2) is not None
    assert judge(entries, {0, 1000}, {0, 1000}, final=2) is None


@pytest.fixture
def safe_dir(tmp_path: Path) -> Path:
    home = tmp_path / "etc"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    return home


def test_check_config_on_real_files(safe_dir: Path) -> None:
    config = safe_dir / "b.toml"
    config.write_text("")
    config.chmod(0o644)
    image = safe_dir / "tapes" / "t.cassette"
    image.parent.mkdir()
    image.parent.chmod(0o755)
    trust.check_config(config, [image])  # nothing wrong
    image.parent.chmod(0o777)
    with pytest.raises(UnsafePermissions) as refused:
        trust.check_config(config, [image])
    assert refused.value.message == (
        f"refusing to use the cassette directory {image.parent}: {image.parent} is writable "
        f"by every user (chmod o-w {image.parent})")
    image.parent.chmod(0o755)
    config.chmod(0o646)
    with pytest.raises(UnsafePermissions, match="the configuration"):
        trust.check_config(config, [image])


def test_serve_refuses_a_world_writable_config_with_one_line(
        safe_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = safe_dir / "b.toml"
    config.write_text(f'state_dir = "{safe_dir}"\nruntime_dir = "{safe_dir}/run"\n')
    os.chmod(config, 0o666)
    status = main(["serve", "--config", str(config)])
    err = capsys.readouterr().err
    assert status == UnsafePermissions.exit_status == 2
    assert err.splitlines() == [
        f"backerd serve: refusing to use the configuration {config}: {config} is writable by "
        f"every user (chmod o-w {config})"]
    assert UnsafePermissions("x").errno == 1  # EPERM
    assert not (safe_dir / "run").exists()  # refused before anything was made

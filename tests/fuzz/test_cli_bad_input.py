"""Every subcommand, given bad input, fails with one line on stderr and a non-zero exit.

The subcommands and their options are enumerated from the argparse parser itself, so a
new command or option is covered without editing this file. For each command: an
option that does not exist; every path-valued argument given a directory where a file is
expected, a path under a regular file and a path that does not exist (these fail even
for root, unlike chmod 000); and every ``--config`` given a malformed file (bad TOML,
wrong types, unknown keys, a directory). The commands run in-process (``cli.main``) with
the daemon's directories pointed at a temporary directory, so nothing outside it is
touched; one subprocess run checks the installed entry point as well.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backerd.cli import build_parser, main

# Commands that would really run (serve a device, run the demo) given valid arguments:
# only arguments that must fail are tried on them.
LONG_RUNNING = {"serve", "demo"}
# Path options where a path that does not exist yet is valid (it is created; so is
# every --catalog).
CREATED_PATHS = {("serve", "cassette"), ("serve", "fuse_root"), ("plot", "output"),
                 ("cassette new", "image")}

BAD_CONFIGS = {
    "bad-toml": "not [ toml\n",
    "wrong-type-top": "fuse_max_pages = \"many\"\n",
    "wrong-type-unit": "[[unit]]\nmode = 7\n",
    "wrong-type-vcr": "[[unit]]\nvcr = 3\n",
    "unknown-top": "no_such_key = 1\n",
    "unknown-unit": "[[unit]]\nno_such_key = 1\n",
    "unknown-vcr": "[[unit]]\n[unit.vcr]\nno_such_key = 1\n",
    "unit-not-table": "unit = \"x\"\n",
    "bad-value": "transport = \"pigeon\"\n",
    "relative-dir": "state_dir = \"relative/dir\"\n",
    "binary": "\x00\x01\x02\xff",
}


def leaves(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
           ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs and words:
        yield " ".join(words), parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from leaves(sub, (*words, name))


COMMANDS = dict(leaves(build_parser()))


def required_arguments(parser: argparse.ArgumentParser, missing: Path) -> list[str]:
    """The least each command needs to get past argument parsing."""
    argv: list[str] = []
    for action in parser._actions:
        positional = not action.option_strings
        if not positional and not action.required:
            continue
        if positional and action.nargs == "?":
            continue
        if action.choices:
            value = str(next(iter(action.choices)))
        elif action.dest == "mode":
            value = "nls"
        elif action.type is int:
            value = "0"
        elif action.type is Path or action.dest == "image":
            value = str(missing)
        else:
            value = "x"
        argv += [value] if positional else [action.option_strings[-1], value]
    for group in parser._mutually_exclusive_groups:
        if group.required:  # one of them is needed: the first, with a placeholder
            action = group._group_actions[0]
            argv += [action.option_strings[-1],
                     str(missing) if action.type is Path else "x"]
    return argv


def path_arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if (a.type is Path or a.dest == "image") and a.dest != "help"]


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("BACKERD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("BACKERD_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("BACKERD_CONFIG", raising=False)
    (tmp_path / "a-file").write_bytes(b"x")
    (tmp_path / "a-dir").mkdir()
    with open(os.devnull) as null:
        monkeypatch.setattr(sys, "stdin", null)
        yield tmp_path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI in-process; any exception escaping it is a traceback for the user."""
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    return status, capsys.readouterr().err


def assert_one_line_error(argv: list[str], status: int, err: str) -> None:
    lines = err.strip().splitlines()
    assert status != 0, f"{argv} succeeded"
    assert len(lines) == 1, f"{argv}: stderr is not one line:\n{err}"
    assert "Traceback" not in err


def test_commands_are_enumerated() -> None:
    assert {"encode", "decode", "serve", "cassette info", "catalog ls", "plot"} <= set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unknown_option(command: str, sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = COMMANDS[command]
    argv = [*command.split(), "--no-such-option", *required_arguments(parser, sandbox / "no")]
    status, err = run(argv, capsys)
    assert_one_line_error(argv, status, err)
    assert "--no-such-option" in err


@pytest.mark.parametrize("command", sorted(c for c in COMMANDS if len(COMMANDS[c]._actions) > 1))
def test_missing_required_arguments(command: str, sandbox: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    parser = COMMANDS[command]
    if not required_arguments(parser, sandbox / "no"):
        pytest.skip(f"{command} has no required argument")
    status, err = run(command.split(), capsys)
    assert_one_line_error(command.split(), status, err)


def _path_cases() -> Iterator[tuple[str, str, str]]:
    for command, parser in sorted(COMMANDS.items()):
        for action in path_arguments(parser):
            for kind in ("directory", "under-a-file", "missing"):
                if kind == "missing" and ((command, action.dest) in CREATED_PATHS
                                          or action.dest == "catalog"):
                    continue
                if action.metavar == "DIR" and kind != "under-a-file":
                    continue  # a directory is what it wants (and a missing one is made)
                if command == "serve" and action.dest == "fuse_root":
                    continue  # a usable mountpoint: serve would serve
                yield command, action.dest, kind


@pytest.mark.parametrize(("command", "dest", "kind"), list(_path_cases()))
def test_unusable_path(command: str, dest: str, kind: str, sandbox: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    parser = COMMANDS[command]
    bad = {"directory": sandbox / "a-dir", "under-a-file": sandbox / "a-file" / "x",
           "missing": sandbox / "no" / "such"}[kind]
    action = next(a for a in parser._actions if a.dest == dest)
    argv = [*command.split(), *required_arguments(parser, sandbox / "no" / "image")]
    if action.option_strings:
        argv += [action.option_strings[-1], str(bad)]
    else:  # replace the positional's placeholder (or add an optional positional)
        placeholder = str(sandbox / "no" / "image")
        argv = [str(bad) if a == placeholder else a for a in argv]
        if str(bad) not in argv:
            argv.append(str(bad))
    if command == "plot" and dest != "output":
        argv += ["-o", str(sandbox / "out.png")]
    status, err = run(argv, capsys)
    assert_one_line_error(argv, status, err)


def _config_cases() -> Iterator[tuple[str, str]]:
    for command, parser in sorted(COMMANDS.items()):
        if any(a.dest == "config" for a in parser._actions):
            for name in [*BAD_CONFIGS, "directory", "under-a-file", "missing"]:
                yield command, name


@pytest.mark.parametrize(("command", "config"), list(_config_cases()))
def test_malformed_config(command: str, config: str, sandbox: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    parser = COMMANDS[command]
    if config in BAD_CONFIGS:
        path = sandbox / f"{config}.toml"
        path.write_bytes(BAD_CONFIGS[config].encode("latin-1"))
    else:
        path = {"directory": sandbox / "a-dir", "under-a-file": sandbox / "a-file" / "x.toml",
                "missing": sandbox / "no" / "such.toml"}[config]
    argv = [*command.split(), *required_arguments(parser, sandbox / "no" / "image"),
            "--config", str(path)]
    if any(a.dest == "unit" for a in parser._actions):
        argv += ["--unit", "0"]  # the configured unit, where an image could be given instead
    if command == "plot":
        argv += ["--last-read"]
    status, err = run(argv, capsys)
    assert_one_line_error(argv, status, err)
    assert str(path) in err, f"{argv}: the error does not name the configuration file: {err}"


def test_installed_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "BACKERD_STATE_DIR": str(tmp_path), "BACKERD_RUNTIME_DIR": str(tmp_path)}
    for argv in (["cassette", "info", str(tmp_path)], ["catalog", "ls", "--catalog",
                 str(tmp_path / "f" / "x")], ["status", "--socket", str(tmp_path)],
                 ["decode", "--mode", "nls", "--bogus"]):
        (tmp_path / "f").write_bytes(b"x")
        done = subprocess.run([sys.executable, "-m", "backerd", *argv], capture_output=True,
                              env=env, timeout=60)
        assert_one_line_error(argv, done.returncode, done.stderr.decode())


def test_a_catalog_path_naming_another_file_leaves_it_alone(
        sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # SQLite takes a file shorter than its header for an empty database and overwrites it.
    victim = sandbox / "notes.txt"
    victim.write_bytes(b"x")
    status, err = run(["catalog", "ls", "--catalog", str(victim)], capsys)
    assert_one_line_error([], status, err)
    assert victim.read_bytes() == b"x"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("argv", [["encode", "--mode", "nls", "--no-progress"],
                                  ["decode", "--mode", "nls"]])
def test_output_that_cannot_be_written_is_one_line(argv: list[str], tmp_path: Path) -> None:
    from backerd.format.recorder import encode_recording

    data = bytes(range(256)) * 200
    stdin = data if argv[0] == "encode" else encode_recording(data, "nls")
    with open("/dev/full", "wb") as full:
        done = subprocess.run([sys.executable, "-m", "backerd", *argv], input=stdin,
                              stdout=full, stderr=subprocess.PIPE, timeout=120)
    assert_one_line_error(argv, done.returncode, done.stderr.decode())
    assert "No space left" in done.stderr.decode()

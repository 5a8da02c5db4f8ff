"""The stream commands' progress line: only on a terminal, only for long inputs."""

from __future__ import annotations

import io

import pytest

from backerd.cli import progress as progress_module
from backerd.cli.progress import PROGRESS_FROM, Progress, input_size


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    term = FakeTerminal()
    monkeypatch.setattr(progress_module.sys, "stderr", term)
    p = Progress("encode nhs", total=4 * PROGRESS_FROM)
    p.update(PROGRESS_FROM // 2, 0)  # too early to bother
    assert term.getvalue() == ""
    p.update(2 * PROGRESS_FROM, 3 * PROGRESS_FROM)
    assert "encode nhs: 16.8 MB in, 25.2 MB out (50%)" in term.getvalue()
    p.done()
    assert term.getvalue().endswith("\r\x1b[K")


def test_no_progress_off_a_terminal_or_when_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = io.StringIO()
    monkeypatch.setattr(progress_module.sys, "stderr", plain)
    Progress("decode nls", None).update(4 * PROGRESS_FROM, 0)
    monkeypatch.setattr(progress_module.sys, "stderr", FakeTerminal())
    quiet = Progress("decode nls", None, enabled=False)
    quiet.update(4 * PROGRESS_FROM, 0)
    assert plain.getvalue() == "" and progress_module.sys.stderr.getvalue() == ""


def test_input_size(tmp_path) -> None:
    f = tmp_path / "in"
    f.write_bytes(b"x" * 1234)
    with open(f, "rb") as stream:
        assert input_size(stream) == 1234
    assert input_size(io.BytesIO(b"abc")) is None


def test_bar_shows_rate_and_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    from backerd.cli.progress import Bar

    now = [100.0]
    term = FakeTerminal()
    monkeypatch.setattr(progress_module.sys, "stderr", term)
    bar = Bar("rebuild", total=1000, unit="fields", clock=lambda: now[0])
    now[0] = 110.0  # 250 fields in 10 s: 25/s, 750 left: 30 s
    bar.update(250)
    assert "25%" in term.getvalue() and "25 fields/s" in term.getvalue()
    assert "ETA 0:00:30" in term.getvalue()
    bar.done()
    plain = io.StringIO()
    monkeypatch.setattr(progress_module.sys, "stderr", plain)
    Bar("scan", total=10).update(5)
    assert plain.getvalue() == ""

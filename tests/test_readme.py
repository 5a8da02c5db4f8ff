"""The README's quick start and .ci/run must agree: CI runs what users are told to run."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_has_exactly_two_commands() -> None:
    lines = quick_start_lines()
    assert len(lines) == 2
    assert "backerd demo" in lines[0]
    assert "pytest" in lines[1]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quick_start_lines()[1] in ci

"""Facts about the source tree that a reviewer can check by reading, checked here.

- no module over 700 lines;
- no import cycle between modules of the product (lazy imports inside functions count);
- no contract found by class name (``type(x).__name__ == ...``) or by ``getattr`` /
  ``hasattr`` with a literal attribute name: contracts are Protocols and isinstance;
- daemon/ holds wiring only: it never imports the codecs, which only the medium uses.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "backerd"
MAX_LINES = 700

# Codec modules: the medium turns tape blocks into recordings with them; the daemon
# only wires tasks, fds and signals around the medium.
CODEC_MODULES = (
    "backerd.format.recorder",
    "backerd.format.player",
    "backerd.format.record_decoder",
    "backerd.format.sector",
    "backerd.format.sync",
    "backerd.format.fields",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path) -> set[str]:
    """Every product module that ``name`` imports, at any depth of its code."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            # "from pkg import submodule" names a module; "from mod import thing" doesn't.
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and target != "backerd":
                found.add(target)
    return found


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for nxt in sorted(graph[node]):
            # A package's __init__ importing its own submodules is not a cycle of modules.
            if node.startswith(nxt + "."):
                continue
            if colour[nxt] == grey:
                return stack[stack.index(nxt):] + [nxt]
            if colour[nxt] == white and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        colour[node] = black
        return None

    for start in sorted(graph):
        if colour[start] == white and (cycle := visit(start)):
            return cycle
    return None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_at_most_700_lines(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


def test_no_import_cycle() -> None:
    assert find_cycle(GRAPH) is None, " -> ".join(find_cycle(GRAPH) or [])


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def name_lookups(tree: ast.AST) -> list[str]:
    """Contracts found by name: type(x).__name__ compared, getattr/hasattr("literal")."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                if isinstance(side, ast.Attribute) and side.attr in ("__name__", "__qualname__"):
                    found.append(f"line {node.lineno}: compares {side.attr}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            found.append(f"line {node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
    return found


def test_name_lookup_detector_sees_both_shapes() -> None:
    tree = ast.parse('type(e).__name__ == "X"\ngetattr(m, "flush", None)\ngetattr(m, name)\n')
    assert len(name_lookups(tree)) == 2


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_contract_found_by_name(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text())
    assert name_lookups(tree) == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("backerd.daemon")))
def test_daemon_holds_no_medium_logic(name: str) -> None:
    codecs = sorted(m for m in GRAPH[name] if m in CODEC_MODULES)
    assert codecs == [], f"{name} imports codec modules {codecs}"

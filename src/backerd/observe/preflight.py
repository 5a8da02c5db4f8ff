"""Preflight: will a backup of N bytes succeed on the cassette in the deck? (pure rules)

Theory of operation: ``Facts`` is what the daemon knows of a unit (label, tab, room,
wear, inventory state); ``RULES`` is a table of questions, each a function of the facts
returning (ok, detail). ``answer`` runs them all: one screen of answers, and the backup
would fail if any answer is not ok. ``capacity_bytes`` inverts ``fields_needed`` to tell
how many user bytes fit in the fields left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backerd.format.fields import bytes_within
from backerd.format.params import ModeParams


@dataclass(frozen=True)
class Facts:
    loaded: bool
    label: str | None  # None: unlabelled
    expected_label: str | None  # what the operator asked for (--label), None: any
    write_protected: bool
    free_fields: int
    free_bytes: int
    need_bytes: int | None
    passes: int
    wear_limit: int
    state: str  # catalog inventory state ("blank", "active", "full", "expired", "retired")
    fps: int


@dataclass(frozen=True)
class Answer:
    question: str
    ok: bool
    detail: str


def _label(f: Facts) -> tuple[bool, str]:
    if not f.loaded:
        return False, "no cassette loaded"
    if f.expected_label is not None and f.label != f.expected_label:
        return False, f"loaded {f.label or 'an unlabelled cassette'}, wanted {f.expected_label}"
    if f.label is None:
        return True, "unlabelled (blank or written by the original driver)"
    return True, f"label {f.label}"


def _writable(f: Facts) -> tuple[bool, str]:
    if f.write_protected:
        return False, "the write-protect tab is set"
    if f.state in ("retired", "expired", "full"):
        return False, f"the catalog marks this cassette {f.state}"
    return True, "tab open" + (f", catalog state {f.state}" if f.state else "")


def _room(f: Facts) -> tuple[bool, str]:
    left = f"{f.free_bytes:,} bytes ({f.free_fields // max(f.fps, 1) // 60} min of tape) left"
    if f.need_bytes is None:
        return f.free_bytes > 0, left
    if f.need_bytes > f.free_bytes:
        return False, f"need {f.need_bytes:,} bytes, only {left}"
    return True, f"need {f.need_bytes:,} bytes, {left}"


def _wear(f: Facts) -> tuple[bool, str]:
    text = f"{f.passes} of {f.wear_limit} passes"
    return (f.passes < f.wear_limit), text + (" (worn out)" if f.passes >= f.wear_limit else "")


RULES: tuple[tuple[str, Callable[[Facts], tuple[bool, str]]], ...] = (
    ("right cassette loaded?", _label),
    ("writable?", _writable),
    ("room for the backup?", _room),
    ("inside its wear limit?", _wear),
)


def answer(facts: Facts) -> list[Answer]:
    return [Answer(q, *rule(facts)) for q, rule in RULES]


def capacity_bytes(params: ModeParams, fields: int) -> int:
    """Most user bytes one recording of at most ``fields`` fields holds."""
    return max(0, bytes_within(params, fields))

"""An independent reader of the Prometheus text exposition format (0.0.4), for tests.

It follows the format's grammar, not backerd's writer: families are contiguous, HELP and
TYPE at most once and before the samples, label values quoted with \\\\, \\" and \\n
escapes, no timestamps (the textfile collector rejects them), a final newline, and the
lint rules of ``promtool check metrics`` that apply (counters end in ``_total``, names in
snake_case).
"""

from __future__ import annotations

import math
import re

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\\n]|\\[\\"n])*)"\s*(,|\Z)')


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), s)


def _value(text: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}[text]
    return float(text)


def parse(text: str) -> dict[str, dict]:
    """{family: {"type", "help", "samples": [(labels dict, value)]}}; raises ValueError."""
    if not text.endswith("\n"):
        raise ValueError("no final newline")
    families: dict[str, dict] = {}
    closed: set[str] = set()
    current: str | None = None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.match(name):
                    raise ValueError(f"line {n}: bad name {name!r}")
                fam = families.setdefault(name, {"type": None, "help": None, "samples": []})
                key = parts[1].lower()
                if fam[key] is not None or name in closed or fam["samples"]:
                    raise ValueError(f"line {n}: {parts[1]} for {name} repeated or late")
                if current and current != name:
                    closed.add(current)
                current = name
                fam[key] = parts[3] if len(parts) > 3 else ""
                if key == "type" and fam[key] not in (
                        "counter", "gauge", "histogram", "summary", "untyped"):
                    raise ValueError(f"line {n}: bad type {fam[key]!r}")
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?\Z", line)
        if not m:
            raise ValueError(f"line {n}: not a sample: {line!r}")
        name, _, body, value, stamp = m.groups()
        if stamp:
            raise ValueError(f"line {n}: sample has a timestamp")
        labels: dict[str, str] = {}
        rest = body or ""
        while rest.strip():
            lm = LABEL.match(rest)
            if not lm:
                raise ValueError(f"line {n}: bad labels {body!r}")
            if lm.group(1) in labels:
                raise ValueError(f"line {n}: duplicate label {lm.group(1)}")
            labels[lm.group(1)] = _unescape(lm.group(2))
            rest = rest[lm.end():]
        if name in closed or (current is not None and current != name):
            raise ValueError(f"line {n}: family {name} is not contiguous")
        current = name
        fam = families.setdefault(name, {"type": None, "help": None, "samples": []})
        fam["samples"].append((labels, _value(value)))
    for name, fam in families.items():
        if fam["type"] == "counter" and not name.endswith("_total"):
            raise ValueError(f"counter {name} does not end in _total")
        if name != name.lower():
            raise ValueError(f"{name} is not snake_case")
    return families

"""The monitor's view of one status poll: plain text lines per unit (pure).

Theory of operation: ``unit_lines`` turns a unit's ``status --json`` entry, the previous
one and the seconds between them into lines: cassette and label, transfer state and
position, throughput (the change of the byte totals over the interval), signal health
(the driver counters of the recording in progress) and the time left on the cassette.
The terminal edge redraws them in place; without a terminal one line per unit is
printed per poll (``plain_line``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _rate(unit: Mapping[str, Any], prev: Mapping[str, Any] | None, seconds: float,
          key: str) -> float:
    if prev is None or seconds <= 0:
        return 0.0
    now = (unit.get("totals") or {}).get(key, 0)
    before = (prev.get("totals") or {}).get(key, 0)
    return max(now - before, 0) / seconds


def _hms(seconds: int | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def summary(unit: Mapping[str, Any], prev: Mapping[str, Any] | None,
            seconds: float) -> dict[str, Any]:
    counters = (unit.get("counters") or {}).get("current") or {}
    label = unit.get("cassette_label")
    pos = unit.get("position") or {}
    return {
        "unit": unit.get("number"),
        "label": label.get("text") if isinstance(label, Mapping) else None,
        "state": counters.get("state") or "STOPPED",
        "mode": unit.get("mode"),
        "file": pos.get("file"), "block": pos.get("block"),
        "counter": unit.get("counter"),
        "write_rate": _rate(unit, prev, seconds, "write_bytes_total"),
        "read_rate": _rate(unit, prev, seconds, "read_bytes_total"),
        "byte_errors": counters.get("byte_errors"),
        "bad_sectors": counters.get("bad_sectors"),
        "worst_block": counters.get("worst_block"), "parity": counters.get("parity"),
        "worst_key": counters.get("worst_key"), "key_length": counters.get("key_length"),
        "framing_errors": counters.get("framing_errors"),
        "time_left": unit.get("time_left_seconds"),
        "passes": (unit.get("wear") or {}).get("passes"),
        "wear_limit": (unit.get("wear") or {}).get("limit"),
    }


def _v(value: Any) -> str:
    return "-" if value is None else str(value)


def unit_lines(unit: Mapping[str, Any], prev: Mapping[str, Any] | None,
               seconds: float) -> list[str]:
    s = summary(unit, prev, seconds)
    label = s["label"] or "(unlabelled)"
    return [
        f"unit {s['unit']}  {label}  {s['state']} {_v(s['mode'])}  file {_v(s['file'])} "
        f"block {_v(s['block'])}  counter {_v(s['counter'])}",
        f"  throughput  write {s['write_rate'] / 1e3:8.1f} kB/s  read "
        f"{s['read_rate'] / 1e3:8.1f} kB/s",
        f"  signal      byte errors {_v(s['byte_errors'])}  bad sectors {_v(s['bad_sectors'])}"
        f"  worst block {_v(s['worst_block'])}/{_v(s['parity'])}  worst key "
        f"{_v(s['worst_key'])}/{_v(s['key_length'])}  framing {_v(s['framing_errors'])}",
        f"  cassette    {_hms(s['time_left'])} of tape left  wear {_v(s['passes'])}/"
        f"{_v(s['wear_limit'])} passes",
    ]


def plain_line(unit: Mapping[str, Any], prev: Mapping[str, Any] | None,
               seconds: float) -> str:
    s = summary(unit, prev, seconds)
    fields = ["unit", "label", "state", "mode", "file", "block", "counter", "byte_errors",
              "bad_sectors", "worst_block", "worst_key", "framing_errors", "time_left",
              "passes"]
    parts = [f"{k}={_v(s[k])}" for k in fields]
    parts += [f"write_Bps={s['write_rate']:.0f}", f"read_Bps={s['read_rate']:.0f}"]
    return " ".join(parts)

"""Prometheus text-format metrics for node_exporter's textfile collector.

Theory of operation: ``METRICS`` is the table of every metric backerd exports (name, type,
help), named after node_exporter's SCSI tape collector with a ``backerd_`` prefix.
``render`` turns samples into exposition text (HELP and TYPE lines, escaped label values,
no timestamps, a final newline); ``write_atomic`` replaces the file through a temporary
file and rename in the same directory, so the collector never reads half a file.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from backerd.errors import UsageError

# name -> (type, help)
METRICS: dict[str, tuple[str, str]] = {
    "backerd_build_info": ("gauge", "backerd version, always 1"),
    "backerd_tape_write_bytes_total": ("counter", "Bytes written to tape"),
    "backerd_tape_read_bytes_total": ("counter", "Bytes read from tape"),
    "backerd_tape_writes_completed_total": ("counter", "Write requests completed"),
    "backerd_tape_reads_completed_total": ("counter", "Read requests completed"),
    "backerd_tape_write_time_seconds_total": ("counter", "Seconds spent writing"),
    "backerd_tape_read_time_seconds_total": ("counter", "Seconds spent reading"),
    "backerd_tape_filemarks_written_total": ("counter", "Filemarks written"),
    "backerd_tape_corrected_symbols_total": ("counter", "Symbols corrected by the codes"),
    "backerd_tape_unrecoverable_blocks_total": ("counter", "Blocks lost after correction"),
    "backerd_tape_sync_losses_total": ("counter", "Framing errors (field sync lost)"),
    "backerd_tape_position_file": ("gauge", "Current st file number"),
    "backerd_tape_position_block": ("gauge", "Current st block number in the file"),
    "backerd_cassette_info": ("gauge", "The loaded cassette, always 1"),
    "backerd_cassette_capacity_bytes": ("gauge", "Cassette capacity in the current mode"),
    "backerd_cassette_used_bytes": ("gauge", "Bytes recorded on the cassette"),
    "backerd_cassette_passes": ("gauge", "Head passes the cassette has seen"),
    "backerd_job_last_success_timestamp_seconds": ("gauge", "End of the last good job"),
    "backerd_job_last_duration_seconds": ("gauge", "Duration of the last job"),
    "backerd_job_last_bytes": ("gauge", "Bytes of the last job"),
    "backerd_job_last_exit_code": ("gauge", "Exit code of the last job"),
    "backerd_job_skipped_unchanged_total": ("counter", "Jobs skipped as unchanged"),
    "backerd_verify_mismatches_total": ("counter", "Verify mismatches found"),
}


@dataclass(frozen=True)
class Sample:
    name: str
    value: float
    labels: Mapping[str, str] | None = None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def render(samples: Iterable[Sample]) -> str:
    """Exposition text, grouped by metric in table order (one HELP/TYPE per name)."""
    by_name: dict[str, list[Sample]] = {}
    for s in samples:
        if s.name not in METRICS:
            raise UsageError(f"unknown metric {s.name!r}")
        by_name.setdefault(s.name, []).append(s)
    lines: list[str] = []
    for name, (kind, help_text) in METRICS.items():
        if name not in by_name:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for s in by_name[name]:
            labels = ""
            if s.labels:
                labels = "{" + ",".join(f'{k}="{_escape(str(v))}"'
                                        for k, v in sorted(s.labels.items())) + "}"
            lines.append(f"{name}{labels} {_number(s.value)}")
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (temporary file in the same directory + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def unit_samples(unit: Mapping[str, object]) -> list[Sample]:
    """Samples of one unit from its ``status --json`` entry (see observe.counters)."""
    number = str(unit.get("number", 0))
    base = {"unit": number}
    out: list[Sample] = []
    totals = unit.get("totals")
    if isinstance(totals, Mapping):
        for key, value in totals.items():
            name = f"backerd_tape_{key}"
            if name in METRICS and isinstance(value, int | float):
                out.append(Sample(name, value, base))
    position = unit.get("position")
    if isinstance(position, Mapping):
        for key in ("file", "block"):
            value = position.get(key)
            if isinstance(value, int):
                out.append(Sample(f"backerd_tape_position_{key}", value, base))
    cassette = unit.get("cassette_label")
    if isinstance(cassette, Mapping):
        info = {"label": str(cassette.get("text", "")), "uuid": str(cassette.get("uuid", "")),
                "mode": str(unit.get("mode", ""))}
        out.append(Sample("backerd_cassette_info", 1, {**base, **info}))
    for key in ("capacity_bytes", "used_bytes", "passes"):
        value = unit.get(f"cassette_{key}")
        if isinstance(value, int | float):
            out.append(Sample(f"backerd_cassette_{key}", value, base))
    return out

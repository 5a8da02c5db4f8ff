"""Metrics text: promtool when installed, otherwise an independent format reader."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from backerd.observe.counters import Totals  # noqa: E402
from backerd.observe.metrics import METRICS, Sample, render, unit_samples, write_atomic  # noqa: E402
from testkit.promcheck import parse

OPS_NOTES_NAMES = [
    "backerd_tape_write_bytes_total",
    "backerd_tape_read_bytes_total",
    "backerd_tape_writes_completed_total",
    "backerd_tape_reads_completed_total",
    "backerd_tape_write_time_seconds_total",
    "backerd_tape_read_time_seconds_total",
    "backerd_tape_filemarks_written_total",
    "backerd_tape_corrected_symbols_total",
    "backerd_tape_unrecoverable_blocks_total",
    "backerd_tape_sync_losses_total",
    "backerd_tape_position_file",
    "backerd_tape_position_block",
    "backerd_cassette_info",
    "backerd_cassette_capacity_bytes",
    "backerd_cassette_used_bytes",
    "backerd_cassette_passes",
    "backerd_job_last_success_timestamp_seconds",
    "backerd_job_last_duration_seconds",
    "backerd_job_last_bytes",
    "backerd_job_last_exit_code",
    "backerd_job_skipped_unchanged_total",
    "backerd_verify_mismatches_total",
    "backerd_build_info",
]


def unit_status() -> dict:
    totals = Totals()
    totals.note_write(10240, 0.5)
    totals.note_read(512, 0.25)
    totals.note_recording_read({"byte_errors": 7, "bad_sectors": 1, "framing_errors": 2})
    return {"number": 0, "mode": "nhs", "totals": totals.as_dict(),
            "position": {"file": 3, "block": 12},
            "cassette_label": {"text": 'odd "label"\\ \n2', "uuid": "u-1"},
            "cassette_capacity_bytes": 2_000_000_000, "cassette_used_bytes": 10240,
            "cassette_passes": 4}


def test_the_table_has_exactly_the_ops_notes_names() -> None:
    assert sorted(METRICS) == sorted(OPS_NOTES_NAMES)


def test_rendered_text_parses_independently() -> None:
    text = render([Sample("backerd_build_info", 1, {"version": "0.1.0"}),
                   *unit_samples(unit_status())])
    families = parse(text)
    assert families["backerd_tape_write_bytes_total"]["samples"] == [({"unit": "0"}, 10240)]
    assert families["backerd_tape_corrected_symbols_total"]["samples"][0][1] == 7
    assert families["backerd_tape_read_time_seconds_total"]["samples"][0][1] == 0.25
    [(labels, value)] = families["backerd_cassette_info"]["samples"]
    assert labels["label"] == 'odd "label"\\ \n2' and value == 1
    assert families["backerd_tape_position_file"]["type"] == "gauge"


def test_the_reader_rejects_what_the_collector_rejects() -> None:
    for bad in ["x 1", "# TYPE x_total counter\nx_total 1 1700000000\n",
                "# TYPE x counter\nx 1\n", 'x{a="b} 1\n', "a 1\nb 1\na 2\n"]:
        with pytest.raises(ValueError):
            parse(bad)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_check_metrics() -> None:
    text = render(unit_samples(unit_status()))
    result = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                            capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_write_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "backerd.prom"
    texts = [render([Sample("backerd_cassette_passes", i, {"unit": "0"})]) for i in range(2)]
    write_atomic(path, texts[0])
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add(path.read_text())

    t = threading.Thread(target=reader)
    t.start()
    for i in range(200):
        write_atomic(path, texts[i % 2])
    stop.set()
    t.join()
    assert seen <= set(texts)
    assert [p.name for p in path.parent.iterdir()] == ["backerd.prom"]


def test_unknown_metric_is_refused() -> None:
    with pytest.raises(Exception, match="unknown metric"):
        render([Sample("backerd_nope", 1)])

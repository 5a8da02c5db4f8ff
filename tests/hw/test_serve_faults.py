"""Faults through ``backerd serve --emulate``: what the user sees, and the counters."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from testkit.hwtest import new_daemon
from testkit.systemtest import MISSING

pytestmark = pytest.mark.skipif(bool(MISSING), reason="needs " + ", ".join(MISSING))


@pytest.mark.parametrize("kind", ["isa", "parport"])
def test_underrun_counted_in_status_and_data_survives(tmp_path: Path, kind: str) -> None:
    d = new_daemon(tmp_path, kind, extra='late_service = "transmit:800:700"\n')
    d.start()
    try:
        data = tmp_path / "data"
        data.write_bytes(random.Random(3).randbytes(600_000))
        d.run("dd", f"if={data}", f"of={d.rew}", "bs=10240")
        counters = d.status()["units"][0]["hardware"]["counters"]
        assert counters["underruns"] >= 1 and counters["stale_bytes"] > 0
        back = tmp_path / "back"
        d.run("dd", f"if={d.rew}", f"of={back}", "bs=10240")
        assert back.read_bytes() == data.read_bytes()
    finally:
        d.stop()


def test_overrun_counted_in_status_and_read_fails(tmp_path: Path) -> None:
    d = new_daemon(tmp_path, "isa", extra='late_service = "receive:5500:900"\n')
    d.start()
    try:
        data = tmp_path / "data"
        data.write_bytes(random.Random(4).randbytes(400_000))
        d.run("dd", f"if={data}", f"of={d.rew}", "bs=10240")
        result = d.run("dd", f"if={d.rew}", "of=/dev/null", "bs=10240", ok=False)
        assert result.returncode != 0 and b"Input/output error" in result.stderr
        counters = d.status()["units"][0]["hardware"]["counters"]
        assert counters["overruns"] >= 1 and counters["lost_bytes"] > 0
        assert counters["underruns"] == 0
    finally:
        d.stop()

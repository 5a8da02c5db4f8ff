"""``backerd demo`` end to end: it must run the real device path and succeed."""

from __future__ import annotations

import subprocess
import sys

from testkit.systemtest import DEVICE_KIND, MODE, TOOL_TIMEOUT


def test_demo_writes_lists_and_restores(no_shared_daemon: None) -> None:
    argv = [sys.executable, "-m", "backerd", "demo", "--mode", MODE]
    if DEVICE_KIND == "cuse":
        argv.append("--cuse")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "offline" not in out  # the device was served, no fallback
    assert "File number=2, block number=0" in out  # after two archives
    assert "photos/data.bin" in out and "documents/data.bin" in out
    assert "identical" in out and "exited with status 0" in out
    assert "Demo finished" in out

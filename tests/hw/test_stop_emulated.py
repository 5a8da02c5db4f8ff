"""The daemon told to stop while a unit on an emulated card is still writing a filemark.

A SIGTERM often comes while a writer's close(2) is still being served: the filemark
ends the recording, and the card sends what is queued and the padding at tape speed.
The stop must let that finish: the daemon keeps servicing the card until every unit is
shut down. Here ``serve`` runs in process on a real FUSE mount, dd writes to the
rewinding node from a subprocess, and the stop (the cancellation a stop signal causes)
comes exactly when the filemark hands the end of the recording to the card. The
emulator runs in fast mode, whose clock only moves while the service task runs: without
servicing, the close would wait until its deadline and fail with ETIMEDOUT.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from backerd.daemon.config import Config, UnitConfig
from backerd.daemon.node import Unit
from backerd.daemon.service import open_unit, serve
from backerd.hw.unit import HardwareUnit
from backerd.medium import BackerMedium
from backerd.tape.medium import END_OF_DATA, FILEMARK
from backerd.vcr.sim import Cassette, SimDeck
from testkit.systemtest import DEVICE_KIND, MISSING

pytestmark = pytest.mark.skipif(bool(MISSING), reason="needs " + ", ".join(MISSING))

MODE = "nhs"


def read_back(path: Path) -> tuple[bytes, list[object]]:
    """File 0 of the cassette through the plain simulated VCR, and the marks after it."""
    cassette = Cassette.open(path)
    medium = BackerMedium(SimDeck(cassette), mode=MODE)
    try:
        data = bytearray()
        while isinstance(block := medium.read_block(1 << 20), bytes):
            data += block
        return bytes(data), [block, medium.read_block(1 << 20)]
    finally:
        medium.close()
        cassette.close()


@pytest.mark.parametrize("kind", ["isa", "parport"])
def test_stop_while_a_filemark_is_written_finishes_it(
        tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    data = random.Random(12).randbytes(40 * 10240)
    source = tmp_path / "data"
    source.write_bytes(data)
    cassette = tmp_path / "tape.cassette"
    unit_config = UnitConfig(number=0, cassette=cassette, deck=f"emulated-{kind}", mode=MODE)
    config = Config(state_dir=tmp_path / "state", runtime_dir=tmp_path / "run",
                    fuse_root=tmp_path / "dev", units=(unit_config,), transport="fuse")
    stop: list[Callable[[], None]] = []
    stopped_at: list[str] = []

    def opener(uc: UnitConfig) -> Unit:
        unit = open_unit(uc)
        assert isinstance(unit, HardwareUnit)
        finish = unit.modem.finish

        def finish_after_stop(timeout: float) -> None:
            if not stopped_at:  # the filemark's, in the writer's close(2)
                stopped_at.append(str(unit.open_node))
                trio.from_thread.run_sync(stop[0], trio_token=token)
            finish(timeout)

        unit.modem.finish = finish_after_stop  # type: ignore[method-assign]
        return unit

    async def main() -> None:
        nonlocal token
        token = trio.lowlevel.current_trio_token()
        daemon = trio.CancelScope()  # what a stop signal cancels
        stop.append(daemon.cancel)

        async def run_daemon(task_status: trio.TaskStatus[None]) -> None:
            with daemon:
                await serve(config, opener=opener, task_status=task_status)

        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                await nursery.start(run_daemon)
                dd = await trio.run_process(
                    ["dd", f"if={source}", f"of={config.fuse_root / 'backer0'}", "bs=10240"],
                    capture_stderr=True, check=False)
        assert dd.returncode == 0, dd.stderr.decode(errors="replace")

    token: trio.lowlevel.TrioToken | None = None
    caplog.set_level(logging.INFO, logger="backerd")
    trio.run(main)
    assert stopped_at == ["backer0"]  # stopped while the writer was closing
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == []
    got, marks = read_back(cassette)
    assert got == data
    assert marks == [FILEMARK, END_OF_DATA]



def in_fuse_flush(pid: int) -> bool:
    """Whether process ``pid`` waits in close(2) for the FUSE FLUSH answer (its kernel
    stack, which root may read)."""
    return "fuse_flush" in Path(f"/proc/{pid}/stack").read_text()


def test_sigterm_during_a_real_time_close_exits_0_with_the_file_and_filemark(
        tmp_path: Path) -> None:
    """``serve --emulate isa --realtime``: SIGTERM while a writer's close(2) records the
    end of the file at tape speed (about 2 s for these 20 records) ends with exit 0, the
    close succeeding, and the file and its filemark on the cassette."""
    import signal
    import subprocess
    import sys
    import time

    from testkit.hwtest import new_daemon

    if DEVICE_KIND != "fuse":
        pytest.skip("finds the writer in close(2) by the FUSE FLUSH it waits for")
    d = new_daemon(tmp_path, "isa", realtime=True)
    data = random.Random(13).randbytes(20 * 10240)
    source = tmp_path / "data"
    source.write_bytes(data)
    d.start()
    try:
        writer = subprocess.Popen(
            [sys.executable, "-c", "import os, sys\n"
             f"fd = os.open({d.rew!r}, os.O_WRONLY)\n"
             f"data = open({str(source)!r}, 'rb').read()\n"
             "for i in range(0, len(data), 10240):\n"
             "    os.write(fd, data[i:i + 10240])\n"
             "os.close(fd)\n"],
            stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not in_fuse_flush(writer.pid):  # the writes only fill the medium's buffer
            assert writer.poll() is None, "the writer closed before the stop"
            assert time.monotonic() < deadline, "the writer never reached its close"
            time.sleep(0.01)
        rc = d.signal_and_wait(signal.SIGTERM)
        _, err = writer.communicate(timeout=60)
    finally:
        d.kill()
    log = d.log.read_text()
    assert rc == 0, d.log_tail()
    assert writer.returncode == 0, err.decode(errors="replace")
    assert "SIGTERM received: stopping" in log
    assert "failed" not in log and "timed out" not in log, d.log_tail()
    got, marks = read_back(d.cassette)
    assert got == data
    assert marks == [FILEMARK, END_OF_DATA]

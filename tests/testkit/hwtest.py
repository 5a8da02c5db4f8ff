"""Helpers of the hardware tests: ``serve --emulate`` daemons and service threads."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from testkit.systemtest import DEVICE_KIND, MISSING, Daemon


@dataclass
class EmulatingDaemon(Daemon):
    emulate: str = "isa"
    realtime: bool = False

    def backerd(self, *args: str) -> list[str]:
        cmd = super().backerd(*args)
        if args and args[0] == "serve":
            cmd += ["--emulate", self.emulate] + (["--realtime"] if self.realtime else [])
        return cmd


def new_daemon(home: Path, emulate: str, mode: str = "nhs", realtime: bool = False,
               extra: str = "") -> EmulatingDaemon:
    state, run = home / "state", home / "run"
    state.mkdir(exist_ok=True)
    config_file = home / "backerd.toml"
    config_file.write_text(f'transport = "{DEVICE_KIND}"\n[[unit]]\nmode = "{mode}"\n{extra}')
    env = dict(os.environ, BACKERD_STATE_DIR=str(state), BACKERD_RUNTIME_DIR=str(run))
    env.pop("NOTIFY_SOCKET", None)
    return EmulatingDaemon(tmp=home, cassette=home / "tape.cassette", fuse_root=home / "dev",
                           config_file=config_file, env=env, log=home / "backerd.log",
                           emulate=emulate, realtime=realtime)


class ServiceThread:
    """Runs a unit's service task on trio in a thread (what the daemon's nursery does)."""

    def __init__(self, modem, clock, **kwargs) -> None:  # noqa: ANN001
        self._stop = threading.Event()
        self.error: BaseException | None = None

        def main() -> None:
            from backerd.hw.service import run_service

            async def run() -> None:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(lambda: run_service(modem, clock, **kwargs))
                    while not self._stop.is_set():
                        await trio.sleep(0.005)
                    nursery.cancel_scope.cancel()

            try:
                trio.run(run)
            except BaseException as exc:  # reported by stop()
                self.error = exc

        self._thread = threading.Thread(target=main, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        if self.error is not None:
            raise self.error


def running_daemon(home: Path, emulate: str, **options: object) -> Iterator[EmulatingDaemon]:
    """A started ``serve --emulate`` daemon for a fixture; stopped cleanly (exit 0) after."""
    if MISSING:
        pytest.skip("needs " + ", ".join(MISSING))
    d = new_daemon(home, emulate, **options)  # type: ignore[arg-type]
    d.start()
    try:
        yield d
    finally:
        if d.proc is not None:
            rc = d.stop()
            assert rc == 0, f"backerd exited {rc}:\n{d.log_tail()}"
        d.unmount()

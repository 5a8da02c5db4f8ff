"""``backerd serve --emulate`` with the VCR pressed by an operator or through lircd.

The emulated VCR moves only when its control has done its part: the operator's
``backerd deck ready`` (a person pressing the button), or lircd accepting the IR code.
The operator here is the test, using the real CLI: it sees each prompt in ``backerd
status --json`` and in the text of ``backerd status``, and acknowledges it.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testkit.fakelircd import FakeLircd
from testkit.hwtest import EmulatingDaemon, new_daemon, running_daemon
from testkit.systemtest import MISSING, same_tree


def operated_daemon(home: Path, emulate: str, vcr: str) -> Iterator[EmulatingDaemon]:
    yield from running_daemon(home, emulate, extra=f"[unit.vcr]\n{vcr}")


class Background:
    """A tool run in a thread (it blocks until the VCR has done what it needs)."""

    def __init__(self, work: Callable[[], object]) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], object]) -> None:
        try:
            work()
        except BaseException as exc:  # re-raised by the test
            self.error = exc

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self) -> None:
        self._thread.join(120)
        if self.error is not None:
            raise self.error


def operate(d: EmulatingDaemon, job: Background, deadline: float = 180.0) -> list[dict]:
    """Play the operator until ``job`` ends: every prompt seen is acknowledged."""
    seen: list[dict] = []
    sock = ["--socket", str(d.control_socket)]
    end = time.monotonic() + deadline
    while job.running:
        assert time.monotonic() < end, f"the job never finished:\n{d.log_tail()}"
        waiting = d.status()["units"][0]["vcr"]["waiting"]
        if waiting is None:
            time.sleep(0.05)
            continue
        if not seen:  # the first prompt is also in the human-readable status
            text = d.run(*d.backerd("status", *sock)).stdout.decode()
            assert f"OPERATOR, request {waiting['number']}: {waiting['text']}" in text
        seen.append(waiting)
        out = d.run(*d.backerd("deck", "ready", "--unit", "0", *sock)).stdout.decode()
        assert "acknowledged" in out
    job.join()
    return seen


def finish(d: EmulatingDaemon) -> list[dict]:
    """Acknowledge what the drive still asks after the tool exited (the STOP at the end
    of a playback comes while the node is released); returns those prompts."""
    seen: list[dict] = []
    for _ in range(20):
        waiting = d.status()["units"][0]["vcr"]["waiting"]
        if waiting is None:
            time.sleep(0.2)
            if d.status()["units"][0]["vcr"]["waiting"] is None:
                return seen
            continue
        seen.append(waiting)
        d.run(*d.backerd("deck", "ready", "--unit", "0", "--socket", str(d.control_socket)))
    raise AssertionError(f"the operator is asked without end: {seen}")


@pytest.fixture
def manual_daemon(tmp_path: Path) -> Iterator[EmulatingDaemon]:
    yield from operated_daemon(tmp_path, "isa",
                               'control = "manual"\nack_timeout = 120.0\n')


def test_manual_operator_round_trip(manual_daemon: EmulatingDaemon, tree: Path) -> None:
    d = manual_daemon
    status = d.status()["units"][0]
    assert status["vcr"] == {"control": "manual", "waiting": None, "last": None}
    writing = Background(lambda: d.run("tar", "-cf", d.rew, "-C", tree.parent, tree.name))
    prompts = operate(d, writing)
    assert [p["motion"] for p in prompts if p["action"] == "press"][:1] == ["record"]
    assert all(p["text"].endswith("`backerd deck ready --unit 0`") for p in prompts)
    numbers = [p["number"] for p in prompts]
    assert numbers == sorted(set(numbers))  # each prompt acknowledged once

    out = d.tmp / "out"
    out.mkdir()
    reading = Background(lambda: d.run("tar", "-xf", d.rew, "-C", out))
    prompts = operate(d, reading)
    assert "play" in [p.get("motion") for p in prompts]
    assert same_tree(tree, out / "src") == []
    late = finish(d)
    assert all(p["motion"] == "stop" for p in late), late
    vcr = d.status()["units"][0]["vcr"]
    assert vcr["waiting"] is None and vcr["last"].endswith("acknowledged")


def test_manual_cancel_fails_the_write(manual_daemon: EmulatingDaemon, tree: Path) -> None:
    d = manual_daemon
    sock = ["--socket", str(d.control_socket)]
    result: dict = {}
    writing = Background(lambda: result.update(
        rc=d.run("tar", "-cf", d.nrew, "-C", tree.parent, tree.name, ok=False).returncode))
    while d.status()["units"][0]["vcr"]["waiting"] is None:
        assert writing.running
        time.sleep(0.05)
    d.run(*d.backerd("deck", "cancel", "--unit", "0", "--reason", "no cassette", *sock))
    writing.join()
    assert result["rc"] != 0
    assert "the operator cancelled: no cassette" in d.log.read_text()


# -- LIRC -------------------------------------------------------------------------------

KEYS = ("PLAY", "REC", "STOP", "FFWD", "REW", "PAUSE", "EJECT")


class IrLog:
    """What the fake lircd's IR transmitter sent (the emulated VCR obeys the daemon)."""

    KEYS = KEYS

    def __init__(self) -> None:
        self.sent: list[str] = []

    def button(self, key: str) -> bool:
        if key not in KEYS:
            return False
        self.sent.append(key)
        return True


@pytest.fixture
def lircd() -> Iterator[tuple[FakeLircd, IrLog]]:
    short = Path(tempfile.mkdtemp(prefix="lircd"))  # unix socket paths are short
    ir = IrLog()
    fake = FakeLircd(short / "lircd", ir)
    try:
        yield fake, ir
    finally:
        fake.close()
        shutil.rmtree(short)


@pytest.mark.parametrize("emulate", ["isa", "parport"])
def test_lirc_round_trip(lircd: tuple[FakeLircd, IrLog], tmp_path: Path, tree: Path,
                         emulate: str) -> None:
    fake, ir = lircd
    vcr = (f'control = "lirc"\nsocket = "{fake.path}"\nremote = "vcr"\nsettle = 0.0\n'
           'index_settle = 0.0\n[unit.vcr.keys]\nplay = "PLAY"\nrecord = ["REC", "PLAY"]\n'
           'stop = "STOP"\nfast_forward = "FFWD"\nrewind = "REW"\n'
           "[unit.vcr.reel]\nfull_wind = 4.0\nspin_up = 0.1\n")
    for d in operated_daemon(tmp_path, emulate, vcr):
        assert fake.commands[:1] == ["LIST vcr"]  # the key map is checked at start
        status = d.status()["units"][0]["vcr"]
        assert (status["control"], status["remote"]) == ("lirc", "vcr")
        d.run("tar", "-cf", d.rew, "-C", tree.parent, tree.name)
        assert ir.sent[:2] == ["REC", "PLAY"]
        out = d.tmp / "out"
        out.mkdir()
        d.run("tar", "-xf", d.rew, "-C", out)
        assert same_tree(tree, out / "src") == []
        assert "PLAY" in ir.sent[2:] and "STOP" in ir.sent
        assert all(c.startswith("SEND_ONCE vcr ") for c in fake.commands[1:])
        hardware = d.status()["units"][0]["hardware"]
        assert hardware["counters"]["underruns"] == 0


def test_lirc_unknown_key_is_refused_at_start(lircd: tuple[FakeLircd, IrLog],
                                              tmp_path: Path) -> None:
    fake, _ = lircd
    if MISSING:
        pytest.skip("needs " + ", ".join(MISSING))
    d = new_daemon(tmp_path, "isa", extra=(
        f'[unit.vcr]\ncontrol = "lirc"\nsocket = "{fake.path}"\nremote = "vcr"\n'
        '[unit.vcr.keys]\nplay = "PLAY"\nstop = "HALT"\nfast_forward = "FFWD"\n'
        'rewind = "REW"\n'))
    proc = d.run(*d.backerd("serve", "--config", str(d.config_file), "--cassette",
                            str(d.cassette), "--fuse-root", str(d.fuse_root)), ok=False)
    assert proc.returncode != 0
    last = proc.stderr.decode().strip().splitlines()[-1]
    assert "has no key HALT" in last and "[unit.vcr.keys]" in last

"""Manual VCR control: prompts, acknowledgement over the control socket, timeouts, abort."""

from __future__ import annotations

import errno
import logging
import os
import random
import socket
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from backerd.cli import main as cli_main
from backerd.cli.status import format_status
from backerd.daemon import control as control_socket
from backerd.daemon.control import query, serve_control, word_request
from backerd.errors import ControlError
from backerd.format.params import mode
from backerd.format.recorder import encode_recording
from backerd.vcr.control import Motion, VcrControl, WindTarget
from backerd.vcr.manual import ManualControl, deck_request
from backerd.vcr.settings import VcrSettings
from backerd.vcr.signal import backer_fields, signal_present

MODE = "nls"


def fields_of(raw: bytes) -> list[bytes]:
    g, out, pos, i = mode(MODE).geometry, [], 0, 0
    while pos + g.field_length(i) <= len(raw):
        out.append(raw[pos : pos + g.field_length(i)])
        pos, i = pos + g.field_length(i), i + 1
    return out


SIGNAL = fields_of(encode_recording(random.Random(5).randbytes(20_000), MODE))[:12]
SNOW = [random.Random(6).randbytes(1016), random.Random(7).randbytes(1012)] * 6


def manual(**kw: float) -> tuple[ManualControl, list[str]]:
    notes: list[str] = []
    settings = VcrSettings(control="manual", ack_timeout=kw.pop("ack", 30.0),
                           signal_timeout=kw.pop("signal", 30.0))
    return ManualControl(0, settings, mode=MODE, notify=notes.append, poll=0.02,
                         **kw), notes  # type: ignore[arg-type]


def in_thread(call: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors


def wait_for_prompt(control: ManualControl) -> dict:
    for _ in range(500):
        waiting = control.status()["waiting"]
        if waiting:
            return waiting
        time.sleep(0.01)
    raise AssertionError("no prompt appeared")


def test_signal_helper_tells_backer_fields_from_snow_and_blank() -> None:
    assert backer_fields(SIGNAL, mode(MODE)) >= 10
    assert signal_present(SIGNAL, MODE)
    assert not signal_present(SNOW, MODE)
    assert not signal_present([None] * 12, MODE)
    assert not signal_present(SIGNAL[:1], MODE)  # one field is not enough
    assert signal_present([None, *SIGNAL[:3], None], MODE)
    assert signal_present([b"\x01" * 100] * 2, "nlr")  # raw modes: anything not blank
    assert not signal_present([b"\x01" * 100, None], "nlr")


def test_prompt_is_published_and_acknowledged(caplog: pytest.LogCaptureFixture) -> None:
    control, notes = manual()
    assert isinstance(control, VcrControl) and control.name == "manual"
    caplog.set_level(logging.WARNING, "backerd.vcr")
    target = WindTarget(45_000, 0, "0:12:30", recording=3, marks=2)
    t, errors = in_thread(lambda: control.wind_to(target))
    waiting = wait_for_prompt(control)
    assert waiting["action"] == "wind" and waiting["counter"] == "0:12:30"
    assert waiting["recording"] == 3
    for text in (waiting["text"], caplog.text, notes[0]):
        assert "counter 0:12:30" in text and "recording 3" in text
        assert "index search: 2 forward" in text and "backerd deck ready --unit 0" in text
    assert notes[0].startswith("STATUS=unit 0: operator, please wind")
    assert "acknowledged" in control.ack(waiting["number"])
    t.join(5)
    assert not errors and not t.is_alive()
    assert control.status()["waiting"] is None
    assert notes[-1] == "STATUS=unit 0: acknowledged"


def test_timeout_abort_and_cancel() -> None:
    control, notes = manual(ack=0.2)
    with pytest.raises(ControlError, match="nobody acknowledged") as info:
        control.press(Motion.STOP)
    assert info.value.errno == errno.ETIMEDOUT
    assert notes[-1].startswith("STATUS=unit 0: failed: ")
    assert control.status()["waiting"] is None

    control, _ = manual()
    t, errors = in_thread(lambda: control.press(Motion.REWIND))
    wait_for_prompt(control)
    control.abort()
    t.join(5)
    assert isinstance(errors[0], ControlError) and errors[0].errno == errno.EINTR

    t, errors = in_thread(lambda: control.press(Motion.EJECT))
    wait_for_prompt(control)
    control.cancel("no cassette at hand")
    t.join(5)
    assert isinstance(errors[0], ControlError) and errors[0].errno == errno.ECANCELED
    assert "no cassette at hand" in errors[0].message
    control.abort()  # nothing waits: no effect on the next prompt
    t, errors = in_thread(lambda: control.press(Motion.STOP))
    control.ack(wait_for_prompt(control)["number"])
    t.join(5)
    assert not errors

    t, errors = in_thread(lambda: control.press(Motion.STOP))
    wait_for_prompt(control)
    control.close()  # the daemon stops: the wait ends, and so does every later one
    t.join(5)
    assert errors[0].errno == errno.EINTR and "stopping" in errors[0].message
    with pytest.raises(ControlError, match="stopping"):
        control.press(Motion.PLAY)


def test_stopping_ends_the_wait_and_announces_later_presses(
        caplog: pytest.LogCaptureFixture) -> None:
    control, notes = manual()
    caplog.set_level(logging.WARNING, "backerd.vcr")
    t, errors = in_thread(lambda: control.press(Motion.RECORD))
    wait_for_prompt(control)
    control.stopping()
    t.join(5)
    assert errors[0].errno == errno.EINTR and "stopping" in errors[0].message
    control.press(Motion.STOP)  # the STOP closing a recording: told, not waited for
    assert "press STOP" in caplog.records[-1].getMessage()
    assert notes[-1] == "STATUS=unit 0: not waited for: the daemon is stopping"
    assert control.status()["waiting"] is None
    with pytest.raises(ControlError) as info:  # a wind is not a stop: it fails
        control.wind_to(WindTarget(100, 0, "0:00:02"))
    assert info.value.errno == errno.EINTR
    control.close()
    with pytest.raises(ControlError, match="stopping"):
        control.press(Motion.STOP)


def test_play_ends_on_the_signal_without_an_acknowledgement() -> None:
    heard: list[list] = [[None] * 12]
    control, notes = manual(listen=lambda: heard[0])  # type: ignore[arg-type]
    t, errors = in_thread(lambda: control.press(Motion.PLAY))
    wait_for_prompt(control)
    heard[0] = SIGNAL  # someone pressed PLAY and the card sees the signal
    t.join(5)
    assert not errors and notes[-1] == "STATUS=unit 0: signal found"


def test_play_acknowledged_without_signal_fails_clearly() -> None:
    control, _ = manual(listen=lambda: SNOW, signal=0.2)  # type: ignore[arg-type]
    t, errors = in_thread(lambda: control.press(Motion.PLAY))
    control.ack(wait_for_prompt(control)["number"])
    t.join(5)
    (error,) = errors
    assert isinstance(error, ControlError) and error.errno == errno.EIO
    assert "no Backer signal reached the card within 0.2 s" in error.message
    assert "video output is cabled" in error.message


def test_deck_request_errors() -> None:
    control, _ = manual()
    controls = {0: control}
    assert "usage" in deck_request(["ready"], controls)["error"]
    assert "usage" in deck_request(["jump", "0"], controls)["error"]
    assert "usage" in deck_request(["ready", "0", "x"], controls)["error"]
    assert deck_request(["ready", "3"], controls) == {
        "error": "unit 3 is not under manual control (manual units: 0)"}
    assert deck_request(["ready", "0"], controls) == {
        "error": "unit 0 is not waiting for the operator"}
    t, errors = in_thread(lambda: control.press(Motion.PAUSE))
    number = wait_for_prompt(control)["number"]
    assert "now waiting for prompt" in deck_request(["ready", "0", str(number + 1)],
                                                    controls)["error"]
    assert deck_request(["ready", "0", str(number)], controls)["ok"]
    t.join(5)
    assert not errors


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="bkd"))
    yield d
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


def serve_and_run(path: Path, control: ManualControl, work: Callable[[], None]) -> None:
    """Serve the control socket with a deck handler while ``work`` runs in a thread."""

    def status() -> dict:
        return {"backerd": "test", "pid": os.getpid(), "transport": "fuse",
                "units": [{"number": 0, "name": "backer0", "vcr": control.status()}]}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: serve_control(
                path, status,
                requests={"deck": word_request(lambda w: deck_request(w, {0: control}))},
                task_status=task_status))
            await trio.to_thread.run_sync(work)
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_ack_over_the_real_control_socket(sock_dir: Path, capsys) -> None:
    path = sock_dir / "control.sock"
    control, _ = manual()
    seen: dict = {}

    def operator_and_deck() -> None:
        t, errors = in_thread(lambda: control.press(Motion.RECORD))
        wait_for_prompt(control)
        seen["status"] = format_status(query(path))
        assert cli_main(["deck", "ready", "--unit", "0", "--socket", str(path)]) == 0
        t.join(5)
        seen["errors"] = errors
        # nothing waits any more: the command says so and fails
        seen["again"] = cli_main(["deck", "ready", "--unit", "0", "--socket", str(path)])
        t, errors = in_thread(lambda: control.press(Motion.EJECT))
        wait_for_prompt(control)
        seen["cancel"] = cli_main(["deck", "cancel", "--unit", "0", "--reason", "tape torn",
                                   "--socket", str(path)])
        t.join(5)
        seen["cancel_errors"] = errors

    serve_and_run(path, control, operator_and_deck)
    assert "OPERATOR, request 1: press REC" in seen["status"]
    assert seen["errors"] == [] and seen["again"] == 7 and seen["cancel"] == 0
    (cancelled,) = seen["cancel_errors"]
    assert cancelled.errno == errno.ECANCELED and "tape torn" in cancelled.message
    out, err = capsys.readouterr()
    assert "unit 0: acknowledged: press REC" in out
    assert "backerd deck: unit 0 is not waiting for the operator" in err


def ask_as(uid: int, path: Path, request: str) -> bytes:
    """Send ``request`` from a forked child running as ``uid``; the raw reply."""
    r, w = os.pipe()
    with warnings.catch_warnings():  # 3.12 warns about fork with threads; the child execs
        warnings.simplefilter("ignore", DeprecationWarning)  # nothing and only _exits
        pid = os.fork()
    if pid == 0:  # the child: only plain syscalls, then _exit
        try:
            os.close(r)
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                s.connect(str(path))
                s.sendall(request.encode() + b"\n")
                reply = b""
                while chunk := s.recv(65536):
                    reply += chunk
            os.write(w, reply)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        reply = f.read()
    os.waitpid(pid, 0)
    return reply


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
def test_only_the_daemons_user_may_acknowledge(sock_dir: Path) -> None:
    path = sock_dir / "control.sock"
    sock_dir.chmod(0o755)
    control, _ = manual()
    out: list[bytes] = []

    def as_nobody() -> None:
        out.extend(ask_as(65534, path, request) for request in ("deck ready 0", "status"))

    serve_and_run(path, control, as_nobody)
    assert b"not allowed to send 'deck' requests" in out[0]
    assert b'"units"' in out[1]  # status stays open to everyone


def test_peer_credentials_are_read_from_the_socket() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        assert control_socket._peer_may_act(a)  # same process: the daemon's own user


def test_a_handler_error_is_a_reply_not_a_crash(sock_dir: Path) -> None:
    path = sock_dir / "control.sock"
    control, _ = manual()
    replies: list = []

    def broken(words: list[str]) -> dict:
        raise ControlError("the deck caught fire")

    def status() -> dict:
        return {"units": []}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: serve_control(
                path, status, requests={"deck": word_request(broken)}, task_status=task_status))
            for request in ("deck ready 0", "jump", "status"):
                replies.append(await trio.to_thread.run_sync(query, path, request))
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert replies == [{"error": "the deck caught fire", "exit_status": 7},
                       {"error": "unknown request 'jump' (known: status, deck)"},
                       {"units": []}]

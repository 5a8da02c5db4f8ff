"""A LIRC session end to end: IR command -> a fake lircd -> simulated deck -> signal.

The fake lircd listens on a real unix socket, speaks lircd's reply packets (with
broadcasts and SIGHUP packets thrown in) and presses the buttons of a simulated VCR:
PLAY, REC and STOP change what the deck's heads do, FF/REW wind it for as long as they
are held by a *virtual* clock and a reel model that is 7 % faster than the one the
control believes, INDEX searches to the next or previous recording start. The test's
"modem" records and plays fields only when the deck's motion allows it, and the
position is confirmed from the played signal, never from the deck's own counter.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import random
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from backerd.errors import ControlError
from backerd.format.params import mode
from backerd.format.recorder import encode_recording
from backerd.vcr.base import Field, Recording
from backerd.vcr.control import Motion, VcrControl, WindTarget
from backerd.vcr.lirc import LircConnection, LircControl
from backerd.vcr.lirc_protocol import Reply
from backerd.vcr.position import Positioned, confirm_position, index_presses
from backerd.vcr.reel import ReelModel, ReelParams
from backerd.vcr.settings import KeyMap, VcrSettings
from backerd.vcr.signal import signal_present
from backerd.vcr.sim import Cassette, SimDeck
from testkit.fakelircd import FakeLircd

MODE = "pls"
FPS = 50
REEL = ReelParams(full_wind=60.0, spin_up=1.5)
KEYS = {"play": ("PLAY",), "record": ("REC", "PLAY"), "stop": ("STOP",),
        "pause": ("PAUSE",), "fast_forward": ("FFWD",), "rewind": ("REW",),
        "eject": ("EJECT",), "index_forward": ("INDEX+",), "index_back": ("INDEX-",)}
EARLY = 10 * FPS  # the deck plays forward up to 10 s to reach the exact field
PEEK = 40  # fields played to confirm a position (past the recording's BOR marker)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeVcr:
    """The simulated deck's buttons, driven by IR codes; true winding speed differs."""

    def __init__(self, deck: SimDeck, clock: Clock, real: ReelModel) -> None:
        self.deck, self.clock, self.real = deck, clock, real
        self.motion = Motion.STOP
        self.wind_started: float | None = None
        self.pending_record = False  # REC pressed: PLAY next starts recording
        self.log: list[str] = []

    KEYS = ("STOP", "PLAY", "REC", "FFWD", "REW", "INDEX+", "INDEX-", "PAUSE", "EJECT")

    def button(self, key: str) -> bool:
        if key not in self.KEYS:
            return False
        self.log.append(key)
        self._end_wind()
        if key == "REC":
            self.pending_record = True
        elif key == "PLAY":
            self.motion = Motion.RECORD if self.pending_record else Motion.PLAY
            self.pending_record = False
        elif key in ("STOP", "PAUSE"):
            self.deck.stop()
            self.motion = Motion.STOP if key == "STOP" else Motion.PAUSE
        elif key in ("FFWD", "REW"):
            self.deck.stop()
            self.motion = Motion.FAST_FORWARD if key == "FFWD" else Motion.REWIND
            self.wind_started = self.clock.now
        elif key in ("INDEX+", "INDEX-"):
            starts = [r.start for r in self.deck.catalog.recordings]
            pos = self.deck.position()
            ahead = [i for i, s in enumerate(starts) if (s > pos if key == "INDEX+" else s < pos)]
            if ahead:
                self.deck.index_search(ahead[0] if key == "INDEX+" else ahead[-1])
            self.motion = Motion.STOP
        elif key == "EJECT":
            self.deck.stop()
            self.motion = Motion.EJECT
        return True

    def _end_wind(self) -> None:
        if self.wind_started is None:
            return
        held = self.clock.now - self.wind_started
        self.wind_started = None
        self.deck.seek(self.real.landing(self.deck.position(), self.motion, held))
        self.motion = Motion.STOP

    # -- the modem's side ---------------------------------------------------------------

    def play(self, count: int) -> list[Field]:
        if self.motion != Motion.PLAY:
            return [None] * count  # heads not on the tape: no video
        return self.deck.play(count)

    def record(self, fields: list[bytes]) -> None:
        if self.motion != Motion.RECORD:
            raise AssertionError(f"the deck is not recording ({self.motion})")
        self.deck.record(fields)


def backer_fields(seed: int, size: int) -> list[bytes]:
    params = mode(MODE)
    raw = encode_recording(random.Random(seed).randbytes(size), params)
    out, pos, i = [], 0, 0
    while pos < len(raw):
        n = params.geometry.field_length(i)
        out.append(raw[pos : pos + n])
        pos, i = pos + n, i + 1
    return out


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[LircControl, FakeVcr, FakeLircd, Clock]]:
    clock = Clock()
    cassette = Cassette.create(tmp_path / "tape.img", "pal", "E-30", sync=False)
    deck = SimDeck(cassette)
    nominal = ReelModel.for_cassette(deck.length, FPS, "pal", REEL)
    vcr = FakeVcr(deck, clock, nominal.scaled(1.07))
    short = Path(tempfile.mkdtemp(prefix="lircd"))  # unix socket paths are short
    lircd = FakeLircd(short / "lircd", vcr)
    settings = VcrSettings(control="lirc", socket=short / "lircd", keymap=KeyMap("vcr", KEYS),
                           reel=REEL)
    control = LircControl(settings, nominal, sleep=clock.sleep)
    try:
        yield control, vcr, lircd, clock
    finally:
        control.close()
        lircd.close()
        os.unlink(short / "lircd")
        os.rmdir(short)
        cassette.close()


def record_by_ir(control: LircControl, vcr: FakeVcr, start: int, seed: int, size: int
                 ) -> list[bytes]:
    """Wind to ``start``, press REC+PLAY, feed the fields, STOP: one recording."""
    deck = vcr.deck
    fields = backer_fields(seed, size)
    deck.catalog.begin_recording(start, MODE)
    control.wind_to(WindTarget(start, deck.position(), "", None))
    deck.seek(start)  # the modem records where it is told (exact placement is its job)
    control.press(Motion.RECORD)
    vcr.record(fields)
    control.press(Motion.STOP)
    deck.catalog.commit_recording(Recording(start, len(fields), MODE))
    return fields


def recordings(control: LircControl, vcr: FakeVcr, starts: list[int], sizes: list[int]
               ) -> dict[bytes, list[int]]:
    """Record ``sizes`` user bytes at ``starts``; map each field to the slots holding it."""
    slots: dict[bytes, list[int]] = {}
    for n, (start, size) in enumerate(zip(starts, sizes, strict=True)):
        for i, f in enumerate(record_by_ir(control, vcr, start, n, size)):
            slots.setdefault(f, []).append(start + i)
    return slots


def observer(control: LircControl, vcr: FakeVcr, where: dict[bytes, list[int]],
             near: list[int]):
    """Play a little through IR and find the position from the fields seen.

    A stand-in for reading sector numbers and recording headers: the first field seen
    is looked up on the tape; of the slots that hold it (the BOR marker is the same in
    every recording) the one nearest the deck's belief ``near[0]`` is taken.
    """

    def observe() -> tuple[int, int] | None:
        control.press(Motion.PLAY)
        fields = vcr.play(PEEK)
        control.press(Motion.STOP)
        if not signal_present(fields, MODE):
            return None
        for i, f in enumerate(fields):
            if f is not None and f in where:
                slot = min(where[f], key=lambda s: abs(s - near[0]))
                return slot - i, slot - i + len(fields)
        return None

    return observe


def confirm(control: LircControl, observe, target: WindTarget) -> Positioned:
    return confirm_position(control.wind_to, observe, target, fps=FPS, early=EARLY,
                            landed=control.landed)


def test_the_control_is_a_vcr_control(rig) -> None:
    control, *_ = rig
    assert isinstance(control, VcrControl)
    assert control.name == "lirc:vcr"


def test_session_records_plays_and_winds_by_index_and_by_time(rig) -> None:
    control, vcr, lircd, clock = rig
    starts = [0, 12_000, 24_000]
    where = recordings(control, vcr, starts, [40_000, 4_000_000, 40_000])
    assert [r.start for r in vcr.deck.catalog.recordings] == starts
    assert "REC" in vcr.log and lircd.commands[0].startswith("SEND_ONCE vcr ")
    belief = [0]
    observe = observer(control, vcr, where, belief)

    # Playing through IR gives the signal; stopped, the heads give none.
    control.wind_to(WindTarget(0, vcr.deck.position(), "0:00:00"))
    vcr.deck.seek(0)
    control.press(Motion.PLAY)
    assert signal_present(vcr.play(8), MODE)
    control.press(Motion.STOP)
    assert not signal_present(vcr.play(8), MODE)

    # Index search to recording 2, then confirm from the signal.
    origin = vcr.deck.position()
    marks = index_presses(starts, origin, 2)
    target = WindTarget(starts[2], origin, "0:08:00", recording=2, marks=marks)
    belief[0] = starts[2]
    done = confirm(control, observe, target)
    assert vcr.log.count("INDEX+") == 2 and "FFWD" not in vcr.log[-6:]
    assert (done.position, done.now) == (starts[2], starts[2] + PEEK)  # on the mark

    # Timed winding back into recording 1 (no index: a position inside it).
    goal = starts[1] + 2500
    belief[0] = goal
    winds_before = vcr.log.count("REW") + vcr.log.count("FFWD")
    t0 = clock.now
    done = confirm(control, observe, WindTarget(goal, vcr.deck.position(), "0:04:50"))
    assert goal - EARLY <= done.position <= goal
    assert done.now == vcr.deck.position()  # the signal agrees with the deck
    assert vcr.log.count("REW") + vcr.log.count("FFWD") > winds_before
    assert clock.now - t0 < 120  # winding, not playing, covered the distance

    # The first timed wind overshot (the deck is 7 % faster); the control learnt it.
    assert control.speed_scale == pytest.approx(1.07, rel=0.05)
    assert control.status()["motion"] == "stop"


def test_learnt_speed_makes_the_next_long_wind_land_in_one_go(rig) -> None:
    control, vcr, _, _ = rig
    starts = [0, 40_000]
    where = recordings(control, vcr, starts, [4_000_000, 4_000_000])
    belief = [3000]
    observe = observer(control, vcr, where, belief)
    first = confirm(control, observe, WindTarget(3000, vcr.deck.position(), ""))
    belief[0] = 42_000
    second = confirm(control, observe, WindTarget(42_000, first.now, ""))
    assert second.winds == 1


def test_refused_key_unknown_remote_and_missing_key(rig, tmp_path: Path) -> None:
    control, vcr, lircd, clock = rig
    keys = dict(KEYS, play=("PLAYY",))
    bad = LircControl(VcrSettings(control="lirc", socket=lircd.path,
                                  keymap=KeyMap("vcr", keys)), control.model, sleep=clock.sleep)
    with pytest.raises(ControlError, match='lircd refused SEND_ONCE vcr PLAYY: unknown command'):
        bad.press(Motion.PLAY)
    bad.close()
    no_eject = {k: v for k, v in KEYS.items() if k != "eject"}
    bare = LircControl(VcrSettings(control="lirc", socket=lircd.path,
                                   keymap=KeyMap("vcr", no_eject)), control.model)
    with pytest.raises(ControlError, match="has no eject key") as info:
        bare.press(Motion.EJECT)
    assert info.value.errno == errno.EOPNOTSUPP
    bare.close()
    missing = LircControl(VcrSettings(control="lirc", socket=tmp_path / "nope",
                                      keymap=KeyMap("vcr", KEYS)), control.model)
    with pytest.raises(ControlError, match="lircd is not running") as info:
        missing.press(Motion.STOP)
    assert info.value.errno == errno.ENODEV


def test_reconnects_when_lircd_restarts(rig) -> None:
    control, vcr, lircd, _ = rig
    lircd.drop_after = 1
    control.press(Motion.PLAY)
    control.press(Motion.STOP)
    assert vcr.log == ["PLAY", "STOP"]


def test_abort_ends_a_wind_with_eintr(rig) -> None:
    control, vcr, lircd, _ = rig
    # the real clock: a 20 s wind, no settle time after PLAY
    real = LircControl(dataclasses.replace(control.settings, settle=0.0), control.model)
    timer = threading.Timer(0.3, real.abort)
    timer.start()
    with pytest.raises(ControlError) as info:
        real.wind_to(WindTarget(50_000, 0, "0:16:40"))
    timer.join()
    assert info.value.errno == errno.EINTR
    assert vcr.log[-2:] == ["FFWD", "STOP"]  # the deck is not left winding
    real.press(Motion.PLAY)  # and the next call works (an abort is not sticky)
    assert vcr.log[-1] == "PLAY"
    real.close()


def test_lircd_that_never_answers_times_out(tmp_path: Path) -> None:
    short = Path(tempfile.mkdtemp(prefix="lircd"))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(short / "s"))
    listener.listen(1)
    try:
        conn = LircConnection(short / "s", timeout=0.3)
        with pytest.raises(ControlError, match="did not answer") as info:
            conn.command("SEND_ONCE vcr PLAY")
        assert info.value.errno == errno.ETIMEDOUT
        conn.close()
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(short / "s")
        os.rmdir(short)


def test_key_map_is_checked_against_lircd(rig) -> None:
    control, _, lircd, clock = rig
    control.check_keys()
    keys = dict(KEYS, pause=("PAUSE", "FREEZE"))
    bad = LircControl(VcrSettings(control="lirc", socket=lircd.path,
                                  keymap=KeyMap("vcr", keys)), control.model)
    with pytest.raises(ControlError, match="has no key FREEZE .known: EJECT FFWD"):
        bad.check_keys()
    bad.close()
    other = LircControl(VcrSettings(control="lirc", socket=lircd.path,
                                    keymap=KeyMap("tv", KEYS)), control.model)
    with pytest.raises(ControlError, match="does not know remote 'tv'") as info:
        other.check_keys()
    assert info.value.errno == errno.ENODEV
    other.close()


class Recorder:
    """A connection stand-in: records commands, answers SUCCESS."""

    path = Path("/nowhere")

    def __init__(self) -> None:
        self.sent: list[str] = []

    def command(self, text: str) -> Reply:
        self.sent.append(text.split()[-1])
        return Reply(text, True)

    def close(self) -> None:
        pass


def offline(keys: dict, repeats: int = 0) -> tuple[LircControl, Recorder, Clock]:
    clock, conn = Clock(), Recorder()
    model = ReelModel.for_cassette(90_000, FPS, "pal", REEL)
    settings = VcrSettings(control="lirc", keymap=KeyMap("vcr", keys), reel=REEL,
                           repeats=repeats)
    return LircControl(settings, model, sleep=clock.sleep, connection=conn), conn, clock


def test_index_search_only_with_index_keys_and_marks() -> None:
    control, conn, clock = offline(KEYS)
    control.wind_to(WindTarget(30_000, 0, "", recording=1, marks=1))
    assert conn.sent == ["INDEX+", "STOP"]
    index_time = clock.now
    assert index_time == pytest.approx(control.model.hold(0, 30_000)[1] + 3.0)
    control.wind_to(WindTarget(0, 30_000, "", recording=0, marks=-2))
    assert conn.sent[2:] == ["INDEX-", "INDEX-", "STOP"]
    control.wind_to(WindTarget(30_000, 0, "", recording=1))  # marks unknown: by time
    assert conn.sent[5:] == ["FFWD", "STOP"]
    no_index = {k: v for k, v in KEYS.items() if not k.startswith("index")}
    control, conn, _ = offline(no_index)
    control.wind_to(WindTarget(30_000, 0, "", recording=1, marks=1))
    assert conn.sent == ["FFWD", "STOP"]


def test_winds_too_short_to_time() -> None:
    control, conn, clock = offline(KEYS)
    control.wind_to(WindTarget(10_005, 10_000, ""))  # a few fields ahead: play forward
    control.wind_to(WindTarget(10_000, 10_000, ""))
    assert conn.sent == [] and clock.now == 0
    control.wind_to(WindTarget(9_995, 10_000, ""))  # just late: the shortest rewind
    assert conn.sent == ["REW", "STOP"]
    assert clock.now == pytest.approx(REEL.spin_up + 0.2)


def test_repeats_and_new_cassette_forget_what_was_learnt() -> None:
    control, conn, _ = offline(KEYS, repeats=2)
    control.press(Motion.PLAY)
    assert conn.sent == ["2"]  # SEND_ONCE vcr PLAY 2
    control.wind_to(WindTarget(40_000, 0, ""))
    control.landed(43_000)
    assert control.speed_scale > 1.05
    control.load_cassette(ReelModel.for_cassette(60_000, FPS, "pal", REEL))
    assert control.speed_scale == 1.0


def test_close_ends_a_wind_stops_the_deck_and_refuses_later_calls(rig) -> None:
    control, vcr, _, _ = rig
    real = LircControl(control.settings, control.model)
    timer = threading.Timer(0.3, real.close)
    timer.start()
    with pytest.raises(ControlError) as info:
        real.wind_to(WindTarget(0, 50_000, "0:00:00"))
    timer.join()
    assert info.value.errno == errno.EINTR
    assert vcr.log[-2:] == ["REW", "STOP"]
    with pytest.raises(ControlError, match="closed") as info:
        real.press(Motion.PLAY)
    assert info.value.errno == errno.EINTR and vcr.log[-1] == "STOP"

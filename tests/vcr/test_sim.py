"""The cassette image and the simulated deck."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backerd.errors import HardwareUnavailable, MediumError, UsageError
from backerd.vcr.base import Deck, Recording, RecordingCatalog
from backerd.vcr.sim import Cassette, SimDeck
from backerd.vcr.transport import TransportTimes


def field(i: int, size: int = 1012) -> bytes:
    """A recognisable field: never all zeros."""
    return bytes([(i % 251) + 1]) * 4 + i.to_bytes(4, "little") * ((size - 4) // 4)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return tmp_path / "tape.img"


def test_new_cassette_is_sparse_and_reopens(image: Path) -> None:
    with Cassette.create(image, "pal", "E-180") as c:
        assert c.slots == 180 * 60 * 50
        assert (c.standard, c.fps, c.length_name) == ("pal", 50, "E-180")
        assert c.recordings == () and c.interrupted is None
    st = os.stat(image)
    assert st.st_size > 180 * 60 * 50 * 3000  # the whole tape is addressable
    assert st.st_blocks * 512 < 1 << 20  # but costs no disk space
    with Cassette.open(image) as c:
        assert (c.standard, c.slots, c.length_name) == ("pal", 540000, "E-180")


def test_lengths_and_errors(image: Path) -> None:
    with Cassette.create(image, "ntsc", "T-120") as c:
        assert c.slots == 120 * 60 * 60
    with pytest.raises(UsageError, match="already exists"):
        Cassette.create(image, "ntsc", "T-120")
    with Cassette.create(image, "NTSC", "30", force=True) as c:
        assert c.slots == 30 * 60 * 60
    with pytest.raises(UsageError, match="unknown cassette length"):
        Cassette.create(image, "ntsc", "E-7", force=True)
    with pytest.raises(UsageError, match="video standard"):
        Cassette.create(image, "secam", "E-30", force=True)
    junk = image.with_name("junk")
    junk.write_bytes(b"hello" * 1000)
    with pytest.raises(UsageError, match="not a backerd cassette"):
        Cassette.open(junk)
    with pytest.raises(UsageError, match="no cassette image"):
        Cassette.open(image.with_name("missing"))


def test_fields_round_trip_and_blank_is_no_signal(image: Path) -> None:
    sizes = [1016, 1012, 2540, 2530, 3050, 1]
    with Cassette.create(image, "ntsc", "T-30") as c:
        c.write_fields(10, [field(i, s) for i, s in enumerate(sizes)])
        got = c.read_fields(8, 10)
        assert got[:2] == [None, None]
        assert got[2:8] == [field(i, s) for i, s in enumerate(sizes)]
        assert got[8:] == [None, None]
        assert c.read_fields(c.slots - 1, 5) == [None]  # clipped at the end of the tape
        with pytest.raises(ValueError):
            c.write_fields(0, [b"x" * 3069])
        with pytest.raises(MediumError) as e:
            c.write_fields(c.slots - 1, [b"a", b"b"])
        assert e.value.errno == errno.ENOSPC


def test_committed_recordings_survive_reopen(image: Path) -> None:
    rec0 = Recording(0, 4, "nls", user_bytes=30, blocks=((10, 3),))
    rec1 = Recording(4, 2, "nhs", fmt="auto", user_bytes=None, blocks=None, origin="record")
    with Cassette.create(image, "ntsc", "T-30") as c:
        c.begin_recording(0, "nls")
        c.write_fields(0, [field(i) for i in range(4)])
        c.commit_recording(rec0)
        c.begin_recording(4, "nhs", "auto")
        c.write_fields(4, [field(i, 2530) for i in range(2)])
        c.commit_recording(rec1)
        assert isinstance(c, RecordingCatalog)
    with Cassette.open(image) as c:
        assert c.recordings == (rec0, rec1)
        assert c.interrupted is None and c.open_recording is None
        assert c.signal_end() == 6
        assert c.read_fields(4, 1) == [field(0, 2530)]


def test_torn_index_write_falls_back_to_previous_copy(image: Path) -> None:
    from backerd.vcr import sim

    with Cassette.create(image, "ntsc", "T-30") as c:
        c.write_fields(0, [field(i) for i in range(3)])
        c.commit_recording(Recording(0, 3, "nls", user_bytes=1, blocks=((1, 1),)))
        generation = c._generation
    # a crash while writing the next copy leaves garbage in it
    copy = (generation + 1) % 2
    with open(image, "r+b") as f:
        f.seek(sim.SUPERBLOCK_SIZE + copy * sim.INDEX_SIZE)
        f.write(b"BKIX" + os.urandom(200))
    with Cassette.open(image) as c:
        assert [r.fields for r in c.recordings] == [3]
    # and a damaged newest copy loses only the last commit
    with Cassette.open(image) as c:
        c.write_fields(3, [field(9)])
        c.commit_recording(Recording(3, 1, "nls", user_bytes=0, blocks=()))
        newest = c._generation % 2
    with open(image, "r+b") as f:
        f.seek(sim.SUPERBLOCK_SIZE + newest * sim.INDEX_SIZE + 30)
        f.write(b"\xff" * 8)
    with Cassette.open(image) as c:
        assert [r.fields for r in c.recordings] == [3]
        # the field of the lost commit is signal after the last recording
        assert c.interrupted is not None and c.interrupted.start == 3


def test_recording_over_old_tape_discards_what_follows(image: Path) -> None:
    with Cassette.create(image, "ntsc", "T-30") as c:
        for k in range(3):
            c.begin_recording(5 * k, "nls")
            c.write_fields(5 * k, [field(10 * k + i) for i in range(5)])
            c.commit_recording(Recording(5 * k, 5, "nls", user_bytes=k, blocks=((k, 1),)))
        c.begin_recording(5, "nhs")  # at the start of recording 1
        assert [r.start for r in c.recordings] == [0]
        assert c.read_fields(4, 3) == [field(4), None, None]
        assert c.read_fields(10, 5) == [None] * 5
        c.write_fields(5, [field(99)])
        c.commit_recording(Recording(5, 1, "nhs", user_bytes=0, blocks=()))
    with Cassette.open(image) as c:
        assert [(r.start, r.mode) for r in c.recordings] == [(0, "nls"), (5, "nhs")]
        assert c.interrupted is None


def test_resumed_recording_keeps_its_first_fields(image: Path) -> None:
    with Cassette.create(image, "ntsc", "T-30") as c:
        c.write_fields(0, [field(i) for i in range(10)])
        c.commit_recording(Recording(0, 10, "nls", user_bytes=10, blocks=((1, 10),)))
        c.begin_recording(0, "nls", keep=4)
        assert c.recordings == ()
        assert c.read_fields(0, 6) == [field(i) for i in range(4)] + [None, None]


def test_interrupted_recording_is_found_on_load(image: Path) -> None:
    with Cassette.create(image, "ntsc", "T-30") as c:
        c.write_fields(0, [field(i) for i in range(3)])
        c.commit_recording(Recording(0, 3, "nls", user_bytes=1, blocks=((1, 1),)))
        c.begin_recording(3, "nle", "3.102")
        c.write_fields(3, [field(i) for i in range(700)])
    with Cassette.open(image) as c:
        lost = c.interrupted
        assert lost is not None
        assert (lost.start, lost.fields, lost.mode) == (3, 700, "nle")
        assert c.signal_end() == 703
        c.forget_interrupted()
    with Cassette.open(image) as c:
        assert c.interrupted is None or c.interrupted.mode is None
    # signal without a journal entry (index lost it): found, mode unknown
    with Cassette.create(image, "ntsc", "T-30", force=True) as c:
        c.write_fields(1000, [field(i) for i in range(5)])
    with Cassette.open(image) as c:
        assert c.interrupted is not None
        assert (c.interrupted.start, c.interrupted.fields, c.interrupted.mode) == (1000, 5, None)
        assert c.scan_signal(0) == [(1000, 5)]


def test_write_protect_tab_and_exclusive_open(image: Path) -> None:
    with Cassette.create(image, "ntsc", "T-30") as c:
        c.write_protected = True
        with pytest.raises(HardwareUnavailable, match="in use"):
            Cassette.open(image)
        with Cassette.open(image, readonly=True) as ro:  # inspecting is always possible
            assert ro.write_protected
    with Cassette.open(image) as c:
        assert c.write_protected
        deck = SimDeck(c)
        with pytest.raises(MediumError) as e:
            deck.record([field(0)])
        assert e.value.errno == errno.EACCES
        with pytest.raises(MediumError) as e:
            c.begin_recording(0, "nls")
        assert e.value.errno == errno.EACCES
        c.write_protected = False
        deck.record([field(0)])


CRASHER = textwrap.dedent(
    """
    import os, signal, sys
    from backerd.vcr.base import Recording
    from backerd.vcr.sim import Cassette, SimDeck
    c = Cassette.create(sys.argv[1], "ntsc", "T-30")
    deck = SimDeck(c)
    for k in range(2):
        c.begin_recording(deck.position(), "nls")
        start = deck.position()
        deck.record([bytes([k + 1]) * 1016, bytes([k + 1]) * 1012] * 50)
        c.commit_recording(Recording(start, 100, "nls", user_bytes=k, blocks=((k, 1),)))
    c.begin_recording(deck.position(), "nhs")
    deck.record([b"\\x07" * 2540, b"\\x07" * 2530] * 20)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_closed_recordings_survive_kill_9(image: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", CRASHER, str(image)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    with Cassette.open(image) as c:
        assert [(r.start, r.fields, r.user_bytes) for r in c.recordings] == [
            (0, 100, 0), (100, 100, 1)]
        assert c.read_fields(199, 1) == [b"\x02" * 1012]
        lost = c.interrupted
        assert lost is not None
        assert (lost.start, lost.fields, lost.mode) == (200, 40, "nhs")


# -- the deck ---------------------------------------------------------------------------


def test_deck_plays_records_and_accounts_transport_time(image: Path) -> None:
    times = TransportTimes(wind_speed=50.0, spin_up=2.0, thread=1.0, index_settle=3.0)
    with Cassette.create(image, "ntsc", "T-30") as c:
        deck = SimDeck(c, times=times)
        assert isinstance(deck, Deck)
        deck.record([field(i) for i in range(120)])  # 2 s of tape
        assert deck.position() == 120 and deck.counter() == "0:00:02"
        assert deck.transport.elapsed == pytest.approx(1.0 + 2.0)
        deck.rewind()
        assert deck.position() == 0
        assert deck.transport.elapsed == pytest.approx(3.0 + 2.0 + 2.0 / 50)
        got = deck.play(200)
        assert got[:120] == [field(i) for i in range(120)] and got[120:] == [None] * 80
        assert deck.transport.elapsed == pytest.approx(5.04 + 1.0 + 200 / 60)
        c.commit_recording(Recording(0, 120, "nls", user_bytes=0, blocks=()))
        deck.seek(c.slots - 3)
        assert len(deck.play(10)) == 3  # end of tape
        before = deck.transport.elapsed
        deck.index_search(0)
        assert deck.position() == 0
        assert deck.transport.elapsed - before == pytest.approx(
            2.0 + c.slots / 60 / 50 + 3.0)
        with pytest.raises(MediumError):
            deck.index_search(1)
        deck.seek(c.slots - 2)
        with pytest.raises(MediumError) as e:
            deck.record([field(1), field(2), field(3)])
        assert e.value.errno == errno.ENOSPC
        assert c.read_fields(c.slots - 2, 2) == [field(1), field(2)]
        assert c.wear["passes"] >= 3


def test_deck_records_over_the_middle_discard_what_follows(image: Path) -> None:
    with Cassette.create(image, "ntsc", "T-30") as c:
        deck = SimDeck(c)
        deck.record([field(i) for i in range(50)])
        c.commit_recording(Recording(0, 30, "nls", user_bytes=0, blocks=()))
        deck.seek(20)
        deck.record([field(100)])
        assert c.recordings == ()  # the recording it cut into is gone
        deck.rewind()
        assert deck.play(23) == [field(i) for i in range(20)] + [field(100), None, None]


def test_realtime_pacing_uses_the_injected_clock(image: Path) -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    times = TransportTimes(thread=0.0)
    with Cassette.create(image, "pal", "E-30") as c:
        deck = SimDeck(c, realtime=2.0, clock=lambda: now[0], sleep=sleep, times=times)
        deck.record([field(i, 1220) for i in range(100)])  # 2 s of PAL tape
        assert now[0] == pytest.approx(101.0)  # at twice real time
        now[0] += 0.5  # the caller works while the tape runs on...
        deck.play(50)  # ...so 1 s of tape ends 0.5 s after the recording did
        assert now[0] == pytest.approx(101.5)
        now[0] += 60.0  # a long pause: the tape stopped, idle time is not banked
        deck.play(500)  # 10 s of tape
        assert now[0] == pytest.approx(161.5 + 5.0)
        assert deck.transport.elapsed == pytest.approx(13.0)


def test_no_cassette(image: Path) -> None:
    deck = SimDeck()
    assert not deck.loaded
    with pytest.raises(MediumError) as e:
        deck.load()
    assert e.value.errno == errno.ENOMEDIUM
    with Cassette.create(image, "ntsc", "T-30") as c:
        deck.insert(c)
        assert deck.loaded
        deck.eject()
        with pytest.raises(MediumError):
            deck.play(1)
        deck.load()
        assert deck.play(1) == [None]

"""The Backer medium after a crash, on a full host disk, and on a catalog it cannot trust.

Expected contents are the bytes the tests wrote; errnos are the st-semantics ones.
"""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest

from backerd.errors import TapeError
from backerd.medium import BackerMedium
from backerd.medium.writer import LANE_BATCH, WRITE_BATCH
from backerd.tape import mtio
from backerd.tape.drive import Drive
from backerd.tape.medium import END_OF_DATA, FILEMARK
from backerd.vcr.base import Interrupted
from backerd.vcr.sim import Cassette, SimDeck


def read_file(m: BackerMedium, size: int = 1 << 20) -> tuple[bytes, object]:
    """The bytes of the file at the head, and the mark that ended it."""
    out = bytearray()
    while isinstance(item := m.read_block(size), bytes):
        out += item
    return bytes(out), item


def crash_mid_recording(image: Path, mode: str, data: bytes) -> None:
    """A closed file, then ``data`` being written when the daemon dies (no close)."""
    with Cassette.create(image, "ntsc", "T-30", sync=False) as c:
        m = BackerMedium(SimDeck(c), mode)
        m.write_block(b"closed" * 100)
        m.write_filemarks(1)
        for i in range(0, len(data), 10240):
            m.write_block(data[i : i + 10240])
        # the medium is never closed: the cassette is left as a kill -9 leaves it once
        # the batch handed to the codec lane is recorded (only the gathering one is lost)
        m.lane.finish()


@pytest.mark.parametrize("mode", ["nhs", "nle", "nlr"])
def test_first_append_at_eod_after_recovery_succeeds(tmp_path: Path, mode: str) -> None:
    image = tmp_path / "k.img"
    data = random.Random(mode).randbytes(700_000)
    crash_mid_recording(image, mode, data)
    appended = [b"A" * 10240, b"B" * 3000]
    with Cassette.open(image, sync=False) as c:
        notes: list[str] = []
        drive = Drive(BackerMedium(SimDeck(c), mode, log=notes.append))
        assert any("recovered" in n for n in notes)
        drive.open(False, os.O_RDWR)
        drive.mtioctop(mtio.MTEOM, 1)
        for block in appended:
            assert drive.write(block) == len(block)  # the first write after recovery
        drive.close()  # the filemark
        assert not any("failed" in n for n in notes), notes
    with Cassette.open(image, sync=False) as c:
        m = BackerMedium(SimDeck(c), mode)
        assert read_file(m) == (b"closed" * 100, FILEMARK)
        recovered, mark = read_file(m, 4096)
        assert mark is FILEMARK and m.read_block(10) is END_OF_DATA
        # the recovered part comes back as it was recovered, the appended blocks after it
        tail = b"".join(appended)
        assert recovered.endswith(tail)
        kept = recovered[: -len(tail)]
        assert data.startswith(kept) and len(kept) > len(data) - LANE_BATCH - 6000
        assert len(c.recordings) == 2 and c.recordings[1].blocks is not None


def test_refused_write_is_logged(tmp_path: Path) -> None:
    """Writing inside a recording of unknown format (not surely the Recorder's): EIO, logged."""
    image = tmp_path / "f.img"
    with Cassette.create(image, "ntsc", "T-30", sync=False) as c:
        m = BackerMedium(SimDeck(c), "nls")
        m.write_block(b"x" * 5000)
        m.write_filemarks(1)
        rec = c.recordings[0]
        c.replace_recording(0, rec.with_(fmt="auto", blocks=None))  # as `cassette record`'s
        notes: list[str] = []
        m = BackerMedium(SimDeck(c), "nls", log=notes.append)
        assert m.read_block(1000) == b"x" * 1000
        with pytest.raises(TapeError) as e:
            m.write_block(b"y")
        assert e.value.errno == errno.EIO
        assert len(notes) == 1 and "write failed" in notes[0] and "auto" in notes[0]


def test_host_disk_full_gives_enospc_and_keeps_the_closed_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    image = tmp_path / "d.img"
    closed = [random.Random(1).randbytes(10240) for _ in range(30)]
    notes: list[str] = []
    with Cassette.create(image, "ntsc", "T-30", sync=False) as c:
        drive = Drive(BackerMedium(SimDeck(c), "nhs", log=notes.append))
        drive.open(False, os.O_WRONLY)
        for block in closed:
            drive.write(block)
        drive.close()

        def disk_full(self: Cassette, start: int, fields: object) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(Cassette, "write_fields", disk_full)
        drive.open(False, os.O_WRONLY)
        with pytest.raises(TapeError) as e:
            # enough for a batch to fail on the codec lane and for its error to surface
            # (the write that completes the next batch waits for it)
            for _ in range(3 * WRITE_BATCH // 10240):
                drive.write(bytes(10240))
        assert e.value.errno == errno.ENOSPC
        assert len(notes) == 1 and "No space left on device" in notes[0], notes
        assert "Traceback" not in caplog.text
        with pytest.raises(TapeError) as e:
            drive.close()  # the filemark cannot be recorded either, and says why
        assert e.value.errno == errno.ENOSPC
        monkeypatch.undo()
    with Cassette.open(image, sync=False) as c:
        m = BackerMedium(SimDeck(c), "nhs")
        got = []
        while isinstance(item := m.read_block(1 << 20), bytes):
            got.append(item)
        assert got == closed and item is FILEMARK


class _JournalReports:
    """A catalog's ``interrupted`` fixed to a value, counting how often it is asked."""

    def __init__(self, value: Interrupted, limit: int = 1000) -> None:
        self.value = value
        self.asked = 0
        self.limit = limit

    def __get__(self, cassette: Cassette, owner: type) -> Interrupted | None:
        self.asked += 1
        assert self.asked < self.limit, "recovery does not end"
        return self.value


@pytest.mark.parametrize("start,fields", [
    (10**15, -10**15 + 1000),  # far past the tape
    (2**62, 100),
    (-5, 100),  # before the tape, over the committed recording
    (-(2**40), 2**41),
])
def test_absurd_journal_does_not_hang_recovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: int, fields: int
) -> None:
    with Cassette.create(tmp_path / "a.img", "ntsc", "T-30", sync=False) as c:
        m = BackerMedium(SimDeck(c), "nhs")
        m.write_block(b"kept" * 1000)
        m.write_filemarks(1)
        report = _JournalReports(Interrupted(start, fields, "nhs", "3.102"))
        monkeypatch.setattr(Cassette, "interrupted", report)
        notes: list[str] = []
        m = BackerMedium(SimDeck(c), "nhs", log=notes.append)
        assert notes  # reported, not silently dropped
        monkeypatch.undo()
        assert m.read_block(1 << 20) == b"kept" * 1000
        assert m.read_block(1 << 20) is FILEMARK
        assert len(c.recordings) == 1


def test_reader_of_a_recording_off_the_tape_ends(tmp_path: Path) -> None:
    """A catalog entry starting far before BOT reads nothing instead of replaying BOT."""
    from backerd.medium.reader import RecordingReader
    from backerd.vcr.base import Recording

    with Cassette.create(tmp_path / "o.img", "ntsc", "T-30", sync=False) as c:
        m = BackerMedium(SimDeck(c), "nls")
        m.write_block(b"at bot" * 100)
        m.write_filemarks(1)
        deck = SimDeck(c)
        played: list[int] = []
        play = deck.play

        def counted_play(count: int) -> list[bytes | None]:
            played.append(count)
            assert len(played) < 50, "the reader does not stop"
            return play(count)

        deck.play = counted_play  # type: ignore[method-assign]
        for start in (-(10**15), c.slots, 10**15):
            reader = RecordingReader(deck, Recording(start, 10**16, "nls"))
            assert reader.length() == 0 and reader.fed == 0

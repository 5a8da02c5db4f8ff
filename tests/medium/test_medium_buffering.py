"""Buffered writes and read-ahead on the codec lane: errors surface later, never lost.

A batch of user blocks is encoded and recorded on the medium's codec lane while later
blocks are accepted; its failure is reported on a later write or at the filemark, as
st reports a buffered write's error. Read-ahead decodes the next chunk on the lane; its
failure is reported on the read that needs those bytes. Expected contents are the bytes
the tests wrote; errnos are the st-semantics ones.
"""

from __future__ import annotations

import errno
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from backerd.errors import TapeError
from backerd.medium import BackerMedium
from backerd.medium.writer import LANE_BATCH, WRITE_BATCH, Writing
from backerd.tape import mtio
from backerd.tape.drive import Drive
from backerd.tape.medium import FILEMARK, MemoryMedium
from backerd.vcr.sim import Cassette, SimDeck

BLOCK = 10240


def blocks(count: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(BLOCK) for _ in range(count)]


@pytest.fixture
def cassette(tmp_path: Path) -> Iterator[Cassette]:
    with Cassette.create(tmp_path / "b.img", "ntsc", "T-30", sync=False) as c:
        yield c


def disk_full(self: Cassette, start: int, fields: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def read_back(m: BackerMedium) -> tuple[list[bytes], object]:
    got = []
    while isinstance(item := m.read_block(1 << 20), bytes):
        got.append(item)
    return got, item


def test_batches_reach_the_tape_in_order_and_close_loses_nothing(cassette: Cassette) -> None:
    data = blocks(3 * LANE_BATCH // BLOCK + 7)  # several batches and a partial one
    m = BackerMedium(SimDeck(cassette), "nhs")
    for block in data:
        m.write_block(block)
    m.close()  # no filemark: the recording ends, pending bytes included
    m.rewind()
    got, mark = read_back(m)
    assert got == data


def test_a_failed_batch_surfaces_at_the_filemark(
    cassette: Cassette, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes: list[str] = []
    m = BackerMedium(SimDeck(cassette), "nhs", log=notes.append)
    m.write_block(b"first")  # the recording begins before the disk fills
    monkeypatch.setattr(Cassette, "write_fields", disk_full)
    # exactly one batch: handed to the lane, the write itself succeeds
    for block in blocks(LANE_BATCH // BLOCK):
        m.write_block(block)
    with pytest.raises(TapeError) as e:
        m.write_filemarks(1)
    assert e.value.errno == errno.ENOSPC
    assert len(notes) == 1 and "No space left on device" in notes[0], notes
    assert m.writing.current is None  # the recording was abandoned at its gap
    assert m.lane.idle


def test_a_failed_batch_surfaces_on_a_later_write(
    cassette: Cassette, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = BackerMedium(SimDeck(cassette), "nhs")
    m.write_block(b"first")
    monkeypatch.setattr(Cassette, "write_fields", disk_full)
    data = blocks(2 * WRITE_BATCH // BLOCK)
    errors = []
    for block in data:  # the write that completes the next batch waits for the failed one
        try:
            m.write_block(block)
        except TapeError as exc:
            errors.append(exc.errno)
            break
    assert errors == [errno.ENOSPC]


def test_a_failure_of_the_batch_in_flight_is_not_lost_when_the_head_moves(
    cassette: Cassette, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = BackerMedium(SimDeck(cassette), "nhs")
    m.write_block(b"first")
    monkeypatch.setattr(Cassette, "write_fields", disk_full)
    for block in blocks(LANE_BATCH // BLOCK):
        m.write_block(block)
    with pytest.raises(TapeError) as e:
        m.rewind()  # the recording must end before the head moves: its error comes out
    assert e.value.errno == errno.ENOSPC
    monkeypatch.undo()
    m.rewind()  # once reported, the error is gone
    assert m.position().file == 0


def test_drive_reports_a_background_failure_as_enospc_on_close(
    cassette: Cassette, monkeypatch: pytest.MonkeyPatch
) -> None:
    drive = Drive(BackerMedium(SimDeck(cassette), "nhs"))
    drive.open(False, os.O_WRONLY)
    drive.write(b"first")
    monkeypatch.setattr(Cassette, "write_fields", disk_full)
    for block in blocks(LANE_BATCH // BLOCK):
        drive.write(block)
    with pytest.raises(TapeError) as e:
        drive.close()
    assert e.value.errno == errno.ENOSPC


class _Held:
    """Hold the lane's write batches until the test lets go."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gate = threading.Event()
        real = Writing.record_batch

        def held(writing: Writing, writer: object, batch: bytes) -> None:
            assert self.gate.wait(30)
            real(writing, writer, batch)  # type: ignore[arg-type]

        monkeypatch.setattr(Writing, "record_batch", held)


def test_write_would_wait_only_for_motion_or_a_busy_lane(
    cassette: Cassette, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = _Held(monkeypatch)
    m = BackerMedium(SimDeck(cassette), "nhs")
    assert m.write_would_wait(BLOCK)  # the recording must begin (catalog, deck)
    per_batch = -(-LANE_BATCH // BLOCK)  # blocks that complete a batch
    data = blocks(per_batch + 1)
    m.write_block(data[0])
    assert not m.write_would_wait(BLOCK)
    assert m.write_would_wait(LANE_BATCH)  # a block of a whole batch
    for block in data[1 : per_batch - 1]:
        m.write_block(block)
    assert not m.write_would_wait(BLOCK)  # completes a batch: handed to the idle lane
    m.write_block(data[per_batch - 1])
    assert m.lane.busy
    assert not m.write_would_wait(BLOCK)  # only gathers
    m.write_block(data[per_batch])
    assert m.write_would_wait(LANE_BATCH - BLOCK)  # would complete a batch: waits
    held.gate.set()
    m.write_filemarks(1)
    m.rewind()
    got, mark = read_back(m)
    assert got == data and mark is FILEMARK


def test_read_ahead_is_ready_for_inline_reads(cassette: Cassette) -> None:
    data = blocks(300)
    m = BackerMedium(SimDeck(cassette), "nhs")
    for block in data:
        m.write_block(block)
    m.write_filemarks(1)
    m.rewind()
    assert m.read_would_wait(BLOCK)  # no reader yet: the deck must move
    got = [m.read_block(BLOCK)]
    inline = 0
    while True:
        if not m.read_would_wait(BLOCK):
            inline += 1
        item = m.read_block(BLOCK)
        if not isinstance(item, bytes):
            break
        got.append(item)
    assert got == data and item is FILEMARK
    assert inline > len(data) // 2  # most blocks were decoded before they were asked for


def test_a_failed_read_ahead_surfaces_on_the_read_that_needs_it(
    cassette: Cassette, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = blocks(300)
    m = BackerMedium(SimDeck(cassette), "nhs")
    for block in data:
        m.write_block(block)
    m.write_filemarks(1)
    m.rewind()
    assert m.read_block(BLOCK) == data[0]  # the first chunk, decoded; the next one ahead

    def failing_play(self: SimDeck, count: int) -> list[bytes]:
        raise OSError(errno.EIO, "read error on the cassette image")

    monkeypatch.setattr(SimDeck, "play", failing_play)
    got = [data[0]]
    with pytest.raises(TapeError) as e:
        while True:
            got.append(m.read_block(BLOCK))  # type: ignore[arg-type]
    assert e.value.errno == errno.EIO
    assert got == data[: len(got)] and len(got) < len(data)


def test_drive_would_wait_outside_a_stream_and_without_a_buffering_medium(
    cassette: Cassette,
) -> None:
    drive = Drive(BackerMedium(SimDeck(cassette), "nhs"))
    drive.open(False, os.O_RDWR)
    assert drive.would_wait(True, BLOCK)  # no stream yet
    drive.write(bytes(BLOCK))
    assert not drive.would_wait(True, BLOCK)
    assert drive.would_wait(False, BLOCK)  # a read turns the tape around
    drive.mtioctop(mtio.MTSETBLK, 512)
    drive.write(bytes(BLOCK))
    assert not drive.would_wait(True, BLOCK)
    drive.close()
    assert drive.would_wait(True, BLOCK)  # closed
    memory = Drive(MemoryMedium())
    memory.open(False, os.O_RDWR)
    memory.write(bytes(BLOCK))
    assert memory.would_wait(True, BLOCK)  # no buffering to ask: always the worker thread


def test_close_flush_records_the_buffer_and_reports_its_failure(
    cassette: Cassette, monkeypatch: pytest.MonkeyPatch
) -> None:
    # close(2) reaches the daemon as FLUSH before the (asynchronous) RELEASE: buffered
    # blocks and the filemark are recorded there, so a failure reaches close instead of
    # only the log.
    medium = BackerMedium(SimDeck(cassette), "nhs")
    drive = Drive(medium)
    drive.open(False, os.O_WRONLY)
    drive.write(blocks(1)[0])
    assert cassette.signal_end() == 0  # still in the write buffer
    drive.flush()
    assert cassette.signal_end() > 0  # recorded, with its filemark
    assert medium.position() == (1, 0)
    drive.write(blocks(1, seed=2)[0])
    monkeypatch.setattr(Cassette, "write_fields", disk_full)
    with pytest.raises(TapeError) as e:
        drive.flush()
    assert e.value.errno == errno.ENOSPC

"""The recording being written: user blocks in, fields for the deck out.

Theory of operation. A ``RecordingWriter`` owns the ``Recorder`` of one recording and
the ``FieldCutter`` that turns its raw stream into whole fields; it counts the fields
handed out (so the medium knows where on tape the next one goes), the user bytes, and
the block sizes (run-length encoded, committed to the catalog beside the tape when the
recording ends). Small blocks are gathered in ``pending`` and handed to the encoder in batches of
``LANE_BATCH`` user bytes (``take_batch``/``encode``), as st's write buffer does; the
medium encodes and records a batch on its codec lane while the next one gathers. At
most ``WRITE_BATCH`` user bytes (one batch in flight, the next one gathering) are not
yet on tape: a crash loses at most that much of an unfinished recording.

Writing in the middle of a recording keeps its first blocks. ``resume`` decodes the
recording up to that point and feeds it through a fresh Recorder: the encoder is
deterministic, so the fields it emits are those already on tape and only the fields
after them need recording anew. That needs a recording in the format the Recorder
writes (3.102, or a raw mode), and whose kept bytes decode without loss. Kept blocks of
a recording without stored boundaries (foreign or recovered) are the blocks it was
read or spaced in; they become real boundaries, as on a tape of fixed records.

``Writing`` holds the one recording being written on a deck: it journals it in the
catalog when it begins (so a crash leaves it recoverable), records the fields at the
writer's slot, and commits the catalog entry when it ends. A recording whose fields
could not all be recorded has a gap: it is abandoned there, as a crash would leave it.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field

from backerd.errors import TapeError
from backerd.format.fields import FieldCutter, bytes_within
from backerd.format.params import mode as mode_params
from backerd.format.recorder import Recorder
from backerd.medium.failures import tape_errors
from backerd.medium.index import FileIndex
from backerd.medium.reader import RecordingReader
from backerd.vcr.base import BlockRuns, Deck, Recording, RecordingCatalog

WRITE_BATCH = 1 << 20  # user bytes accepted but not yet recorded, at most
LANE_BATCH = WRITE_BATCH // 2  # user bytes encoded at once, on the codec lane
WRITTEN_FORMAT = "3.102"  # the only format the Recorder writes
_REPLAY_CHUNK = 1 << 20  # user bytes decoded at once while resuming


@dataclass
class RecordingWriter:
    """The recording being written, from tape slot ``start`` on."""

    start: int
    mode: str
    recorder: Recorder
    cutter: FieldCutter
    fields: int = 0  # fields handed out for recording
    user_bytes: int = 0
    runs: BlockRuns = field(default_factory=BlockRuns)
    blocks: int = 0
    pending: bytearray = field(default_factory=bytearray)  # user bytes not yet encoded
    # fields from ``start`` -> most user bytes that fit in them (asked per block, with
    # the same few field counts for the whole recording)
    _room: dict[int, int] = field(default_factory=dict, repr=False)

    @classmethod
    def new(cls, start: int, mode: str) -> RecordingWriter:
        params = mode_params(mode)
        return cls(start, params.name, Recorder(params.name, WRITTEN_FORMAT),
                   FieldCutter(params))

    @property
    def next_slot(self) -> int:
        """Tape slot of the next field to record."""
        return self.start + self.fields

    def fits(self, size: int, tape_length: int) -> bool:
        """Whether a further block of ``size`` bytes still ends before the end of tape."""
        return self.user_bytes + size <= self._bytes_within(tape_length - self.start)

    def reaches(self, slot: int) -> bool:
        """Whether the recording as it stands, closed (BOR, data, EOR and pad fields),
        would end at tape slot ``slot`` or beyond."""
        return self.user_bytes > self._bytes_within(slot - self.start - 1)

    def _bytes_within(self, fields: int) -> int:
        room = self._room.get(fields)
        if room is None:
            room = self._room[fields] = bytes_within(self.recorder.params, fields)
        return room

    def add_block(self, data: bytes) -> None:
        """Take one user block (encoded with its batch, see ``take_batch``)."""
        self.pending += data
        self.user_bytes += len(data)
        self.runs.append(len(data))
        self.blocks += 1

    @property
    def batch_ready(self) -> bool:
        return len(self.pending) >= LANE_BATCH

    def completes_batch(self, size: int) -> bool:
        """Whether a further block of ``size`` bytes makes a batch ready."""
        return len(self.pending) + size >= LANE_BATCH

    def take_batch(self) -> bytearray:
        """The pending user bytes, to be encoded (``encode``) in this order; handed over
        as they are (not copied: new blocks gather in a new buffer)."""
        batch, self.pending = self.pending, bytearray()
        return batch

    def encode(self, batch: bytes | bytearray) -> list[bytes]:
        """The fields of a batch, ready for the deck (codec work: may run on the lane)."""
        return self.cutter.cut(self.recorder.write(batch)) if batch else []

    def close(self) -> list[bytes]:
        """End the recording: the fields of the pending bytes and the last ones (EOR, pad)."""
        fields = self.encode(self.take_batch())
        return fields + self.cutter.cut(self.recorder.close()) + self.cutter.rest()

    def recording(self, *, filemark: bool) -> Recording:
        """The catalog entry of the recording, once its last fields are recorded."""
        return Recording(
            start=self.start, fields=self.fields, mode=self.mode, fmt=WRITTEN_FORMAT,
            user_bytes=self.user_bytes, blocks=self.runs.freeze(), filemark=filemark,
        )


def can_resume(rec: Recording) -> bool:
    """Whether the Recorder reproduces ``rec``'s fields (so it can be written into)."""
    return mode_params(rec.mode).is_raw or rec.fmt == WRITTEN_FORMAT


def resume(
    rec: Recording, reader: RecordingReader, keep: int, runs: BlockRuns, blocks: int
) -> RecordingWriter:
    """A writer continuing ``rec`` after its first ``blocks`` blocks (``keep`` bytes).

    ``fields`` of the result counts the fields already on tape; recording goes on after
    them. ``reader`` plays ``rec`` from its start.
    """
    if not can_resume(rec):
        raise TapeError(
            f"cannot write inside a recording in format {rec.fmt}; write at its start "
            "or at EOD", errno=errno.EIO)
    writer = RecordingWriter.new(rec.start, rec.mode)
    done = 0
    while done < keep:
        data, lost = reader.read(done, min(keep - done, _REPLAY_CHUNK))
        if lost or not data:
            raise TapeError("recording cannot be read back to append to it",
                            errno=errno.EIO)
        writer.fields += len(writer.cutter.cut(writer.recorder.write(data)))
        done += len(data)
    writer.user_bytes = keep
    writer.runs = runs
    writer.blocks = blocks
    return writer


class Writing:
    """Begins, records and ends the one recording being written (``current``)."""

    def __init__(
        self, deck: Deck, index: FileIndex, on_corrected: Callable[[int], None]
    ) -> None:
        self.deck = deck
        self.index = index
        self.on_corrected = on_corrected
        self.current: RecordingWriter | None = None

    def begin(
        self, catalog: RecordingCatalog, file: int, block: int, mode: str
    ) -> RecordingWriter:
        """Start writing at block ``block`` of file ``file`` (new recordings in ``mode``)."""
        recs = catalog.recordings
        if file < len(recs) and block > 0:
            return self._resume(catalog, file, block, recs[file])
        start = recs[file].start if file < len(recs) else (recs[-1].end if recs else 0)
        with tape_errors("starting a recording"):
            catalog.begin_recording(start, mode, WRITTEN_FORMAT, index=min(file, len(recs)))
        self.index.forget_from(file)
        self.deck.seek(start)
        self.current = RecordingWriter.new(start, mode)
        return self.current

    def _resume(
        self, catalog: RecordingCatalog, file: int, block: int, rec: Recording
    ) -> RecordingWriter:
        keep = self.index.offset(file, rec, block)
        runs = self.index.runs_before(file, rec, block)
        with tape_errors("reading back the recording"):
            reader = RecordingReader(self.deck, rec, on_corrected=self.on_corrected)
            writer = resume(rec, reader, keep, runs, block)
        # The fields emitted so far are those already on tape: keep them, record after.
        with tape_errors("resuming a recording"):
            catalog.begin_recording(rec.start, rec.mode, rec.fmt, keep=writer.fields,
                                    index=file)
        self.index.forget_from(file)
        self.deck.seek(writer.next_slot)
        self.current = writer
        return writer

    def record(self, fields: list[bytes]) -> None:
        """Record fields of the current recording at its next slot."""
        writer = self.current
        if writer is None or not fields:
            return
        try:
            self._put(writer, fields)
        except TapeError:
            self.abandon()
            raise

    def record_batch(self, writer: RecordingWriter, batch: bytes | bytearray) -> None:
        """Encode and record one batch of ``writer`` (a codec-lane job; the caller
        ``abandon``s the recording if this fails)."""
        with tape_errors("encoding"):
            fields = writer.encode(batch)
        self._put(writer, fields)

    def _put(self, writer: RecordingWriter, fields: list[bytes]) -> None:
        if not fields:
            return
        with tape_errors("recording"):
            if self.deck.position() != writer.next_slot:
                self.deck.seek(writer.next_slot)
            self.deck.record(fields)
        writer.fields += len(fields)

    def abandon(self) -> None:
        """A gap: the recording ends here, as an interrupted one."""
        self.current = None

    def finish(self, catalog: RecordingCatalog, *, filemark: bool) -> RecordingWriter | None:
        """End the current recording (EOR) and commit it; the writer that was current."""
        writer = self.current
        if writer is None:
            return None
        self.record(writer.close())
        self.current = None  # whatever happens, this recording is over
        with tape_errors("committing the recording"):
            catalog.commit_recording(writer.recording(filemark=filemark))
            self.deck.stop()
        return writer

"""The Backer medium: st's tape (blocks and filemarks) as Backer recordings on a VCR.

Theory of operation. One tape file is one Backer recording (BOR, data, EOR) on the
cassette in the deck; a filemark is the end of a recording. Writing blocks streams the
user bytes through a ``RecordingWriter`` into fields recorded at the deck position; the
block sizes are remembered beside the tape (run-length encoded, in the deck's catalog,
which the simulated deck keeps in the cassette image), never on it, so the original
driver still reads the tape. Writing filemarks ends the recording (EOR) and commits it.

Reading plays the recording's fields through a ``RecordingReader`` and serves blocks by
the stored sizes (``FileIndex``), holding at most one block plus one chunk of fields in
memory. A foreign recording (no stored sizes: a raw stream from ``backerd encode``, a
tape of the original driver, a recording recovered after a crash) is served as a byte
stream in the sizes asked for, and spaced over in virtual blocks of ``stream_block``
bytes. A block holding bytes the Player reported lost fails with EIO (``read_block``
raises ``DamagedBlock``); reading goes on after it. Corrected symbols count as soft
errors, which the Drive takes into mt_erreg (``take_soft_errors``).

Positions are (file, block) as in ``tape.medium``: file ``i`` < n is committed recording
``i``; file n is the recording being written, or the blank tape at the end of data.
Movement follows ``tape.spacing`` over ``blocks_in``/``filemark_after``; the deck moves
only when data is played or recorded: to another file by its index search, inside a
recording by replaying it from its start (the Player must see the BOR to number
sectors). Writing inside a recording keeps its first blocks (``writer.resume``).

On load, signal past the last committed recording is indexed again (``recovery``).
Every failure below (deck, catalog, host disk) reaches the Drive as a ``TapeError``
with its errno; failed writes are logged in one line.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable
from functools import partial

from backerd.errors import BackerError, TapeError
from backerd.format.params import check_standard, standard_mismatch
from backerd.format.params import mode as mode_params
from backerd.medium.failures import tape_errors
from backerd.medium.index import FileIndex, run_size
from backerd.medium.lane import CodecLane
from backerd.medium.reader import RecordingReader
from backerd.medium.recovery import Recovery
from backerd.medium.writer import LANE_BATCH, RecordingWriter, Writing
from backerd.tape import spacing
from backerd.tape.density import DEFAULT_DENSITY, is_valid_density, mode_for_density
from backerd.tape.medium import END_OF_DATA, FILEMARK, DamagedBlock, Mark, TapePosition
from backerd.vcr.base import Deck, Recording, RecordingCatalog

# Writes stop with ENOSPC (st's early warning) this long before the end of the tape.
EARLY_WARNING_SECONDS = 60.0

# Write failures that are the user's business, not the operator's: not logged.
_QUIET_ERRNOS = frozenset({errno.EACCES, errno.ENOMEDIUM})


class BackerMedium:
    """``tape.medium.Medium`` on a VCR: one file = one Backer recording."""

    def __init__(
        self,
        deck: Deck,
        mode: str = "nhs",
        *,
        stream_block: int = 10240,
        early_warning_seconds: float = EARLY_WARNING_SECONDS,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.deck = deck
        self.default_mode = mode_params(mode).name
        self.early_warning_seconds = early_warning_seconds
        self.log = log or (lambda message: None)
        self.soft_errors = 0
        self._soft_reported = 0
        self.hard_errors = 0
        self._density = DEFAULT_DENSITY
        self._file = 0
        self._block = 0
        self._offset = 0  # user-byte offset of the head inside the current file
        self._reader: RecordingReader | None = None
        self._reader_file = -1  # the file self._reader plays
        self.index = FileIndex(self._measure, stream_block)
        self._logged: TapeError | None = None  # the write failure logged last
        self.lane = CodecLane()  # encodes a write batch or decodes read-ahead, one at a time
        self.writing = Writing(deck, self.index, self._note_corrected)
        if deck.loaded:
            self._check_standard(self.default_mode)
            self._recover()

    # -- catalog and head ----------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self.deck.loaded

    @property
    def write_protected(self) -> bool:
        return self.deck.loaded and self.deck.write_protected

    def _require_loaded(self) -> RecordingCatalog:
        if not self.deck.loaded:
            raise TapeError("no cassette loaded", errno=errno.ENOMEDIUM)
        catalog = self.deck.catalog
        if catalog is None:
            raise TapeError("this deck keeps no catalog of recordings", errno=errno.EIO)
        return catalog

    def _require_writable(self) -> RecordingCatalog:
        catalog = self._require_loaded()
        if self.deck.write_protected:
            raise TapeError("cassette is write-protected", errno=errno.EACCES)
        return catalog

    def _check_standard(self, mode: str) -> None:
        if self.deck.loaded:
            check_standard(mode, self.deck.standard)

    @property
    def mode(self) -> str:
        """The mode new recordings are written in."""
        return mode_for_density(self._density) or self.default_mode

    def _recordings(self) -> tuple[Recording, ...]:
        return self._require_loaded().recordings

    def _nfiles(self) -> int:
        """Files before the end of data (committed recordings)."""
        return len(self._recordings())

    def _note_corrected(self, count: int) -> None:
        self.soft_errors += count

    def _measure(self, i: int, rec: Recording) -> int:
        """Decode foreign file ``i`` to its end: its length, cached in the catalog."""
        length = RecordingReader(self.deck, rec, on_corrected=self._note_corrected).length()
        self._remember_length(i, length)
        return length

    def _remember_length(self, i: int, length: int) -> None:
        self.index.learn_length(i, length)
        catalog = self._require_loaded()
        rec = catalog.recordings[i]
        if rec.user_bytes is None and not self.deck.write_protected:
            with contextlib.suppress(BackerError, OSError):  # only a cache
                catalog.replace_recording(i, rec.with_(user_bytes=length))

    # -- the two facts tape.spacing needs ------------------------------------------------

    def blocks_in(self, file: int) -> int:
        recs = self._recordings()
        if file >= len(recs):
            return self.writing.current.blocks if self.writing.current else 0
        return self.index.blocks(file, recs[file])

    def filemark_after(self, file: int) -> bool:
        recs = self._recordings()
        if file >= len(recs):
            return False
        return recs[file].filemark or file < len(recs) - 1

    def _block_offset(self, file: int, block: int) -> int:
        recs = self._recordings()
        if file >= len(recs):
            return self.writing.current.user_bytes if self.writing.current else 0
        return self.index.offset(file, recs[file], block)

    def _set(self, file: int, block: int) -> None:
        self._file = file
        self._block = block
        self._offset = self._block_offset(file, block)

    def _settle(self) -> None:
        """End a recording being written before the head moves or reads."""
        self._quiesce()
        if self.writing.current is not None:
            self._finish_writer(filemark=False)

    def _quiesce(self) -> None:
        """Wait for the codec lane before the deck is used here.

        A read-ahead job is kept by its reader; a failed write batch is raised (the
        deferred error of an earlier write) once its recording is abandoned."""
        if self._reader is not None:
            self._reader.settle()
        self._collect(wait=True)

    def _collect(self, *, wait: bool) -> None:
        """Take the write batch in flight, if done (or ``wait``); raise its failure."""
        if self.lane.idle or (self.lane.busy and not wait):
            return
        if self._reader is not None and self._reader.ahead_in_flight:
            self._reader.settle()  # the job is the reader's: it keeps the result
            return
        try:
            self.lane.finish()
        except BaseException as exc:
            self.writing.abandon()
            with contextlib.suppress(TapeError):  # the cassette may have left meanwhile
                self._set(self._nfiles(), 0)  # the recording was abandoned
            if isinstance(exc, TapeError):
                self._write_failed("write", exc)
            raise

    def _recover(self) -> None:
        catalog = self.deck.catalog
        if catalog is not None:
            Recovery(self.deck, catalog, self.log, self._note_corrected).run()

    # -- writing ------------------------------------------------------------------------

    def _write_failed(self, what: str, exc: TapeError) -> None:
        if exc is self._logged:  # a batch's failure, logged when it was collected
            return
        self._logged = exc
        if exc.errno not in _QUIET_ERRNOS:
            self.log(f"{what} failed at file {self._file} block {self._block}: {exc.message}")

    def _begin_writer(self) -> RecordingWriter:
        catalog = self._require_writable()
        if self._file >= len(catalog.recordings) or self._block == 0:
            self._check_standard(self.mode)  # a new recording (a resumed one has its mode)
        self._reader = None
        return self.writing.begin(catalog, self._file, self._block, self.mode)

    def write_block(self, data: bytes) -> None:
        try:
            with tape_errors("writing"):
                self._write_block(data)
        except TapeError as exc:
            self._write_failed("write", exc)
            raise

    def write_would_wait(self, size: int) -> bool:
        """Whether ``write_block`` of ``size`` bytes may wait for the deck or the codec
        (False: it only buffers the block, or hands a batch to an idle lane)."""
        writer = self.writing.current
        if writer is None or size >= LANE_BATCH:
            return True
        return writer.completes_batch(size) and self.lane.busy

    def _write_block(self, data: bytes) -> None:
        writer = self.writing.current
        # an earlier batch's failure surfaces here, before this block is taken
        self._collect(wait=writer is not None and writer.completes_batch(len(data)))
        self._require_writable()
        began = writer is None
        if writer is None:
            self._quiesce()
            writer = self._begin_writer()
        if not writer.fits(len(data), self.deck.length):
            raise TapeError("physical end of tape", errno=errno.ENOSPC)
        writer.add_block(data)
        while writer.batch_ready:  # a block larger than a batch waits for each batch
            self._collect(wait=True)
            self.lane.submit(partial(self.writing.record_batch, writer, writer.take_batch()))
        if began:  # the recording's file number stays while it is written
            self._file = self._nfiles()
        self._block = writer.blocks
        self._offset = writer.user_bytes

    def _finish_writer(self, *, filemark: bool) -> None:
        try:
            writer = self.writing.finish(self._require_loaded(), filemark=filemark)
        except TapeError:
            self._set(self._nfiles(), 0)  # nothing committed: end of data
            raise
        if writer is not None:
            self._file = self._nfiles() - 1
            self._block = writer.blocks
            self._offset = writer.user_bytes

    def write_filemarks(self, count: int) -> None:
        if count < 1:
            raise ValueError("write_filemarks needs count >= 1")
        try:
            with tape_errors("writing a filemark"):
                self._write_filemarks(count)
        except TapeError as exc:
            self._write_failed("writing a filemark", exc)
            raise

    def _write_filemarks(self, count: int) -> None:
        catalog = self._require_writable()
        self._quiesce()
        if self.writing.current is not None:
            self._finish_writer(filemark=True)
            count -= 1
            self._set(self._nfiles(), 0)
        elif self._block > 0 and self._file < self._nfiles():
            f = self._file
            rec = catalog.recordings[f]
            if self._block == self.blocks_in(f):
                # at the end of a recording: it ends here, the rest of the tape goes
                with tape_errors("ending the recording"):
                    if f + 1 < len(catalog.recordings):
                        catalog.discard_from(rec.end, index=f + 1)
                    if not rec.filemark:
                        catalog.replace_recording(f, rec.with_(filemark=True))
            else:
                self._begin_writer()
                self._finish_writer(filemark=True)
            count -= 1
            self.index.forget_from(f + 1)
            self._set(f + 1, 0)
        for _ in range(count):  # each further filemark is an empty recording
            self._begin_writer()
            self._finish_writer(filemark=True)
            self._set(self._nfiles(), 0)

    def erase(self) -> None:
        catalog = self._require_writable()
        self._settle()
        recs = catalog.recordings
        f, b = self._file, self._block
        try:
            with tape_errors("erasing"):
                if f < len(recs) and b > 0:
                    self._begin_writer()
                    self._finish_writer(filemark=False)
                else:
                    start = recs[f].start if f < len(recs) else (recs[-1].end if recs else 0)
                    catalog.discard_from(start, index=min(f, len(recs)))
        except TapeError as exc:
            self._write_failed("erase", exc)
            raise
        self._reader = None

    # -- reading -----------------------------------------------------------------------

    def _new_reader(self, file: int, rec: Recording) -> RecordingReader:
        self.deck.stop()
        try:
            self.deck.index_search(file)
        except BackerError:
            self.deck.seek(rec.start)
        return RecordingReader(self.deck, rec, on_corrected=self._note_corrected,
                               lane=self.lane)

    def _reader_at(self, file: int, offset: int) -> RecordingReader:
        r = self._reader
        if r is None or self._reader_file != file or r.base > offset:
            if r is not None:
                r.settle()
            r = self._reader = self._new_reader(file, self._recordings()[file])
            self._reader_file = file
        return r

    def read_would_wait(self, max_size: int) -> bool:
        """Whether ``read_block`` may wait for the deck or the codec (False: the next
        block of a recording with stored block sizes is decoded already)."""
        r = self._reader
        if self.writing.current is not None or r is None or self._reader_file != self._file:
            return True
        recs = self._recordings()
        if self._file >= len(recs) or recs[self._file].blocks is None:
            return True
        size = run_size(recs[self._file].blocks, self._block)
        return size is None or not r.holds(self._offset, size)

    def read_block(self, max_size: int) -> bytes | Mark:
        self._require_loaded()
        if self.writing.current is not None:
            self._settle()
        f = self._file
        recs = self._recordings()
        if f >= len(recs):
            return END_OF_DATA
        rec = recs[f]
        if rec.blocks is not None:
            size = run_size(rec.blocks, self._block)
            if size is None:
                return self._end_of_file(f)
        else:
            size = max(max_size, 1)
            known = self.index.known_length(f, rec)
            if known is not None and self._offset >= known:
                return self._end_of_file(f)
        with tape_errors("playing"):
            reader = self._reader_at(f, self._offset)
            data, lost = reader.read(self._offset, size)
        if rec.blocks is None:
            if not data and reader.done:
                self._remember_length(f, reader.decoded)
                if reader.possibly_lost:
                    # no block list to check the end against (a foreign recording)
                    self.log(f"file {f}: its end was inferred; up to {reader.possibly_lost} "
                             "more bytes after it may have been lost")
                return self._end_of_file(f)
            self.index.define_block(f, rec, self._block, self._offset + len(data))
        self._block += 1
        self._offset += len(data) if rec.blocks is None else size
        if lost or (rec.blocks is not None and len(data) < size):
            self.hard_errors += 1
            raise DamagedBlock(f"unrecoverable data in block {self._block - 1} of file {f}")
        return data

    def _end_of_file(self, f: int) -> Mark:
        if self.filemark_after(f):
            self._file, self._block, self._offset = f + 1, 0, 0
            return FILEMARK
        return END_OF_DATA

    # -- positioning -------------------------------------------------------------------

    def position(self) -> TapePosition:
        return TapePosition(self._file, self._block)

    def tell(self) -> int:
        self._require_loaded()
        self._quiesce()
        return spacing.logical_block(self, self.position())

    def at_bot(self) -> bool:
        return self._file == 0 and self._block == 0

    def space_blocks(self, count: int) -> int:
        self._require_loaded()
        self._settle()
        target, done = spacing.space_blocks(self, self.position(), count)
        self._set(*target)
        return done

    def space_filemarks(self, count: int) -> int:
        self._require_loaded()
        self._settle()
        target, done = spacing.space_filemarks(self, self.position(), count)
        self._set(*target)
        return done

    def rewind(self) -> None:
        self._require_loaded()
        self._settle()
        self._reader = None
        self.deck.rewind()
        self._set(0, 0)

    def seek_eod(self) -> None:
        self._require_loaded()
        self._settle()
        self._set(*spacing.end_of_data(self))
        recs = self._recordings()
        self.deck.seek(recs[-1].end if recs else 0)

    def locate(self, block: int) -> None:
        self._require_loaded()
        self._settle()
        if block < 0:
            raise TapeError("negative block address", errno=errno.EINVAL)
        target = spacing.locate(self, block)
        if target is None:
            self.seek_eod()
            raise TapeError(f"block {block} is beyond end of data", errno=errno.EIO)
        self._set(*target)

    # -- the cassette ------------------------------------------------------------------

    def load(self) -> None:
        try:
            self._quiesce()
        except TapeError as exc:  # the recording on the cassette that left is abandoned
            self._write_failed("write", exc)
        self.writing.current = None
        self._reader = None
        with tape_errors("loading"):
            self.deck.load()
        self.index.forget_from(0)
        self._file = self._block = self._offset = 0
        self._recover()

    def unload(self) -> None:
        if self.deck.loaded:
            self._settle()
            self.deck.eject()
        self._reader = None
        self._file = self._block = self._offset = 0

    def close(self) -> None:
        """End what is being written (no filemark) and make the catalog durable."""
        if self.deck.loaded:
            self._settle()
            self.deck.stop()
            catalog = self.deck.catalog
            if catalog is not None:
                catalog.flush()

    def early_warning(self) -> bool:
        if not self.deck.loaded:
            return False
        zone = int(self.early_warning_seconds * self.deck.fps)
        writer = self.writing.current
        if writer is not None:
            return writer.reaches(self.deck.length - zone)
        recs = self._recordings()
        here = recs[self._file].start if self._file < len(recs) else (
            recs[-1].end if recs else 0)
        return here >= self.deck.length - zone

    def set_density(self, code: int) -> None:
        if not is_valid_density(code):
            raise TapeError(f"unknown density code {code:#x}", errno=errno.EINVAL)
        name = mode_for_density(code)
        if name is not None and self.deck.loaded:
            problem = standard_mismatch(name, self.deck.standard)
            if problem is not None:
                raise TapeError(f"density {code:#x}: {problem}", errno=errno.EINVAL)
        self._density = code

    def density(self) -> int:
        """Mode bits of the recording at the head, else of the mode new recordings get."""
        if self.deck.loaded and self.deck.catalog is not None:
            recs = self.deck.catalog.recordings
            if self.writing.current is None and self._file < len(recs):
                return mode_params(recs[self._file].mode).mode_bits
        return mode_params(self.mode).mode_bits

    def take_soft_errors(self) -> int:
        """Corrected symbols since the last call (the Drive reports them in mt_erreg)."""
        count = self.soft_errors - self._soft_reported
        self._soft_reported = self.soft_errors
        return count

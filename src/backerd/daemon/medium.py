"""The Backer medium: st's tape (blocks and filemarks) as Backer recordings on a VCR.

Theory of operation. One tape file is one Backer recording (BOR, data, EOR) on the
cassette in the deck; a filemark is the end of a recording. Writing blocks streams the
user bytes through a ``Recorder`` into fields recorded at the deck position; the block
sizes are remembered beside the tape (run-length encoded, in the deck's catalog, which
the simulated deck keeps in the cassette image), never on it, so the original driver
still reads the tape. Writing filemarks ends the recording (EOR) and commits it.

Reading plays the recording's fields through a ``Player`` and serves blocks by the
stored sizes, holding at most one block plus one chunk of fields in memory. A foreign
recording (no stored sizes: a raw stream from ``backerd encode`` or a tape of the
original driver) is served as a byte stream in the sizes asked for, and spaced over in
virtual blocks of ``stream_block`` bytes. Bytes the Player reports lost make the block
holding them fail with EIO (a hard error); reading goes on after it. Corrected symbols
count as soft errors.

Positions are (file, block) as in ``tape.medium``: file ``i`` < n is committed recording
``i``; file n is the recording being written, or the blank tape at the end of data.
Moving to another file uses the deck's index search; moving inside a recording replays
it from its start (the Player must see the BOR to number sectors). Writing in the middle
of a recording keeps its first blocks: the recording is decoded up to that point and fed
through a fresh Recorder, whose fields are those already on tape, so only the fields
after them are recorded anew.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from backerd.errors import BackerError, TapeError, UsageError
from backerd.format.params import ModeParams
from backerd.format.params import mode as mode_params
from backerd.tape.density import DEFAULT_DENSITY, is_valid_density, mode_for_density
from backerd.tape.medium import END_OF_DATA, FILEMARK, DamagedBlock, Mark, TapePosition
from backerd.vcr.base import BlockRuns, Deck, Recording, RecordingCatalog

PLAY_CHUNK = 256  # fields played and decoded at once (the codecs like big batches)
WRITE_BATCH = 256 << 10  # user bytes gathered before they go to the Recorder


class RecorderLike(Protocol):
    fields_emitted: int

    def write(self, data: bytes) -> bytes: ...

    def close(self) -> bytes: ...


class PlayerLike(Protocol):
    def feed(self, raw: bytes) -> Any: ...

    def finish(self) -> Any: ...


@dataclass
class Codec:
    """Makes the recorders and players of the medium (tests may substitute a stand-in)."""

    recorder: Callable[[str], RecorderLike]
    player: Callable[[str, str], PlayerLike]


def _real_recorder(mode: str) -> RecorderLike:
    if mode_params(mode).is_raw:
        return _RawRecorder()
    from backerd.format.recorder import Recorder

    return Recorder(mode, "3.102")


def _real_player(mode: str, fmt: str) -> PlayerLike:
    if mode_params(mode).is_raw:
        return _RawPlayer()
    from backerd.format.player import Player

    return Player(mode, fmt)


BACKER_CODEC = Codec(_real_recorder, _real_player)


@dataclass
class _Output:
    data: bytes
    events: list = field(default_factory=list)
    end_of_record: bool = False


class _RawRecorder:
    """Raw modes: the user bytes are the signal."""

    def __init__(self) -> None:
        self.fields_emitted = 0

    def write(self, data: bytes) -> bytes:
        return bytes(data)

    def close(self) -> bytes:
        return b""


class _RawPlayer:
    def feed(self, raw: bytes) -> _Output:
        return _Output(bytes(raw))

    def finish(self) -> _Output:
        return _Output(b"")


def _medium_error(exc: BackerError) -> TapeError:
    return TapeError(exc.message, errno=exc.errno)


class FieldCutter:
    """Cuts a raw stream into fields (field i has ``geometry.field_length(i)`` bytes)."""

    def __init__(self, params: ModeParams) -> None:
        self.geometry = params.geometry
        self.index = 0
        self.buf = bytearray()

    def cut(self, raw: bytes) -> list[bytes]:
        self.buf += raw
        out = []
        pos = 0
        while True:
            n = self.geometry.field_length(self.index)
            if len(self.buf) - pos < n:
                break
            out.append(bytes(self.buf[pos : pos + n]))
            pos += n
            self.index += 1
        del self.buf[:pos]
        return out

    def rest(self) -> list[bytes]:
        """The last, partial field (raw modes only)."""
        if not self.buf:
            return []
        out = [bytes(self.buf)]
        self.buf.clear()
        self.index += 1
        return out


def fields_needed(params: ModeParams, user_bytes: int) -> int:
    """Fields of a recording of ``user_bytes`` (spec 6.6), pad field included."""
    if params.is_raw:
        g = params.geometry
        frames, rest = divmod(user_bytes, g.frame_size)
        return 2 * frames + (0 if not rest else 1 if rest <= g.field_length(0) else 2)
    if params.codec == "ep":
        data = 255 * -(-user_bytes // params.group_capacity)
    else:
        data = -(-user_bytes // params.capacity)
    total = params.n_bor + data + params.n_eor
    return total + total % 2


@dataclass
class _Writer:
    """The recording being written."""

    start: int
    mode: str
    recorder: RecorderLike
    cutter: FieldCutter
    fields: int = 0
    user_bytes: int = 0
    runs: BlockRuns = field(default_factory=BlockRuns)
    blocks: int = 0
    pending: bytearray = field(default_factory=bytearray)  # not yet given to the Recorder


class _Reader:
    """Plays one recording through a Player; serves byte ranges of its user stream."""

    def __init__(self, medium: BackerMedium, index: int, rec: Recording) -> None:
        self.medium = medium
        self.index = index
        self.rec = rec
        self.player = medium.codec.player(rec.mode, rec.fmt)
        self.fed = 0  # fields played so far
        self.base = 0  # user offset of buf[0]
        self.buf = bytearray()
        self.decoded = 0  # user bytes accounted for (data and lost)
        self.lost: list[tuple[int, int]] = []  # [start, end) user-byte ranges
        self.done = False
        self.eor = False  # the Player met the end of the recording
        self.corrected = 0

    def _absorb(self, out: Any) -> None:
        # The Player keeps lost bytes in place (zeros) and names them in SectorLost
        # events, so offsets in the output are true user-byte offsets.
        self._append(bytes(out.data))
        for ev in out.events:
            if type(ev).__name__ == "SectorLost" and ev.length > 0:
                self.lost.append((int(ev.offset), int(ev.offset) + int(ev.length)))
        if out.end_of_record:
            self.done = self.eor = True
        stats = getattr(self.player, "stats", None)
        if stats is not None:
            total = int(getattr(stats, "byte_errors", 0))
            if total < self.corrected:  # a BOR reset the player's statistics
                self.corrected = 0
            self.medium.soft_errors += total - self.corrected
            self.corrected = total

    def _append(self, data: bytes) -> None:
        self.buf += data
        self.decoded += len(data)

    def _pump(self) -> None:
        deck = self.medium.deck
        left = self.rec.fields - self.fed
        if left <= 0:
            self._absorb(self.player.finish())
            self.done = True
            return
        where = self.rec.start + self.fed
        if deck.position() != where:
            deck.seek(where)
        fields = deck.play(min(PLAY_CHUNK, left))
        if not fields:
            self._absorb(self.player.finish())
            self.done = True
            return
        self.fed += len(fields)
        raw = b"".join(f for f in fields if f is not None)
        if raw:
            self._absorb(self.player.feed(raw))

    def read(self, offset: int, size: int) -> tuple[bytes, bool]:
        """Bytes [offset, offset + size) (fewer at the end) and whether any were lost."""
        if offset < self.base:
            raise ValueError("reader cannot go backwards")
        want = offset + size
        while self.decoded < want and not self.done:
            # keep memory bounded while skipping forward
            self._drop_before(offset)
            self._pump()
        self._drop_before(offset)
        end = min(want, self.decoded)
        data = bytes(self.buf[: max(end - offset, 0)])
        lost = any(a < end and b > offset for a, b in self.lost)
        self._drop_before(end)
        return data, lost

    def _drop_before(self, offset: int) -> None:
        n = min(offset - self.base, len(self.buf))
        if n > 0:
            del self.buf[:n]
            self.base += n
        if offset > self.base and not self.buf:
            self.base = min(offset, self.decoded)
        self.lost = [(a, b) for a, b in self.lost if b > self.base]

    def length(self) -> int:
        """Decode to the end; the user byte count of the recording."""
        while not self.done:
            self._drop_before(self.decoded)
            self._pump()
        return self.decoded


class BackerMedium:
    """``tape.medium.Medium`` on a VCR: one file = one Backer recording."""

    def __init__(
        self,
        deck: Deck,
        mode: str = "nhs",
        *,
        codec: Codec = BACKER_CODEC,
        stream_block: int = 10240,
        early_warning_seconds: float = 60.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.deck = deck
        self.codec = codec
        self.default_mode = mode_params(mode).name
        self.stream_block = stream_block
        self.early_warning_seconds = early_warning_seconds
        self.log = log or (lambda message: None)
        self.notices: list[str] = []
        self.soft_errors = 0
        self._soft_reported = 0
        self.hard_errors = 0
        self._density = DEFAULT_DENSITY
        self._file = 0
        self._block = 0
        self._offset = 0  # user-byte offset of the head inside the current file
        self._writer: _Writer | None = None
        self._reader: _Reader | None = None
        self._lengths: dict[int, int] = {}  # decoded user bytes of foreign recordings
        self._streams: dict[int, list[int]] = {}  # foreign recordings: ends of blocks read
        if deck.loaded:
            self._check_standard(self.default_mode)
            self._recover()

    # -- helpers ---------------------------------------------------------------------

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
        standard = mode_params(mode).geometry.standard
        if self.deck.loaded and standard != self.deck.standard:
            raise UsageError(
                f"mode {mode} is {standard.upper()} but the cassette is "
                f"{self.deck.standard.upper()}"
            )

    @property
    def mode(self) -> str:
        """The mode new recordings are written in."""
        return mode_for_density(self._density) or self.default_mode

    def _recordings(self) -> tuple[Recording, ...]:
        return self._require_loaded().recordings

    def _nfiles(self) -> int:
        """Files before the end of data (committed recordings)."""
        return len(self._recordings())

    def _filemark_after(self, i: int) -> bool:
        recs = self._recordings()
        if i >= len(recs):
            return False
        return recs[i].filemark or i < len(recs) - 1

    def _user_bytes(self, i: int) -> int:
        rec = self._recordings()[i]
        if rec.user_bytes is not None:
            return rec.user_bytes
        if i not in self._lengths:
            reader = _Reader(self, i, rec)
            self._lengths[i] = reader.length()
            self._remember_length(i, self._lengths[i])
        return self._lengths[i]

    def _forget_streams(self, first: int) -> None:
        """Files from ``first`` on are rewritten: what was learnt about them is stale."""
        self._lengths = {k: v for k, v in self._lengths.items() if k < first}
        self._streams = {k: v for k, v in self._streams.items() if k < first}

    def _stream_bounds(self, i: int, blocks: int) -> list[int]:
        """Ends of the first ``blocks`` blocks of foreign file ``i`` (virtual past reads)."""
        bounds = self._streams.setdefault(i, [])
        if blocks > len(bounds):
            total = self._user_bytes(i)
            last = bounds[-1] if bounds else 0
            while len(bounds) < blocks and last < total:
                last = min(last + self.stream_block, total)
                bounds.append(last)
        return bounds[:blocks]

    def _remember_length(self, i: int, length: int) -> None:
        catalog = self._require_loaded()
        rec = catalog.recordings[i]
        if rec.user_bytes is None and not self.deck.write_protected:
            with contextlib.suppress(BackerError):  # only a cache
                catalog.replace_recording(i, rec.with_(user_bytes=length))

    def _nblocks(self, i: int) -> int:
        recs = self._recordings()
        if i >= len(recs):
            return self._writer.blocks if self._writer else 0
        rec = recs[i]
        if rec.blocks is not None:
            return sum(c for _, c in rec.blocks)
        bounds = self._streams.get(i, [])
        last = bounds[-1] if bounds else 0
        return len(bounds) + -(-(self._user_bytes(i) - last) // self.stream_block)

    def _block_offset(self, i: int, block: int) -> int:
        """User-byte offset of block ``block`` of file ``i``."""
        recs = self._recordings()
        if i >= len(recs):
            return self._writer.user_bytes if self._writer else 0
        rec = recs[i]
        if rec.blocks is None:
            if block == 0:
                return 0
            bounds = self._stream_bounds(i, block)
            return bounds[-1] if bounds else 0
        off = 0
        for size, count in rec.blocks:
            if block <= count:
                return off + block * size
            off += size * count
            block -= count
        return off

    def _block_size(self, i: int, block: int) -> int | None:
        rec = self._recordings()[i]
        if rec.blocks is None:
            return None
        for size, count in rec.blocks:
            if block < count:
                return size
            block -= count
        return None

    def _set(self, file: int, block: int) -> None:
        self._file = file
        self._block = block
        self._offset = self._block_offset(file, block)

    def _settle(self) -> None:
        """End a recording being written before the head moves or reads."""
        if self._writer is not None:
            self._finish_writer(filemark=False)

    # -- recovery of an interrupted recording ----------------------------------------

    def _recover(self) -> None:
        """Index the signal found after the last committed recording, by decoding it.

        A recording interrupted by a crash of the daemon (journaled: its mode is known)
        or signal the catalog never saw (mode guessed from the field length) becomes one
        or more recordings without block boundaries, split where the Player finds an
        EOR; runs of signal separated by blank tape are taken one after the other.
        """
        catalog = self.deck.catalog
        if catalog is None or catalog.interrupted is None:
            return
        if self.deck.write_protected:
            lost = catalog.interrupted
            self._notice(f"signal after the last recording at {self.deck_time(lost.start)} "
                         f"({lost.fields} fields) not recovered: the cassette is "
                         "write-protected")
            return
        while (lost := catalog.interrupted) is not None:
            if not self._recover_run(catalog, lost.start, lost.start + lost.fields,
                                     lost.mode, lost.fmt or "auto"):
                catalog.forget_interrupted()  # the rest is blank tape to us
                return

    def _recover_run(
        self, catalog: RecordingCatalog, start: int, end: int, mode: str | None, fmt: str
    ) -> bool:
        """Index the recordings in fields [start, end); False if some signal is left."""
        while start < end:
            where = f"at {self.deck_time(start)} ({end - start} fields)"
            if mode is None:
                mode = self._guess_mode(start, end)
                if mode is None:
                    self._notice(f"unknown signal after the last recording {where} ignored")
                    return False
            probe = Recording(start, end - start, mode, fmt, filemark=False,
                              origin="recovered")
            reader = _Reader(self, len(catalog.recordings), probe)
            try:
                length = reader.length()
            except BackerError as exc:
                self._notice(f"signal {where} could not be decoded: {exc.message}")
                return False
            if length == 0 and not reader.eor:
                self._notice(f"nothing recoverable in the signal {where}")
                return False
            fields = end - start
            consumed = getattr(reader.player, "raw_consumed", None)
            if reader.eor and consumed:
                # consumed ends with the first EOR field; the rest of the EOR and the
                # pad field follow (a short EOR only moves us into the next BOR)
                fields = self._fields_of_raw(mode, int(consumed), end - start)
                fields += mode_params(mode).n_eor - 1
                fields = min(fields + fields % 2, end - start)
            try:
                catalog.commit_recording(probe.with_(fields=fields, user_bytes=length,
                                                     filemark=reader.eor))
            except BackerError as exc:
                self._notice(f"recovered recording {where} could not be indexed: "
                             f"{exc.message}")
                return False
            self._notice(f"recovered recording {len(catalog.recordings) - 1} {where}: "
                         f"{mode}, {length} bytes, no block boundaries")
            start += fields
        return True

    def deck_time(self, slot: int) -> str:
        from backerd.vcr.base import format_time

        return format_time(slot, self.deck.fps)

    def _notice(self, message: str) -> None:
        self.notices.append(message)
        self.log(message)

    def _guess_mode(self, start: int, end: int) -> str | None:
        """The formatted mode whose Player finds sectors in the signal at ``start``."""
        self.deck.seek(start)
        first = next((f for f in self.deck.play(8) if f is not None), None)
        if first is None:
            return None
        std = self.deck.standard[0]
        density = "h" if len(first) > 2000 else "l"
        for codec in ("s", "e"):
            name = std + density + codec
            params = mode_params(name)
            probe = Recording(start, min(end - start, params.n_bor + 40), name, "auto")
            reader = _Reader(self, -1, probe)
            try:
                reader.length()
            except BackerError:
                continue
            stats = getattr(reader.player, "stats", None)
            if reader.decoded or reader.eor or getattr(stats, "sectors_decoded", 0):
                return name
        return None

    @staticmethod
    def _fields_of_raw(mode: str, raw_bytes: int, limit: int) -> int:
        g = mode_params(mode).geometry
        n = 0
        total = 0
        while total < raw_bytes and n < limit:
            total += g.field_length(n)
            n += 1
        return n

    # -- writing ------------------------------------------------------------------------

    def _begin_writer(self) -> _Writer:
        catalog = self._require_writable()
        recs = catalog.recordings
        file, block = self._file, self._block
        if file >= len(recs):
            start = recs[-1].end if recs else 0
            mode = self.mode
            self._check_standard(mode)
            catalog.begin_recording(start, mode, "3.102", index=len(recs))
            writer = _Writer(start, mode, self.codec.recorder(mode),
                             FieldCutter(mode_params(mode)))
            self.deck.seek(start)
            self._reader = None
            self._writer = writer
            return writer
        rec = recs[file]
        if block == 0:
            mode = self.mode
            self._check_standard(mode)
            catalog.begin_recording(rec.start, mode, "3.102", index=file)
            self._forget_streams(file)
            writer = _Writer(rec.start, mode, self.codec.recorder(mode),
                             FieldCutter(mode_params(mode)))
            self.deck.seek(rec.start)
            self._reader = None
            self._writer = writer
            return writer
        return self._resume(file, block, rec)

    def _resume(self, file: int, block: int, rec: Recording) -> _Writer:
        """Continue recording ``file`` after its first ``block`` blocks."""
        params = mode_params(rec.mode)
        if rec.blocks is None or not (params.is_raw or rec.fmt == "3.102"):
            raise TapeError(
                "cannot write inside a recording made elsewhere; write at its start or at EOD",
                errno=errno.EIO,
            )
        keep = self._block_offset(file, block)
        recorder = self.codec.recorder(rec.mode)
        cutter = FieldCutter(params)
        reader = _Reader(self, file, rec)
        self._reader = None
        done = 0
        emitted = 0
        while done < keep:
            data, lost = reader.read(done, min(keep - done, 1 << 20))
            if lost or not data:
                raise TapeError("recording cannot be read back to append to it",
                                errno=errno.EIO)
            emitted += len(cutter.cut(recorder.write(data)))
            done += len(data)
        runs = BlockRuns()
        left = block
        for size, count in rec.blocks:
            take = min(count, left)
            if take:
                runs.runs.append([size, take])
            left -= take
        catalog = self._require_writable()
        # The fields emitted so far are those already on tape: keep them, record after.
        try:
            catalog.begin_recording(rec.start, rec.mode, rec.fmt, keep=emitted, index=file)
        except BackerError as exc:
            raise _medium_error(exc) from None
        self._forget_streams(file)
        writer = _Writer(rec.start, rec.mode, recorder, cutter, fields=emitted,
                         user_bytes=keep, runs=runs, blocks=block)
        self.deck.seek(rec.start + emitted)
        self._writer = writer
        return writer

    def _record(self, writer: _Writer, fields: list[bytes]) -> None:
        if not fields:
            return
        try:
            if self.deck.position() != writer.start + writer.fields:
                self.deck.seek(writer.start + writer.fields)
            self.deck.record(fields)
        except BackerError as exc:
            raise _medium_error(exc) from None
        writer.fields += len(fields)

    def write_block(self, data: bytes) -> None:
        self._require_writable()
        writer = self._writer or self._begin_writer()
        params = mode_params(writer.mode)
        needed = fields_needed(params, writer.user_bytes + len(data))
        if writer.start + needed > self.deck.length:
            raise TapeError("physical end of tape", errno=errno.ENOSPC)
        # Like st's write buffer: small blocks are gathered and encoded in batches.
        writer.pending += data
        if len(writer.pending) >= WRITE_BATCH:
            self._encode_pending(writer)
        writer.user_bytes += len(data)
        writer.runs.append(len(data))
        writer.blocks += 1
        self._file = self._nfiles()
        self._block = writer.blocks
        self._offset = writer.user_bytes

    def _encode_pending(self, writer: _Writer) -> None:
        if writer.pending:
            raw = writer.recorder.write(bytes(writer.pending))
            writer.pending.clear()
            self._record(writer, writer.cutter.cut(raw))

    def _finish_writer(self, *, filemark: bool) -> None:
        writer = self._writer
        if writer is None:
            return
        self._writer = None  # whatever happens, this recording is over
        self._encode_pending(writer)
        raw = writer.recorder.close()
        self._record(writer, writer.cutter.cut(raw) + writer.cutter.rest())
        rec = Recording(
            start=writer.start, fields=writer.fields, mode=writer.mode, fmt="3.102",
            user_bytes=writer.user_bytes, blocks=writer.runs.freeze(), filemark=filemark,
        )
        try:
            self._require_loaded().commit_recording(rec)
        except BackerError as exc:
            raise _medium_error(exc) from None
        self.deck.stop()
        self._file = self._nfiles() - 1
        self._block = writer.blocks
        self._offset = writer.user_bytes

    def write_filemarks(self, count: int) -> None:
        if count < 1:
            raise ValueError("write_filemarks needs count >= 1")
        catalog = self._require_writable()
        try:
            if self._writer is not None:
                self._finish_writer(filemark=True)
                count -= 1
                self._set(self._nfiles(), 0)
            elif self._block > 0 and self._file < self._nfiles():
                f = self._file
                rec = catalog.recordings[f]
                if self._block == self._nblocks(f):
                    # at the end of a recording: it ends here, the rest of the tape goes
                    if f + 1 < len(catalog.recordings):
                        catalog.discard_from(rec.end, index=f + 1)
                    if not rec.filemark:
                        catalog.replace_recording(f, rec.with_(filemark=True))
                else:
                    self._begin_writer()
                    self._finish_writer(filemark=True)
                count -= 1
                self._forget_streams(f + 1)
                self._set(f + 1, 0)
            for _ in range(count):  # each further filemark is an empty recording
                self._begin_writer()
                self._finish_writer(filemark=True)
                self._set(self._nfiles(), 0)
        except BackerError as exc:
            if isinstance(exc, TapeError):
                raise
            raise _medium_error(exc) from None

    # -- reading -----------------------------------------------------------------------

    def _reader_at(self, file: int, offset: int) -> _Reader:
        r = self._reader
        if r is None or r.index != file or r.base > offset:
            rec = self._recordings()[file]
            self.deck.stop()
            try:
                self.deck.index_search(file)
            except BackerError:
                self.deck.seek(rec.start)
            r = self._reader = _Reader(self, file, rec)
        return r

    def read_block(self, max_size: int) -> bytes | Mark:
        self._require_loaded()
        self._settle()
        f = self._file
        recs = self._recordings()
        if f >= len(recs):
            return END_OF_DATA
        rec = recs[f]
        size = self._block_size(f, self._block)
        if rec.blocks is not None and size is None:
            return self._end_of_file(f)
        if rec.blocks is None:
            size = max(max_size, 1)
            known = rec.user_bytes if rec.user_bytes is not None else self._lengths.get(f)
            if known is not None and self._offset >= known:
                return self._end_of_file(f)
        assert size is not None
        try:
            reader = self._reader_at(f, self._offset)
            data, lost = reader.read(self._offset, size)
        except BackerError as exc:
            raise _medium_error(exc) from None
        if rec.blocks is None and not data and reader.done:
            self._lengths[f] = reader.decoded
            self._remember_length(f, reader.decoded)
            return self._end_of_file(f)
        if rec.blocks is None:
            bounds = self._stream_bounds(f, self._block)
            bounds.append(self._offset + len(data))
            self._streams[f] = bounds
        self._block += 1
        self._offset += len(data) if rec.blocks is None else size
        if lost or (rec.blocks is not None and len(data) < size):
            self.hard_errors += 1
            raise DamagedBlock(f"unrecoverable data in block {self._block - 1} of file {f}")
        return data

    def _end_of_file(self, f: int) -> Mark:
        if self._filemark_after(f):
            self._file, self._block, self._offset = f + 1, 0, 0
            return FILEMARK
        return END_OF_DATA

    # -- positioning -------------------------------------------------------------------

    def position(self) -> TapePosition:
        return TapePosition(self._file, self._block)

    def tell(self) -> int:
        self._require_loaded()
        return sum(self._nblocks(i) + 1 for i in range(self._file)) + self._block

    def at_bot(self) -> bool:
        return self._file == 0 and self._block == 0

    def at_eod(self) -> bool:
        n = self._nfiles()
        if self._writer is not None:
            return True
        if self._file >= n:
            return True
        return self._file == n - 1 and not self._filemark_after(self._file) and (
            self._block >= self._nblocks(self._file)
        )

    def space_blocks(self, count: int) -> int:
        self._require_loaded()
        self._settle()
        done = 0
        if count >= 0:
            while done < count:
                n = self._nblocks(self._file) if self._file < self._nfiles() else 0
                if self._block < n:
                    self._set(self._file, self._block + 1)
                    done += 1
                elif self._filemark_after(self._file):
                    self._set(self._file + 1, 0)
                    break
                else:
                    break
            return done
        while done < -count:
            if self._block > 0:
                self._set(self._file, self._block - 1)
                done += 1
            elif self._file > 0:
                self._set(self._file - 1, self._nblocks(self._file - 1))
                break
            else:
                break
        return -done

    def space_filemarks(self, count: int) -> int:
        self._require_loaded()
        self._settle()
        done = 0
        if count >= 0:
            while done < count and self._filemark_after(self._file):
                self._set(self._file + 1, 0)
                done += 1
            if done < count:
                self._set(self._file, self._nblocks(self._file))  # stopped at EOD
            return done
        while done < -count and self._file > 0:
            self._set(self._file - 1, self._nblocks(self._file - 1))
            done += 1
        if done < -count:
            self._set(self._file, 0)  # stopped at BOT
        return -done

    def rewind(self) -> None:
        self._require_loaded()
        self._settle()
        self._reader = None
        self.deck.rewind()
        self._set(0, 0)

    def seek_eod(self) -> None:
        self._require_loaded()
        self._settle()
        n = self._nfiles()
        if n and not self._filemark_after(n - 1):
            self._set(n - 1, self._nblocks(n - 1))
        else:
            self._set(n, 0)
        recs = self._recordings()
        self.deck.seek(recs[-1].end if recs else 0)

    def locate(self, block: int) -> None:
        self._require_loaded()
        self._settle()
        if block < 0:
            raise TapeError("negative block address", errno=errno.EINVAL)
        remaining = block
        n = self._nfiles()
        for i in range(n + 1):
            nb = self._nblocks(i) if i < n else 0
            if remaining <= nb:
                self._set(i, remaining)
                return
            if not self._filemark_after(i):
                break
            remaining -= nb + 1
        self.seek_eod()
        raise TapeError(f"block {block} is beyond end of data", errno=errno.EIO)

    def erase(self) -> None:
        catalog = self._require_writable()
        self._settle()
        recs = catalog.recordings
        f, b = self._file, self._block
        try:
            if f >= len(recs):
                start = recs[-1].end if recs else 0
                catalog.discard_from(start, index=len(recs))
            elif b == 0:
                catalog.discard_from(recs[f].start, index=f)
            else:
                self._begin_writer()
                self._finish_writer(filemark=False)
        except BackerError as exc:
            raise _medium_error(exc) from None
        self._reader = None

    def load(self) -> None:
        self._writer = None
        self._reader = None
        try:
            self.deck.load()
        except BackerError as exc:
            raise _medium_error(exc) from None
        self._forget_streams(0)
        self._set_bot()
        self._recover()

    def _set_bot(self) -> None:
        self._file = self._block = self._offset = 0

    def unload(self) -> None:
        if self.deck.loaded:
            self._settle()
            self.deck.eject()
        self._reader = None
        self._set_bot()

    def close(self) -> None:
        """End what is being written (no filemark) and make the catalog durable."""
        if self.deck.loaded:
            self._settle()
            self.deck.stop()
            catalog = self.deck.catalog
            flush = getattr(catalog, "flush", None)
            if flush is not None:
                flush()

    def early_warning(self) -> bool:
        if not self.deck.loaded:
            return False
        zone = int(self.early_warning_seconds * self.deck.fps)
        if self._writer is not None:
            here = self._writer.start + fields_needed(
                mode_params(self._writer.mode), self._writer.user_bytes)
        else:
            recs = self._recordings()
            here = recs[self._file].start if self._file < len(recs) else (
                recs[-1].end if recs else 0)
        return here >= self.deck.length - zone

    def set_density(self, code: int) -> None:
        if not is_valid_density(code):
            raise TapeError(f"unknown density code {code:#x}", errno=errno.EINVAL)
        name = mode_for_density(code)
        if name is not None and self.deck.loaded:
            standard = mode_params(name).geometry.standard
            if standard != self.deck.standard:
                raise TapeError(
                    f"density {code:#x} ({name}) needs a {standard.upper()} cassette",
                    errno=errno.EINVAL,
                )
        self._density = code

    def density(self) -> int:
        """Mode bits of the recording at the head, else of the mode new recordings get."""
        if self.deck.loaded and self.deck.catalog is not None:
            recs = self.deck.catalog.recordings
            if self._writer is None and self._file < len(recs):
                return mode_params(recs[self._file].mode).mode_bits
        return mode_params(self.mode).mode_bits

    def take_soft_errors(self) -> int:
        """Corrected symbols since the last call (the Drive reports them in mt_erreg)."""
        count = self.soft_errors - self._soft_reported
        self._soft_reported = self.soft_errors
        return count

    def status(self) -> dict:
        """Medium state for status displays."""
        info: dict[str, Any] = {
            "mode": self.mode, "file": self._file, "block": self._block,
            "writing": self._writer is not None, "soft_errors": self.soft_errors,
            "hard_errors": self.hard_errors, "notices": list(self.notices),
        }
        if self.deck.loaded and self.deck.catalog is not None:
            info["recordings"] = len(self.deck.catalog.recordings)
            info["counter"] = self.deck.counter()
        return info

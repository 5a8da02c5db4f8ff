"""The simulated VCR: a cassette image on disk and a deck that plays and records it.

Theory of operation. A ``Cassette`` is one sparse file (layout and validation in
``vcr.image``): a superblock, two index copies written alternately, and ``slots``
fixed-size field slots, slot ``i`` = field time ``i`` from BOT. A slot holds a 4-byte
header (field length, little-endian u16, and 2 reserved bytes) and the field bytes. A
slot never written reads as zeros = length 0 = no signal, so a new cassette costs no
disk space. The index lists the committed recordings, the journal entry of a recording
being written, the write-protect tab and the wear counters; a torn write can only spoil
the copy being written, so loading picks the intact copy with the highest generation.

Data are fdatasync'ed before an index copy is written and the copy is fsync'ed, so what
was committed (a recording closed with a filemark) survives a crash of the daemon and
of the machine. Signal past the last committed recording is found on load (an
interrupted recording) and reported as ``interrupted``; the Backer medium then recovers
it by decoding. Recording anywhere but at the end of the signal discards everything
after that point, as on tape. A truncated image opens, but the recordings past its end
are reported (``past_end``): offline tools fail on them and the daemon logs them.

``SimDeck`` implements the ``Deck`` protocol over a cassette, with transport time
accounting, optional real-time pacing and optional playback noise.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from backerd.errors import HardwareUnavailable, MediumError, UsageError
from backerd.vcr.base import (
    Field,
    Interrupted,
    OpenRecording,
    Recording,
    format_time,
)
from backerd.vcr.image import (
    DATA_OFFSET,
    INDEX_HEADER,
    INDEX_SIZE,
    MAGIC,
    MAX_FIELD,
    SLOT_PARTS_PER_WRITE,
    SLOT_SIZE,
    SUPERBLOCK_SIZE,
    WEAR_KEYS,
    Damage,
    IndexState,
    Superblock,
    describe_past_end,
    encode_index,
    has_magic,
    index_payload_size,
    parse_superblock,
    pick_index,
    recordings_past_end,
    replace_refusal,
    slot_parts,
)
from backerd.vcr.noise import NoiseModel
from backerd.vcr.transport import Transport, TransportTimes

_SCAN_CHUNK = 512  # slots read at once when looking for the end of a signal


def _check_replaceable(path: Path, force: bool) -> None:
    """Refuse to put an image where anything but a regular file (or nothing) is."""
    try:
        mode: int | None = os.lstat(path).st_mode  # a symlink itself, not its target
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror}") from None
    refusal = replace_refusal(mode, force)
    if refusal is not None:
        raise UsageError(f"{path} {refusal}")


def _read_image(
    fd: int, file_size: int
) -> tuple[Superblock | Damage, tuple[int, IndexState] | Damage]:
    """Read and validate the superblock and the index copies of an open image."""
    superblock = parse_superblock(os.pread(fd, SUPERBLOCK_SIZE, 0), file_size)
    if isinstance(superblock, Damage):
        return superblock, superblock
    copies = []
    for copy in (0, 1):
        offset = SUPERBLOCK_SIZE + copy * INDEX_SIZE
        header = os.pread(fd, INDEX_HEADER.size, offset)
        size = index_payload_size(header)
        if size is not None:
            copies.append(os.pread(fd, INDEX_HEADER.size + size, offset))
    return superblock, pick_index(copies, superblock.slots)


class Cassette:
    """A cassette image: field slots plus a crash-safe index of recordings."""

    def __init__(
        self, path: Path, fd: int, superblock: Superblock, index: tuple[int, IndexState],
        readonly: bool, sync: bool = True, file_size: int | None = None,
    ) -> None:
        self.path = path
        self.sync = sync
        self._fd = fd
        self.readonly = readonly
        self.standard: str = superblock.standard
        self.fps: int = superblock.fps
        self.length_name: str = superblock.length_name
        self.slots: int = superblock.slots
        self._generation, state = index
        self._recordings: list[Recording] = list(state.recordings)
        self._open: OpenRecording | None = state.open
        self._write_protected = state.write_protected
        self._wear = dict(state.wear)
        self._dirty = False
        size = superblock.image_size if file_size is None else file_size
        self._lost = recordings_past_end(self._recordings, size)
        self._past_end = describe_past_end(self._recordings, self._lost, size, self.slots)
        self._interrupted = self._find_interrupted()
        self._signal_end = max(
            self._committed_end(), self._interrupted.start + self._interrupted.fields
            if self._interrupted else 0,
        )

    # -- creating and opening --------------------------------------------------------

    @classmethod
    def create(
        cls, path: str | os.PathLike, standard: str = "ntsc", length: str = "E-180",
        *, force: bool = False, sync: bool = True,
    ) -> Cassette:
        """Make a blank cassette image at ``path``; ``force`` replaces a regular file."""
        path = Path(path)
        superblock = Superblock.new(standard, length)
        _check_replaceable(path, force)
        tmp = path.with_name(f".{path.name}.new")
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISREG(os.lstat(tmp).st_mode):
                os.unlink(tmp)  # left by an interrupted create
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot create {path}: {exc.strerror}") from None
        try:
            os.pwrite(fd, superblock.to_bytes(), 0)
            os.ftruncate(fd, superblock.image_size)
            os.pwrite(fd, encode_index(IndexState(), 1), SUPERBLOCK_SIZE + INDEX_SIZE)
            if sync:
                os.fsync(fd)
        except OSError as exc:
            os.unlink(tmp)
            raise UsageError(f"cannot create {path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if sync:
            with contextlib.suppress(OSError):
                dfd = os.open(path.parent, os.O_RDONLY)
                os.fsync(dfd)
                os.close(dfd)
        return cls.open(path, sync=sync)

    @classmethod
    def open(
        cls, path: str | os.PathLike, *, readonly: bool = False, sync: bool = True
    ) -> Cassette:
        """Open an image; ``sync=False`` skips fsync (survives kill -9, not power loss).

        Everything read from the image is validated (``vcr.image``): a damaged or
        foreign file gives a one-line error, never a traceback or a hang.
        """
        path = Path(path)
        try:
            # O_NONBLOCK: a FIFO must not block the open (refused below, as not regular)
            fd = os.open(path, (os.O_RDONLY if readonly else os.O_RDWR) | os.O_NONBLOCK)
        except FileNotFoundError:
            raise UsageError(f"no cassette image at {path}") from None
        except IsADirectoryError:
            raise UsageError(f"{path} is a directory, not a cassette image") from None
        except OSError as exc:
            raise UsageError(f"cannot open {path}: {exc.strerror}") from None
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise UsageError(f"{path} is a directory, not a cassette image")
            if not stat.S_ISREG(info.st_mode):
                raise UsageError(f"{path} is not a regular file, not a cassette image")
            if not readonly:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise HardwareUnavailable(
                        f"cassette {path} is in use by another process"
                    ) from None
            try:
                superblock, index = _read_image(fd, info.st_size)
            except OSError as exc:
                raise MediumError(f"{path}: cannot read the image: {exc.strerror}") from None
            if isinstance(superblock, Damage):
                if not has_magic(os.pread(fd, len(MAGIC), 0)):
                    raise UsageError(f"{path} is not a backerd cassette image")
                raise MediumError(f"{path}: {superblock.message}")
            if isinstance(index, Damage):
                raise MediumError(f"{path}: {index.message}")
            return cls(path, fd, superblock, index, readonly, sync, info.st_size)
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            if self._dirty and not self.readonly:
                self._commit()
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Cassette:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the index ---------------------------------------------------------------------

    def _commit(self) -> None:
        """Write the index to the older copy, after making the tape data durable."""
        if self.readonly:
            raise UsageError(f"{self.path} is open read-only")
        state = IndexState(tuple(self._recordings), self._open, self._write_protected,
                           tuple((k, self._wear[k]) for k in WEAR_KEYS))
        gen = self._generation + 1
        copy = encode_index(state, gen)
        if len(copy) > INDEX_SIZE:
            raise MediumError("cassette index is full (too many recordings or block sizes)",
                              errno=errno.ENOSPC)
        if self.sync:
            os.fdatasync(self._fd)
        os.pwrite(self._fd, copy, SUPERBLOCK_SIZE + (gen % 2) * INDEX_SIZE)
        if self.sync:
            os.fsync(self._fd)
        self._generation = gen
        self._dirty = False

    def _committed_end(self) -> int:
        return self._recordings[-1].end if self._recordings else 0

    @property
    def recordings(self) -> tuple[Recording, ...]:
        return tuple(self._recordings)

    @property
    def open_recording(self) -> OpenRecording | None:
        return self._open

    @property
    def interrupted(self) -> Interrupted | None:
        return self._interrupted

    @property
    def past_end(self) -> str | None:
        """What a truncated image lost: one line naming the recordings past its end."""
        return self._past_end

    @property
    def lost_recordings(self) -> tuple[int, ...]:
        """Numbers of the recordings lying (partly) past the end of a truncated image."""
        return self._lost

    @property
    def write_protected(self) -> bool:
        return self._write_protected

    @write_protected.setter
    def write_protected(self, value: bool) -> None:
        self._write_protected = bool(value)
        self._commit()

    @property
    def wear(self) -> dict[str, int]:
        return dict(self._wear)

    def add_wear(self, passes: int = 0, fields: int = 0) -> None:
        if self.readonly:
            return
        self._wear["passes"] += passes
        self._wear["fields"] += fields
        self._dirty = True

    def flush(self) -> None:
        """Commit pending index changes (wear counters)."""
        if self._dirty and not self.readonly:
            self._commit()

    def signal_end(self) -> int:
        return self._signal_end

    def _require_writable(self) -> None:
        if self.readonly:
            raise UsageError(f"{self.path} is open read-only")
        if self._write_protected:
            raise MediumError("cassette is write-protected", errno=errno.EACCES)

    def begin_recording(
        self, start: int, mode: str, fmt: str = "3.102", *, keep: int = 0,
        index: int | None = None,
    ) -> None:
        """Journal a recording starting at ``start``; forget everything at or after it.

        The first ``keep`` fields from ``start`` stay on tape (a resumed recording).
        ``index`` (if given) also forgets recordings from that index on, which matters
        for empty recordings (no fields) that start where the new one does.
        """
        self._require_writable()
        if not 0 <= start < self.slots:
            raise MediumError("no tape left to record on", errno=errno.ENOSPC)
        self._recordings = self._kept(start, index)
        self._open = OpenRecording(start, mode, fmt)
        self._interrupted = None
        self._commit()
        self._erase_from(start + keep)

    def commit_recording(self, recording: Recording) -> None:
        self._require_writable()
        if recording.start < self._committed_end() or recording.end > self.slots:
            raise ValueError(f"recording {recording} overlaps the committed ones")
        self._recordings.append(recording)
        self._open = None
        self._interrupted = None
        self._signal_end = max(self._signal_end, recording.end)
        self._commit()
        if recording.origin == "recovered":
            # recovering old signal: is there more of it further on?
            self._interrupted = self._find_interrupted()

    def replace_recording(self, index: int, recording: Recording) -> None:
        if self.readonly:
            return
        old = self._recordings[index]
        if (recording.start, recording.fields) != (old.start, old.fields):
            raise ValueError("replace_recording may not move a recording")
        self._recordings[index] = recording
        self._commit()

    def forget_interrupted(self) -> None:
        """Treat the interrupted signal as blank tape from now on (it will be overwritten)."""
        if self._interrupted is None and self._open is None:
            return
        self._interrupted = None
        self._open = None
        self._signal_end = self._committed_end()
        if not self.readonly:
            self._commit()

    def _kept(self, slot: int, index: int | None) -> list[Recording]:
        keep = [r for r in self._recordings if r.end <= slot]
        return keep if index is None else keep[:index]

    def discard_from(self, slot: int, *, index: int | None = None) -> None:
        """Forget and erase everything at or after ``slot`` (recording over old tape).

        ``index`` (if given) also forgets the recordings from that index on.
        """
        self._require_writable()
        keep = self._kept(slot, index)
        if len(keep) != len(self._recordings) or self._open or self._interrupted:
            self._recordings = keep
            self._open = None
            self._interrupted = None
            self._commit()
        self._erase_from(slot)

    def _erase_from(self, slot: int) -> None:
        if slot >= self._signal_end:
            return
        # Shrinking frees the blocks; growing back gives blank (sparse) tape.
        os.ftruncate(self._fd, DATA_OFFSET + slot * SLOT_SIZE)
        os.ftruncate(self._fd, DATA_OFFSET + self.slots * SLOT_SIZE)
        self._signal_end = slot

    # -- the tape ----------------------------------------------------------------------

    def read_fields(self, start: int, count: int) -> list[Field]:
        """Fields of slots [start, start + count) clipped to the tape; None = no signal."""
        start = max(start, 0)
        count = max(min(count, self.slots - start), 0)
        if count == 0:
            return []
        raw = os.pread(self._fd, count * SLOT_SIZE, DATA_OFFSET + start * SLOT_SIZE)
        raw = raw.ljust(count * SLOT_SIZE, b"\0")
        view = memoryview(raw)
        out: list[Field] = []
        for i in range(count):
            base = i * SLOT_SIZE
            length = int.from_bytes(view[base : base + 2], "little")
            if 0 < length <= MAX_FIELD:
                out.append(bytes(view[base + 4 : base + 4 + length]))
            else:
                out.append(None)
        return out

    def write_fields(self, start: int, fields: Sequence[bytes]) -> None:
        """Record fields into slots from ``start`` (the caller has discarded what follows)."""
        self._require_writable()
        if start < 0 or start + len(fields) > self.slots:
            raise MediumError("end of tape", errno=errno.ENOSPC)
        if not fields:
            return
        parts = slot_parts(fields)  # header, field, padding: the kernel gathers them
        offset = DATA_OFFSET + start * SLOT_SIZE
        for at in range(0, len(parts), SLOT_PARTS_PER_WRITE):
            chunk = parts[at : at + SLOT_PARTS_PER_WRITE]
            done, size = os.pwritev(self._fd, chunk, offset), len(chunk) // 3 * SLOT_SIZE
            view = memoryview(b"".join(chunk) if done < size else b"")[done:]
            while view:  # a nearly full disk writes part: go on, so its ENOSPC is raised
                view = view[os.pwrite(self._fd, view, offset + size - len(view)):]
            offset += size
        self._signal_end = max(self._signal_end, start + len(fields))

    def _slot_blank(self, slot: int) -> bool:
        return self.read_fields(slot, 1) == [None]

    def _next_signal(self, slot: int) -> int | None:
        """First non-blank slot at or after ``slot``, skipping holes of the sparse file."""
        while slot < self.slots:
            try:
                off = os.lseek(self._fd, DATA_OFFSET + slot * SLOT_SIZE, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    return None  # only holes up to the end of the file
                off = DATA_OFFSET + slot * SLOT_SIZE
            slot = max(slot, (off - DATA_OFFSET) // SLOT_SIZE)
            if slot >= self.slots:
                return None
            fields = self.read_fields(slot, _SCAN_CHUNK)
            for i, f in enumerate(fields):
                if f is not None:
                    return slot + i
            slot += len(fields)
        return None

    def _signal_run_end(self, slot: int) -> int:
        """First blank slot at or after ``slot`` (a run of signal ends there)."""
        while slot < self.slots:
            fields = self.read_fields(slot, _SCAN_CHUNK)
            for i, f in enumerate(fields):
                if f is None:
                    return slot + i
            slot += len(fields)
        return self.slots

    def _find_interrupted(self) -> Interrupted | None:
        end = self._committed_end()
        if self._open is not None and self._open.start >= end:
            start: int | None = self._open.start
            if start is not None and self._slot_blank(start):
                start = self._next_signal(start)
        else:
            start = self._next_signal(end)
        if start is None or start >= self.slots:
            return None
        stop = self._signal_run_end(start)
        o = self._open
        known = o is not None and o.start == start
        return Interrupted(start, stop - start, o.mode if known else None,
                           o.fmt if known else None)

    def scan_signal(self, start: int, stop: int | None = None) -> list[tuple[int, int]]:
        """Runs of signal ``(start, fields)`` in [start, stop): how a deck finds recordings."""
        stop = self.slots if stop is None else min(stop, self.slots)
        runs = []
        slot: int | None = start
        while slot is not None and slot < stop:
            slot = self._next_signal(slot)
            if slot is None or slot >= stop:
                break
            end = min(self._signal_run_end(slot), stop)
            runs.append((slot, end - slot))
            slot = end
        return runs

    def describe(self) -> dict:
        """What ``backerd cassette info`` shows."""
        return {
            "path": str(self.path), "standard": self.standard, "fps": self.fps,
            "length": self.length_name, "fields": self.slots,
            "duration": format_time(self.slots, self.fps),
            "write_protected": self._write_protected, "wear": dict(self._wear),
            "eod": self._committed_end(), "eod_time": format_time(self._committed_end(), self.fps),
            "signal_end": self._signal_end,
            "recordings": [r.to_json() for r in self._recordings],
            "interrupted": None if self._interrupted is None else {
                "start": self._interrupted.start, "fields": self._interrupted.fields,
                "mode": self._interrupted.mode},
            "past_end": self._past_end,
        }


class SimDeck:
    """A VCR playing and recording a ``Cassette``; implements ``vcr.base.Deck``.

    ``realtime`` paces the transport (1.0 = real time) through ``clock``/``sleep``;
    by default everything runs as fast as the machine allows, while ``transport.elapsed``
    still accounts the tape time a real deck would have needed.
    """

    def __init__(
        self,
        cassette: Cassette | None = None,
        *,
        noise: NoiseModel | None = None,
        realtime: float | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        times: TransportTimes | None = None,
    ) -> None:
        self._cassette: Cassette | None = None
        self.noise = noise or NoiseModel()
        self._realtime = realtime
        self._clock = clock
        self._sleep = sleep
        self._times = times or TransportTimes()
        self.transport = self._new_transport(60)
        self._loaded = False
        self._pos = 0
        self._head: str | None = None  # None (stopped) | "play" | "record"
        self._pass = 0
        if cassette is not None:
            self.insert(cassette)

    def _new_transport(self, fps: int) -> Transport:
        kwargs = {}
        if self._clock is not None:
            kwargs["clock"] = self._clock
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        return Transport(fps, self._realtime, self._times, **kwargs)  # type: ignore[arg-type]

    # -- cassette handling -----------------------------------------------------------

    def insert(self, cassette: Cassette) -> None:
        """Put a cassette into the deck and load it."""
        if self._cassette is not None and self._cassette is not cassette:
            self.eject()
        self._cassette = cassette
        self.transport = self._new_transport(cassette.fps)
        self.load()

    @property
    def cassette(self) -> Cassette | None:
        return self._cassette

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        if self._cassette is None:
            raise MediumError("no cassette in the deck", errno=errno.ENOMEDIUM)
        self._loaded = True
        self._pos = 0
        self._head = None

    def eject(self) -> None:
        self.stop()
        if self._cassette is not None:
            self._cassette.flush()
        self._loaded = False
        self._pos = 0

    def remove(self) -> Cassette | None:
        """Eject and take the cassette out; the caller closes it (its lock is released)."""
        cassette = self._cassette
        if cassette is not None:
            self.eject()
        self._cassette = None
        return cassette

    def _require(self) -> Cassette:
        if not self._loaded or self._cassette is None:
            raise MediumError("no cassette loaded", errno=errno.ENOMEDIUM)
        return self._cassette

    @property
    def standard(self) -> str:
        return self._require().standard

    @property
    def fps(self) -> int:
        return self._require().fps

    @property
    def length(self) -> int:
        return self._require().slots

    @property
    def write_protected(self) -> bool:
        return self._require().write_protected

    @property
    def catalog(self) -> Cassette:
        return self._require()

    # -- transport --------------------------------------------------------------------

    def position(self) -> int:
        return self._pos

    def counter(self) -> str:
        return format_time(self._pos, self.fps)

    def signal_end(self) -> int:
        return self._require().signal_end()

    def _engage(self, head: str) -> None:
        if self._head != head:
            self._head = head
            self._pass += 1
            self.transport.start_head()
            self._require().add_wear(passes=1)

    def play(self, count: int) -> list[Field]:
        cassette = self._require()
        self._engage("play")
        fields = cassette.read_fields(self._pos, count)
        if self.noise.enabled:
            fields = [self.noise.apply(self._pos + i, self._pass, f) for i, f in enumerate(fields)]
        self._pos += len(fields)
        self.transport.run(len(fields))
        cassette.add_wear(fields=len(fields))
        return fields

    def record(self, fields: Sequence[bytes]) -> None:
        cassette = self._require()
        if cassette.write_protected:
            raise MediumError("cassette is write-protected", errno=errno.EACCES)
        if self._head != "record" and self._pos < cassette.signal_end():
            cassette.discard_from(self._pos)
        self._engage("record")
        room = cassette.slots - self._pos
        cassette.write_fields(self._pos, fields[:room])
        done = min(len(fields), room)
        self._pos += done
        self.transport.run(done)
        cassette.add_wear(fields=done)
        if done < len(fields):
            raise MediumError("end of tape", errno=errno.ENOSPC)

    def stop(self) -> None:
        self._head = None

    def wind(self, fields: int) -> None:
        cassette = self._require()
        target = min(max(self._pos + fields, 0), cassette.slots)
        if target == self._pos:
            return  # already there: the tape keeps running
        self.stop()
        self.transport.wind(target - self._pos)
        self._pos = target

    def rewind(self) -> None:
        self.wind(-self._pos)

    def seek(self, position: int) -> None:
        self.wind(position - self._pos)

    def index_search(self, recording: int) -> None:
        cassette = self._require()
        recs = cassette.recordings
        if not 0 <= recording < len(recs):
            raise MediumError(f"no recording {recording} on the cassette", errno=errno.EIO)
        target = recs[recording].start
        self.stop()
        self.transport.index_search(target - self._pos)
        self._pos = target

    def status(self) -> dict:
        """Deck state for status displays."""
        cassette = self._cassette
        return {
            "loaded": self._loaded,
            "cassette": None if cassette is None else str(cassette.path),
            "position": self._pos,
            "counter": format_time(self._pos, cassette.fps) if cassette else None,
            "head": self._head or "stopped",
            "transport_seconds": round(self.transport.elapsed, 3),
        }

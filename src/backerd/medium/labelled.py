"""The label at BOT, hidden from st: a deck view whose tape starts after the label.

Theory of operation. A labelled cassette holds one short recording at BOT whose user
bytes are a label record (``catalog.label``); the user's first archive is the second
recording. ``LabelledDeck`` wraps the real deck and shows the medium a tape that starts
where the label recording ends: every slot it hands out or takes is shifted by ``base``
(the label's end) and every recording index by one, so file 0 stays the user's first
archive and nothing the medium does can reach the label. On an unlabelled cassette
(blank, or written by the original driver) the view is the identity. The original driver
has no such view: it sees the label as one extra leading file.

The label is looked for whenever a cassette is loaded (the first recording, when it is
short, is decoded; ``parse_label`` decides). ``write_label`` records a label at BOT on
the real deck: like any recording it ends the tape there, so it refuses a cassette with
data unless forced. A unit in a raw mode labels in its standard's default mode, since a
raw recording carries no length to read the label back by.

The view is also where the catalog learns what happened on tape: a ``RecordingSink``
hears each recording begun and each one committed with its filemark (after the
cassette's index is durable), in real tape slots and user file numbers. User bytes
reach the sink from ``CataloguedMedium.write_block``, which also keeps a coarse
signal-health trace and the playback statistics of the recording last read.

A cassette whose label says its recordings are encrypted is read and written only
through the sealing layer of a unit that encrypts (``medium.encrypted``, which is built
only for such units): ``CataloguedMedium`` on its own refuses its blocks with EACCES,
by the label's flag, so a unit without a key never hands out sealed blocks as data.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from backerd.catalog.label import MAX_BYTES, Label, encode_label, keyless_refusal, parse_label
from backerd.errors import BackerError, TapeError, UsageError
from backerd.format.params import Standard
from backerd.format.params import mode as mode_params
from backerd.format.stats import Statistics
from backerd.medium.backer import BackerMedium
from backerd.medium.reader import PLAY_CHUNK, Playback, RecordingReader
from backerd.medium.writer import RecordingWriter
from backerd.observe.counters import Totals
from backerd.tape.medium import Mark
from backerd.vcr.base import Deck, Field, Interrupted, Recording, RecordingCatalog

LABEL_FIELDS = 600  # a label recording is far shorter; a longer first recording is data


class RecordingSink(Protocol):
    """Who hears of recordings (the catalog). Slots are real tape slots."""

    def begun(self, file: int, start: int, mode: str, fmt: str, *, resumed: bool) -> None: ...

    def data(self, data: bytes) -> None: ...

    def committed(self, file: int, rec: Recording) -> None: ...

    def discarded(self, file: int) -> None: ...


def read_label(deck: Deck) -> tuple[Label | None, Recording | None]:
    """The label of the cassette in ``deck`` (decoding its first recording if short)."""
    catalog = deck.catalog
    if catalog is None or not catalog.recordings:
        return None, None
    first = catalog.recordings[0]
    if not first.filemark or first.fields > LABEL_FIELDS or (
            first.user_bytes is not None and first.user_bytes > MAX_BYTES):
        return None, None
    try:
        data, _ = RecordingReader(deck, first).read(0, MAX_BYTES + 1)
    except (BackerError, OSError):
        return None, None
    label = parse_label(data)
    return (label, first) if label is not None else (None, None)


def write_label(deck: Deck, label: Label, mode: str, *, force: bool = False) -> Recording:
    """Record ``label`` at BOT of the real deck; everything after it is gone."""
    catalog = deck.catalog
    if not deck.loaded or catalog is None:
        raise TapeError("no cassette loaded", errno=errno.ENOMEDIUM)
    if deck.write_protected:
        raise TapeError("cassette is write-protected", errno=errno.EACCES)
    existing, _ = read_label(deck)
    user = catalog.recordings[1:] if existing is not None else catalog.recordings
    if (user or catalog.interrupted is not None) and not force:
        raise UsageError("the cassette holds data: labelling it erases everything on it "
                         "(use --force, with the tape at BOT)")
    if mode_params(mode).is_raw:  # a raw recording has no length: the label needs sectors
        mode = Standard.parse(deck.standard).default_mode
    writer = RecordingWriter.new(0, mode)
    writer.add_block(encode_label(label))
    fields = writer.encode(writer.take_batch())
    catalog.begin_recording(0, writer.mode, "3.102", index=0)
    deck.seek(0)
    deck.record(fields)
    writer.fields += len(fields)
    last = writer.close()
    deck.record(last)
    writer.fields += len(last)
    rec = writer.recording(filemark=True)
    catalog.commit_recording(rec)
    deck.stop()
    return rec


class _ShiftedCatalog:
    """The cassette's catalog as the medium sees it behind a label (RecordingCatalog)."""

    def __init__(self, view: LabelledDeck, real: RecordingCatalog) -> None:
        self._view = view
        self._real = real

    @property
    def _base(self) -> int:
        return self._view.base

    @property
    def _skip(self) -> int:
        return self._view.skip

    @property
    def recordings(self) -> tuple[Recording, ...]:
        base = self._base
        recs = self._real.recordings[self._skip:]
        if not base:  # asked several times per block: no copy when nothing shifts
            return recs
        return tuple(r.with_(start=r.start - base) for r in recs)

    @property
    def interrupted(self) -> Interrupted | None:
        lost = self._real.interrupted
        if lost is None or not self._base:
            return lost
        return Interrupted(lost.start - self._base, lost.fields, lost.mode, lost.fmt)

    def begin_recording(self, start: int, mode: str, fmt: str = "3.102", *, keep: int = 0,
                        index: int | None = None) -> None:
        real_index = None if index is None else index + self._skip
        self._real.begin_recording(start + self._base, mode, fmt, keep=keep, index=real_index)
        file = (len(self._real.recordings) - self._skip) if index is None else index
        sink = self._view.sink
        if sink is not None:
            sink.begun(file, start + self._base, mode, fmt, resumed=keep > 0)

    def commit_recording(self, recording: Recording) -> None:
        real = recording.with_(start=recording.start + self._base)
        self._real.commit_recording(real)
        self._tell_committed(len(self._real.recordings) - 1 - self._skip, real)

    def replace_recording(self, index: int, recording: Recording) -> None:
        before = self._real.recordings[index + self._skip]
        real = recording.with_(start=recording.start + self._base)
        self._real.replace_recording(index + self._skip, real)
        if real.filemark and not before.filemark:  # a filemark written after the data
            self._tell_committed(index, real)

    def _tell_committed(self, file: int, rec: Recording) -> None:
        sink = self._view.sink
        if sink is not None and rec.filemark:
            sink.committed(file, rec)

    def forget_interrupted(self) -> None:
        self._real.forget_interrupted()

    def flush(self) -> None:
        self._real.flush()

    def discard_from(self, slot: int, *, index: int | None = None) -> None:
        self._real.discard_from(slot + self._base,
                                index=None if index is None else index + self._skip)
        sink = self._view.sink
        if sink is not None and index is not None:
            sink.discarded(index)


class LabelledDeck:
    """A Deck whose tape starts after the label recording (identity when unlabelled)."""

    def __init__(self, deck: Deck, *, log: Callable[[str], None] | None = None) -> None:
        self.deck = deck
        self.log = log or (lambda message: None)
        self.sink: RecordingSink | None = None
        self.on_refresh: Callable[[], None] | None = None  # after a label was looked for
        self.label: Label | None = None
        self.base = 0  # real slot where the user's tape starts
        self.skip = 0  # recordings hidden (1 behind a label)
        self._known = False
        self._view: _ShiftedCatalog | None = None

    # -- the label ---------------------------------------------------------------------

    def refresh(self, *, quiet: bool = False) -> Label | None:
        """Look for the label of the cassette now loaded (and name it in the log)."""
        self.label, rec = read_label(self.deck) if self.deck.loaded else (None, None)
        self.base = rec.end if rec is not None else 0
        self.skip = 1 if rec is not None else 0
        self._known = True
        if self.deck.loaded and not quiet:
            if self.label is not None:
                self.log(f"cassette labelled {self.label.text!r} ({self.label.uuid}, "
                         f"{self.label.standard}, written {self.label.created})")
            else:
                self.log("cassette has no label (blank, or written by the original driver)")
        if self.on_refresh is not None:
            self.on_refresh()
        return self.label

    def _ensure(self) -> None:
        if not self._known:
            self.refresh()

    def write_label(self, label: Label, mode: str, *, force: bool = False) -> None:
        write_label(self.deck, label, mode, force=force)
        self.refresh(quiet=True)

    # -- Deck --------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self.deck.loaded

    @property
    def standard(self) -> str:
        return self.deck.standard

    @property
    def fps(self) -> int:
        return self.deck.fps

    @property
    def write_protected(self) -> bool:
        return self.deck.write_protected

    @property
    def length(self) -> int:
        self._ensure()
        return self.deck.length - self.base

    @property
    def catalog(self) -> RecordingCatalog | None:
        real = self.deck.catalog
        if real is None:
            return None
        self._ensure()
        if self._view is None or self._view._real is not real:
            self._view = _ShiftedCatalog(self, real)
        return self._view

    def load(self) -> None:
        self.deck.load()
        self._known = False
        self.refresh()

    def eject(self) -> None:
        self.deck.eject()
        self.label, self.base, self.skip, self._known = None, 0, 0, False

    def position(self) -> int:
        self._ensure()
        return self.deck.position() - self.base

    def counter(self) -> str:
        return self.deck.counter()

    def play(self, count: int) -> list[Field]:
        return self.deck.play(count)

    def record(self, fields: Sequence[bytes]) -> None:
        self._ensure()
        if self.deck.position() < self.base:
            raise TapeError("refusing to record over the cassette label", errno=errno.EIO)
        self.deck.record(fields)

    def stop(self) -> None:
        self.deck.stop()

    def rewind(self) -> None:
        self._ensure()
        self.deck.rewind()
        if self.base:
            self.deck.seek(self.base)

    def wind(self, fields: int) -> None:
        self.deck.wind(fields)

    def seek(self, position: int) -> None:
        self._ensure()
        self.deck.seek(position + self.base)

    def index_search(self, recording: int) -> None:
        self._ensure()
        self.deck.index_search(recording + self.skip)

    def signal_end(self) -> int:
        self._ensure()
        return self.deck.signal_end() - self.base

    def status(self) -> dict[str, Any]:
        return {"label": None if self.label is None else {
            "text": self.label.text, "uuid": self.label.uuid, "standard": self.label.standard,
            "length_seconds": self.label.length_seconds, "created": self.label.created,
            "encrypted": self.label.encrypted}, "label_end": self.base}


class _TracedPlayback:
    """A Playback that notes the statistics' change per feed (a coarse health trace)."""

    def __init__(self, inner: Playback, medium: CataloguedMedium, fields_per_feed: int) -> None:
        self.inner = inner
        self.medium = medium
        self.fields_per_feed = fields_per_feed
        self._prev = (0, 0, 0)
        self._framing = 0

    @property
    def stats(self) -> Statistics:
        return self.inner.stats

    @property
    def raw_consumed(self) -> int:
        return self.inner.raw_consumed

    def _note(self) -> None:
        s = self.inner.stats
        now = (s.byte_errors, s.lost_sectors, s.line_slips)
        delta = tuple(n - p if n >= p else n for n, p in zip(now, self._prev, strict=True))
        self._prev = now
        margin = 0 if s.worst_key is None else s.worst_key - s.closest_non_key
        self.medium.trace.append((*delta, margin))
        self.medium.last_stats = s.as_dict()
        totals = self.medium.totals
        totals.corrected_symbols_total += delta[0]
        framing = s.framing_errors
        totals.sync_losses_total += framing - self._framing if framing >= self._framing else framing
        self._framing = framing

    def feed(self, raw: bytes) -> Any:
        out = self.inner.feed(raw)
        self._note()
        return out

    def finish(self) -> Any:
        out = self.inner.finish()
        self._note()
        return out


class CataloguedMedium(BackerMedium):
    """The Backer medium telling a RecordingSink the user bytes it writes, and keeping
    the playback statistics and health trace of the recording read last.

    ``opens_sealed``: a layer above seals and opens the blocks (``medium.encrypted``, on
    a unit that encrypts). Without one, the blocks of a cassette whose label says they
    are encrypted are neither read nor written (EACCES, one log line per cassette):
    they would read as random bytes, and a plaintext block among them would break the
    promise of the label. The check is the label's flag, nothing per byte.
    """

    def __init__(self, deck: LabelledDeck, mode: str = "nhs", *, opens_sealed: bool = False,
                 **kwargs: Any) -> None:
        self.labelled = deck
        self.opens_sealed = opens_sealed
        self._refused: Label | None = None  # the label whose refusal was logged last
        self.trace: list[tuple[int, int, int, int]] = []
        self.trace_file: int | None = None
        self.trace_start = 0
        self.last_stats: dict[str, Any] | None = None
        self.previous_stats: dict[str, Any] | None = None
        self.totals = Totals()
        super().__init__(deck, mode, **kwargs)

    def _refuse_keyless(self, label: Label) -> None:
        message = keyless_refusal(label) or ""
        if label is not self._refused:  # once per cassette, not once per block tried
            self.log(message)
            self._refused = label
        raise TapeError(message, errno=errno.EACCES)

    def write_block(self, data: bytes) -> None:
        label = self.labelled.label
        if label is not None and label.encrypted and not self.opens_sealed:
            self._refuse_keyless(label)
        self.write_sealed(data, data)

    def write_sealed(self, sealed: bytes, plain: bytes) -> None:
        """Record ``sealed`` (an encrypted block), telling the catalog its ``plain`` bytes
        (``medium.encrypted.SealedWriter``): the catalog indexes what tar wrote."""
        began = time.monotonic()
        super().write_block(sealed)
        self.totals.note_write(len(sealed), time.monotonic() - began)
        sink = self.labelled.sink
        if sink is not None:
            sink.data(plain)

    def read_block(self, max_size: int) -> bytes | Mark:
        label = self.labelled.label
        if label is not None and label.encrypted and not self.opens_sealed:
            self._refuse_keyless(label)
        began = time.monotonic()
        hard = self.hard_errors
        try:
            item = super().read_block(max_size)
        finally:
            self.totals.unrecoverable_blocks_total += self.hard_errors - hard
        if isinstance(item, bytes):
            self.totals.note_read(len(item), time.monotonic() - began)
        return item

    def write_filemarks(self, count: int) -> None:
        super().write_filemarks(count)
        self.totals.filemarks_written_total += count

    def transfer_state(self) -> str:
        """STOPPED, READING or WRITING, as the original status file said."""
        if self.writing.current is not None:
            return "WRITING"
        if self._reader is not None and self._reader_file == self._file:
            return "READING"  # inside the file being played (until its filemark is read)
        return "STOPPED"

    def _new_reader(self, file: int, rec: Recording) -> RecordingReader:
        reader = super()._new_reader(file, rec)
        if self.last_stats is not None:
            self.previous_stats = self.last_stats
        self.last_stats = None
        self.trace = []
        self.trace_file = file
        self.trace_start = rec.start + self.labelled.base
        reader.player = _TracedPlayback(reader.player, self, PLAY_CHUNK)
        return reader

    def reading_stats(self) -> dict[str, Any] | None:
        """Statistics of the recording being (or last) read."""
        return self.last_stats

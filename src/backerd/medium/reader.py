"""Streaming reads of one recording: fields from the deck, user bytes out, in bounded memory.

Theory of operation. A ``RecordingReader`` plays the fields of one recording from the
deck, ``PLAY_CHUNK`` at a time, through a ``Player`` and serves byte ranges of the
recording's user stream, forwards only. It holds at most what was decoded but not yet
asked for: skipping forward decodes and drops.

The Player keeps lost user bytes in place (as zeros) and names them in ``SectorLost``
events, so offsets in its output are true user-byte offsets; ``read`` reports whether
any byte of the range it returns was lost, and the medium turns that into EIO for the
block (``BackerMedium.read_block``, the only place a lost sector becomes an error).
Symbols the inner code corrected (``Statistics.byte_errors``) are passed on to
``on_corrected`` as they grow; they become st's soft errors (mt_erreg).

A recording cut short (by a crash) ends in bytes that cannot be recovered: in EP modes
the data sectors of a group whose parity sectors were never recorded. ``sound_length``
is where that lost tail begins.

With a codec lane (the medium's), the reader decodes ahead: once a read is served it
hands the playing and decoding of the next chunk to the lane, so the caller serves the
blocks already decoded while the next ones decode on the other core. The job touches
only the deck, the Player and the ``_ahead`` slot; the reader takes its output (or its
failure, raised to the read that needs those bytes) in ``_pump``, and ``settle`` waits
for it before anyone else uses the deck. ``holds`` says whether a range is decoded.

A reader stops at the recording's last field or at the Player's end of record (EOR),
whichever comes first; ``eor`` tells which, and the player's ``raw_consumed`` tells how
far into the raw stream the EOR was met (crash recovery splits signal there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from backerd.format.player import EndOfRecord, Player, PlayerOutput, SectorLost
from backerd.format.stats import Statistics
from backerd.medium.lane import CodecLane
from backerd.vcr.base import Deck, Recording

PLAY_CHUNK = 256  # fields played and decoded at once (the codecs like big batches)


class Playback(Protocol):
    """What the medium relies on in a player (``format.player.Player`` provides it)."""

    stats: Statistics  # byte_errors: corrected symbols; sectors_decoded
    raw_consumed: int  # raw bytes used, up to the EOR once it was met

    def feed(self, raw: bytes) -> PlayerOutput: ...

    def finish(self) -> PlayerOutput: ...


def _ignore(count: int) -> None:
    pass


class RecordingReader:
    """Plays one recording through a Player; serves byte ranges of its user stream."""

    def __init__(
        self,
        deck: Deck,
        rec: Recording,
        *,
        on_corrected: Callable[[int], None] = _ignore,
        lane: CodecLane | None = None,
    ) -> None:
        self.deck = deck
        self.rec = rec
        self.on_corrected = on_corrected
        self.player: Playback = Player(rec.mode, rec.fmt)
        self.fed = 0  # fields played so far
        self.base = 0  # user offset of buf[0]
        self.buf = bytearray()
        self.decoded = 0  # user bytes accounted for (data and lost)
        self.lost: list[tuple[int, int]] = []  # [start, end) user-byte ranges
        self.done = False
        self.eor = False  # the Player met the end of the recording
        self.corrected = 0  # byte_errors already passed on
        self.loss_start: int | None = None  # the latest run of lost bytes, [start, end)
        self.loss_end = 0
        # user bytes the decoder could not place before an end it had to infer: the
        # sectors after it may have been data (``EndOfRecord.possibly_lost``)
        self.possibly_lost = 0
        self.lane = lane  # where the next chunk is decoded ahead (None: never ahead)
        self._ahead_given = False  # a read-ahead job was handed out, not yet absorbed
        self.ahead_in_flight = False  # that job is still the lane's (not ``finish``ed)
        self._ahead: tuple[PlayerOutput | None, bool] | None = None  # its (output, ended)
        self._ahead_error: BaseException | None = None

    def _absorb(self, out: PlayerOutput) -> None:
        self.buf += out.data
        self.decoded += len(out.data)
        for ev in out.events:
            if isinstance(ev, SectorLost) and ev.length > 0:
                self.lost.append((ev.offset, ev.offset + ev.length))
                if self.loss_start is None or ev.offset > self.loss_end:
                    self.loss_start = ev.offset
                self.loss_end = max(self.loss_end, ev.offset + ev.length)
            elif isinstance(ev, EndOfRecord):
                self.possibly_lost += ev.possibly_lost
        if out.end_of_record:
            self.done = self.eor = True
        total = self.player.stats.byte_errors
        if total < self.corrected:  # a BOR reset the player's statistics
            self.corrected = 0
        if total > self.corrected:
            self.on_corrected(total - self.corrected)
        self.corrected = total

    def _play(self) -> tuple[PlayerOutput | None, bool]:
        """Play and decode the next chunk: its output and whether the recording ended.

        Uses the deck and the Player only (it may run on the lane)."""
        left = self.rec.fields - self.fed
        where = self.rec.start + self.fed
        if left <= 0 or not 0 <= where < self.deck.length:  # the end, or off the tape
            return self.player.finish(), True
        if self.deck.position() != where:
            self.deck.seek(where)
        fields = self.deck.play(min(PLAY_CHUNK, left))
        if not fields:
            return self.player.finish(), True
        self.fed += len(fields)
        raw = b"".join(f for f in fields if f is not None)
        return (self.player.feed(raw) if raw else None), False

    def _play_ahead(self) -> None:
        try:
            self._ahead = self._play()
        except BaseException as exc:  # kept for the read that needs these bytes
            self._ahead_error = exc

    def settle(self) -> None:
        """Wait for the read-ahead job, keeping its result for the next ``_pump``."""
        if self.ahead_in_flight and self.lane is not None:
            self.ahead_in_flight = False
            self.lane.finish()  # the job keeps its own failure: this never raises

    def _pump(self) -> None:
        if self._ahead_given:
            self.settle()
            self._ahead_given = False
            played, self._ahead = self._ahead, None
            error, self._ahead_error = self._ahead_error, None
            if error is not None:
                raise error
            assert played is not None
        else:
            played = self._play()
        out, ended = played
        if out is not None:
            self._absorb(out)
        if ended:
            self.done = True

    def _read_ahead(self) -> None:
        if self.lane is None or self.done or self._ahead_given or not self.lane.idle:
            return
        self._ahead_given = self.ahead_in_flight = True
        self.lane.submit(self._play_ahead)

    def holds(self, offset: int, size: int) -> bool:
        """Whether bytes [offset, offset + size) are decoded (reading them waits for
        nothing)."""
        return self.base <= offset and offset + size <= self.decoded

    def read(self, offset: int, size: int) -> tuple[bytes, bool]:
        """Bytes [offset, offset + size) (fewer at the end) and whether any were lost."""
        if offset < self.base:
            raise ValueError("reader cannot go backwards")
        want = offset + size
        while self.decoded < want and not self.done:
            self._drop_before(offset)  # keep memory bounded while skipping forward
            self._pump()
        self._drop_before(offset)
        end = min(want, self.decoded)
        data = bytes(self.buf[: max(end - offset, 0)])
        lost = any(a < end and b > offset for a, b in self.lost)
        self._drop_before(end)
        self._read_ahead()
        return data, lost

    def _drop_before(self, offset: int) -> None:
        n = min(offset - self.base, len(self.buf))
        if n > 0:
            del self.buf[:n]
            self.base += n
        if offset > self.base and not self.buf:
            self.base = min(offset, self.decoded)
        self.lost = [(a, b) for a, b in self.lost if b > self.base]

    @property
    def sound_length(self) -> int:
        """User bytes decoded, less the lost ones at the end (an EP group without parity)."""
        if self.loss_start is not None and self.loss_end >= self.decoded:
            return self.loss_start
        return self.decoded

    def length(self) -> int:
        """Decode to the end; the user byte count of the recording."""
        while not self.done:
            self._drop_before(self.decoded)
            self._pump()
        return self.decoded

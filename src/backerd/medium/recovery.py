"""Crash recovery: signal past the last committed recording becomes recordings again.

Theory of operation. When a cassette is loaded, its catalog may report signal after the
last committed recording (``RecordingCatalog.interrupted``): a recording the daemon was
writing when it died (journaled, so its mode is known) or signal the catalog never saw
(its mode is guessed: the density from the field length, then the codec whose Player
finds sectors). The signal is decoded and indexed as recordings without block
boundaries, split where the Player meets an end of record (EOR); runs of signal
separated by blank tape are taken one after the other, as the catalog reports them. A
recording cut short ends where its last sound bytes end (in EP modes, the data sectors
of a group whose parity never reached the tape are dropped), so it reads without EIO
and can be appended to: the Recorder reproduces its fields up to there.

Nothing read from a cassette may hang the daemon: the run the catalog reports is first
clipped to the tape and to what follows the committed recordings, every round indexes
at least one field or stops, and the rounds are bounded by the tape length. Recovery
never fails the load: what cannot be recovered is reported and left as blank tape.
"""

from __future__ import annotations

from collections.abc import Callable

from backerd.errors import BackerError
from backerd.format.fields import fields_of_raw
from backerd.format.params import Standard
from backerd.format.params import mode as mode_params
from backerd.medium.reader import RecordingReader
from backerd.vcr.base import Deck, Recording, RecordingCatalog, format_time

Notice = Callable[[str], None]
_GUESS_FIELDS = 40  # data fields played, after the BOR, to guess a mode


class Recovery:
    """Indexes the interrupted signal of the loaded cassette (see the module docstring)."""

    def __init__(
        self, deck: Deck, catalog: RecordingCatalog, notice: Notice,
        on_corrected: Callable[[int], None],
    ) -> None:
        self.deck = deck
        self.catalog = catalog
        self.notice = notice
        self.on_corrected = on_corrected

    def time(self, slot: int) -> str:
        return format_time(slot, self.deck.fps)

    def run(self) -> None:
        catalog = self.catalog
        lost = catalog.interrupted
        if lost is None:
            return
        if self.deck.write_protected:
            self.notice(f"signal after the last recording at {self.time(lost.start)} "
                        f"({lost.fields} fields) not recovered: the cassette is "
                        "write-protected")
            return
        for _ in range(self.deck.length + 1):  # every round indexes a field or stops
            lost = catalog.interrupted
            if lost is None:
                return
            recs = catalog.recordings
            committed_end = recs[-1].end if recs else 0
            start = max(lost.start, committed_end)
            end = min(lost.start + max(lost.fields, 0), self.deck.length)
            if start >= end:
                self.notice(f"signal reported at field {lost.start} ({lost.fields} fields) "
                            "lies outside the free tape: ignored")
                break
            # a journaled mode is that of a recording starting at lost.start
            mode = lost.mode if start == lost.start else None
            if not self.recover_run(start, end, mode, lost.fmt or "auto"):
                break
        catalog.forget_interrupted()  # what is left is blank tape to us

    def recover_run(self, start: int, end: int, mode: str | None, fmt: str) -> bool:
        """Index the recordings in fields [start, end); False if some signal is left."""
        while start < end:
            where = f"at {self.time(start)} ({end - start} fields)"
            if mode is None:
                mode = self.guess_mode(start, end)
                if mode is None:
                    self.notice(f"unknown signal after the last recording {where} ignored")
                    return False
            probe = Recording(start, end - start, mode, fmt, filemark=False,
                              origin="recovered")
            reader = RecordingReader(self.deck, probe, on_corrected=self.on_corrected)
            try:
                length = reader.length()
            except BackerError as exc:
                self.notice(f"signal {where} could not be decoded: {exc.message}")
                return False
            if not reader.eor:
                length = reader.sound_length  # a cut-off tail is blank tape to us
            if length == 0 and not reader.eor:
                self.notice(f"nothing recoverable in the signal {where}")
                return False
            fields = end - start
            consumed = reader.player.raw_consumed
            if reader.eor and consumed:
                # consumed ends with the first EOR field; the rest of the EOR and the
                # pad field follow (a short EOR only moves us into the next BOR)
                params = mode_params(mode)
                fields = fields_of_raw(params, consumed, end - start) + params.n_eor - 1
                fields = min(max(fields + fields % 2, 1), end - start)
            try:
                self.catalog.commit_recording(probe.with_(
                    fields=fields, user_bytes=length, filemark=reader.eor))
            except (BackerError, ValueError) as exc:
                self.notice(f"recovered recording {where} could not be indexed: {exc}")
                return False
            self.notice(f"recovered recording {len(self.catalog.recordings) - 1} {where}: "
                        f"{mode}, {length} bytes, no block boundaries")
            start += fields
        return True

    def guess_mode(self, start: int, end: int) -> str | None:
        """The formatted mode whose Player finds sectors in the signal at ``start``."""
        self.deck.seek(start)
        first = next((f for f in self.deck.play(8) if f is not None), None)
        if first is None:
            return None
        density = "h" if len(first) > 2000 else "l"
        for name in Standard.parse(self.deck.standard).modes:
            if name[1] != density:
                continue
            params = mode_params(name)
            probe = Recording(start, min(end - start, params.n_bor + _GUESS_FIELDS), name,
                              "auto")
            reader = RecordingReader(self.deck, probe, on_corrected=self.on_corrected)
            try:
                reader.length()
            except BackerError:
                continue
            if reader.decoded or reader.eor or reader.player.stats.sectors_decoded:
                return name
        return None

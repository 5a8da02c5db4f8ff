"""The catalog fed live by a unit: rows committed when the filemark is on tape.

Theory of operation: the medium's label view (``medium.labelled``) tells this sink when
a recording begins, each user block written, and when a recording is committed with its
filemark (the cassette's index already durable). Begin opens a ``PendingRecording``;
blocks feed its tar indexer; the filemark commits it in one transaction. A recording
abandoned (no filemark, the daemon killed) never reaches the database. The catalog is a
cache: a database error is logged and costs only the row, never the write on tape.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from backerd.catalog.label import Label
from backerd.catalog.rebuild import recording_row
from backerd.catalog.store import CassetteRow, Catalog, PendingRecording, RecordingRow
from backerd.errors import BackerError
from backerd.vcr.base import Recording


class LiveCatalog:
    """RecordingSink (medium.labelled) over a catalog store, for one unit."""

    def __init__(self, store: Catalog, *, fps: int, written_by: str,
                 log: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.fps = fps
        self.written_by = written_by
        self.log = log or (lambda message: None)
        self.cassette_uuid: str | None = None
        self.full_at: int | None = None  # a recording ending past this slot fills the cassette
        self.pending: PendingRecording | None = None
        self._resumed = False

    def _guard(self, what: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except (sqlite3.Error, BackerError, OSError) as exc:
            message = exc.message if isinstance(exc, BackerError) else str(exc)
            self.log(f"catalog: {what} failed: {message}")

    def cassette_loaded(self, label: Label | None, *, fallback_name: str, standard: str,
                        length_seconds: int, passes: int, full_at: int | None = None) -> str:
        """Register the loaded cassette; its UUID (a name-derived one when unlabelled).

        ``full_at``: the slot of the early-warning zone; a file ending there marks the
        cassette full in the inventory.
        """
        self.full_at = full_at
        from backerd.catalog.store import unlabelled_uuid

        if label is not None:
            row = CassetteRow(uuid=label.uuid, label=label.text, standard=label.standard,
                              length_seconds=label.length_seconds, created=label.created,
                              encrypted=label.encrypted, passes=passes)
        else:
            row = CassetteRow(uuid=unlabelled_uuid(fallback_name), labelled=False,
                              standard=standard.upper(), length_seconds=length_seconds,
                              passes=passes)
        self.cassette_uuid = row.uuid
        self.pending = None
        self._guard("registering the cassette", lambda: self.store.put_cassette(row))
        return row.uuid

    # -- RecordingSink ---------------------------------------------------------------------

    def begun(self, file: int, start: int, mode: str, fmt: str, *, resumed: bool) -> None:
        if self.cassette_uuid is None:
            return
        self.pending = self.store.begin_recording(self.cassette_uuid, RecordingRow(
            file, start, start, mode, fmt, 0, 0, 0, written_by=self.written_by))
        self._resumed = resumed

    def data(self, data: bytes) -> None:
        if self.pending is not None:
            self.pending.feed(data)

    def committed(self, file: int, rec: Recording) -> None:
        if self.cassette_uuid is None:
            return
        pending = self.pending
        self.pending = None
        status = "ok"
        if pending is None or pending.row.file_number != file or self._resumed:
            # recovered after a crash, or resumed inside: the stream was not all seen
            status = "unindexed"
            pending = self.store.begin_recording(self.cassette_uuid, RecordingRow(
                file, rec.start, rec.end, rec.mode, rec.fmt, 0, 0, 0,
                written_by=self.written_by))
        shape = recording_row(rec, file, self.fps, written_by=self.written_by)
        row = pending.row
        row.field_start, row.counter_start = shape.field_start, shape.counter_start
        row.mode, row.format = shape.mode, shape.format
        row.blocks, row.block_size = shape.blocks, shape.block_size
        if rec.user_bytes is not None and status == "unindexed":
            row.bytes = rec.user_bytes
        self._guard(f"storing file {file}", lambda: pending.commit_on_filemark(
            field_end=shape.field_end, counter_end=shape.counter_end, status=status))
        if self.full_at is not None and rec.end >= self.full_at:
            uuid = self.cassette_uuid
            self._guard("marking the cassette full",
                        lambda: self.store.set_cassette(uuid, state="full"))

    def discarded(self, file: int) -> None:
        self.pending = None
        uuid = self.cassette_uuid
        if uuid is not None:
            self._guard(f"forgetting files from {file}",
                        lambda: self.store.forget_from(uuid, file))

"""Rebuilding the catalog from a cassette: the tape is the truth, the catalog its cache.

Theory of operation: ``rebuild_rows`` is the pure core (``rows_from_scan`` its form
without a key). It takes each recording's facts (position, mode, format, block sizes,
filemark) with its decoded user bytes, finds the
label (the first recording, if its bytes are a label record: it is then not an st file
and the user's files are numbered from the next one), indexes tar members with the same
indexer the daemon uses while writing, and returns the rows. ``recording_row`` is shared
with the live path, so a rebuilt row and the row committed at the filemark agree.
Recordings without a filemark are left out: the live path never commits them either.
``scan_cassette`` is the edge: it reads a cassette image's fields and decodes them.

Encrypted cassettes (the label says so) hold sealed blocks: a recording there is sealed
when its bytes begin with the block magic, or when the decoder lost some of them (a
damaged first block); any other is plaintext recorded there by another writer and is
indexed as it is. Without a key sealed recordings are found and counted as not indexed
(``Rebuilt.sealed``), their rows holding the sealed bytes. With one, ``rebuild_rows`` is
given ``unseal``: a function from (cassette UUID, st file number) to a
``SealedRecording`` (``crypt.blocks.recording_opener`` with the key bound: the same
opener as ``cassette dump --key-file``), so the core never touches a key file. The
plaintext is indexed, so the rows equal the ones the live catalog committed. A recording
of which no block opened, though no byte of it was lost on tape, failed authentication
(a wrong key, or blocks from another place): ``CryptError`` naming it, before any row is
returned. A recording of which only some blocks opened (or whose lost bytes cost it
every block) is damaged: its row says "errors", as for any recording with lost bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from backerd.catalog.label import MAX_BYTES, Label, parse_label
from backerd.catalog.store import RecordingRow
from backerd.catalog.tarindex import Member, TarIndexer
from backerd.crypt.blocks import MAGIC as SEALED_MAGIC
from backerd.errors import CryptError
from backerd.vcr.base import Recording, format_time

if TYPE_CHECKING:
    from backerd.vcr.sim import Cassette


def recording_row(rec: Recording, file_number: int, fps: int, *,
                  written_by: str = "") -> RecordingRow:
    """The catalog row of one recording (members and content come from the data)."""
    blocks = rec.blocks or ()
    return RecordingRow(
        file_number=file_number, field_start=rec.start, field_end=rec.end,
        counter_start=format_time(rec.start, fps), counter_end=format_time(rec.end, fps),
        mode=rec.mode, format=rec.fmt, bytes=0,
        blocks=sum(count for _, count in blocks),
        block_size=max((size for size, _ in blocks), default=0),
        written_by=written_by)


@dataclass
class ScannedRecording:
    recording: Recording
    chunks: Iterable[bytes]  # decoded user bytes, in order
    status: str = "ok"  # "errors" when the decoder reported lost bytes


def index_into(row: RecordingRow, chunks: Iterable[bytes]) -> RecordingRow:
    """Fill bytes, content and members of ``row`` from its user bytes."""
    indexer = TarIndexer()
    for chunk in chunks:
        row.bytes += len(chunk)
        row.members += [e for e in indexer.feed(chunk) if isinstance(e, Member)]
    row.members += [e for e in indexer.finish() if isinstance(e, Member)]
    row.content = {"tar": "tar", "opaque": "opaque"}.get(indexer.kind, "empty")
    if row.content == "empty" and row.bytes:
        row.content = "opaque"
    return row


class SealedRecording(Protocol):
    """Opens the sealed bytes of one recording (``crypt.blocks.StreamOpener`` does)."""

    opened: int  # blocks that opened so far

    def plaintext(self, chunks: Iterable[bytes]) -> Iterator[bytes]: ...

    def summary(self) -> str | None: ...  # the first problem in one line, if any


# (cassette UUID, st file number) -> the opener of that recording
Unseal = Callable[[str, int], SealedRecording]


@dataclass
class Rebuilt:
    label: Label | None
    rows: list[RecordingRow] = field(default_factory=list)
    sealed: int = 0  # encrypted recordings whose members were not indexed (no key)


def _counted(chunks: Iterable[bytes], seen: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        seen[0] += len(chunk)
        yield chunk


def rebuild_rows(scanned: Iterable[ScannedRecording], fps: int, *,
                 unseal: Unseal | None = None) -> Rebuilt:
    """The label and rows of a scanned cassette; ``unseal`` opens encrypted recordings."""
    out = Rebuilt(None)
    for index, item in enumerate(scanned):
        rec = item.recording
        if index == 0:
            chunks = list(item.chunks)
            data = b"".join(chunks)[: MAX_BYTES + 1]
            out.label = parse_label(data) if rec.filemark else None
            if out.label is not None:
                continue
            item = ScannedRecording(rec, chunks, item.status)
        if not rec.filemark:
            continue
        row = recording_row(rec, len(out.rows), fps, written_by="rebuild")
        row.status = item.status
        out.rows.append(row)
        label = out.label
        head, chunks = _peek(item.chunks, len(SEALED_MAGIC))
        item = ScannedRecording(rec, chunks, item.status)
        if label is None or not label.encrypted or not head:
            index_into(row, item.chunks)
        elif head != SEALED_MAGIC and item.status == "ok":
            index_into(row, item.chunks)  # recorded there without encryption: as it is
        elif unseal is None:
            index_into(row, item.chunks)
            out.sealed += 1
        else:
            _index_sealed(row, item, unseal(label.uuid, index - 1), index)
    return out


def _peek(chunks: Iterable[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """The first ``size`` bytes of a chunked stream, and the whole stream still to read."""
    it = iter(chunks)
    taken: list[bytes] = []
    have = 0
    while have < size:
        chunk = next(it, None)
        if chunk is None:
            break
        taken.append(chunk)
        have += len(chunk)
    return b"".join(taken)[:size], itertools.chain(taken, it)


def _index_sealed(row: RecordingRow, item: ScannedRecording, stream: SealedRecording,
                  index: int) -> None:
    seen = [0]
    index_into(row, stream.plaintext(_counted(item.chunks, seen)))
    problem = stream.summary()
    if problem is None or not seen[0]:  # an empty recording has no block to miss
        return
    if stream.opened == 0 and item.status == "ok":
        raise CryptError(f"recording {index} (file {index - 1}) failed authentication: "
                         f"{problem}")
    row.status = "errors"


def rows_from_scan(scanned: Iterable[ScannedRecording], fps: int,
                   ) -> tuple[Label | None, list[RecordingRow]]:
    rebuilt = rebuild_rows(scanned, fps)
    return rebuilt.label, rebuilt.rows


def scan_cassette(cassette: Cassette, *, progress: Callable[[int, int], None] | None = None,
                  batch: int = 256) -> Iterator[ScannedRecording]:
    """Decode every recording of a ``vcr.sim.Cassette`` (lazily, one at a time)."""
    return scan_cassette_range(cassette, 0, len(cassette.recordings), progress=progress,
                               batch=batch)


def scan_cassette_range(cassette: Cassette, first: int, stop: int, *,
                        progress: Callable[[int, int], None] | None = None,
                        batch: int = 256) -> Iterator[ScannedRecording]:
    """Decode recordings ``first`` .. ``stop - 1`` of a cassette image."""
    from backerd.format.player import Player, SectorLost

    chosen = cassette.recordings[first:stop]
    total = sum(r.fields for r in chosen)
    done = 0
    for rec in chosen:
        player = Player(rec.mode, rec.fmt if rec.fmt in ("3.102", "3.101", "3.3") else "auto")
        lost = False
        chunks: list[bytes] = []
        for at in range(rec.start, rec.end, batch):
            count = min(batch, rec.end - at)
            raw = b"".join(f for f in cassette.read_fields(at, count) if f is not None)
            out = player.feed(raw)
            chunks.append(out.data)
            lost = lost or any(isinstance(e, SectorLost) for e in out.events)
            done += count
            if progress is not None:
                progress(done, total)
        out = player.finish()
        chunks.append(out.data)
        lost = lost or any(isinstance(e, SectorLost) for e in out.events)
        if rec.user_bytes is not None:  # a raw mode's last field may be padded
            chunks = [b"".join(chunks)[: rec.user_bytes]]
        yield ScannedRecording(rec, chunks, "errors" if lost else "ok")


LABEL_FIELDS = 600  # a label recording is a few hundred fields at most (BOR, 1 sector, EOR)


def label_of(cassette: Cassette) -> Label | None:
    """The label of a cassette image, decoding only its first (short) recording."""
    recs = cassette.recordings
    if not recs or not recs[0].filemark or recs[0].fields > LABEL_FIELDS:
        return None
    if recs[0].user_bytes is not None and recs[0].user_bytes > MAX_BYTES:
        return None
    first = next(scan_cassette_range(cassette, 0, 1))
    return parse_label(b"".join(first.chunks)[: MAX_BYTES + 1])

"""The label at BOT hidden from st numbering, and the catalog fed on the filemark."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from backerd.catalog.label import new_label
from backerd.catalog.live import LiveCatalog
from backerd.catalog.rebuild import rows_from_scan, scan_cassette
from backerd.catalog.store import Catalog
from backerd.errors import UsageError
from backerd.medium.labelled import CataloguedMedium, LabelledDeck, read_label
from backerd.tape.medium import END_OF_DATA, FILEMARK
from backerd.vcr.sim import Cassette, SimDeck

MODE = "nhs"


def tar_of(names: list[str], size: int = 3000) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = size
            info.mtime = 1_600_000_000
            tf.addfile(info, io.BytesIO(b"m" * size))
    return out.getvalue()


def write_file(m: CataloguedMedium, data: bytes, block: int = 10240) -> None:
    for i in range(0, len(data), block):
        m.write_block(data[i:i + block].ljust(block, b"\0"))
    m.write_filemarks(1)


def read_file(m: CataloguedMedium) -> bytes:
    out = []
    while True:
        item = m.read_block(1 << 16)
        if item is FILEMARK or item is END_OF_DATA:
            return b"".join(out)
        out.append(item)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "tape.img"
    Cassette.create(path, "ntsc", "T-30").close()
    return path


def open_unit(path: Path, store: Catalog | None = None):
    cassette = Cassette.open(path)
    deck = LabelledDeck(SimDeck(cassette))
    live = None
    if store is not None:
        live = LiveCatalog(store, fps=cassette.fps, written_by="test")
        deck.sink = live
    medium = CataloguedMedium(deck, MODE)
    if live is not None:
        live.cassette_loaded(deck.label, fallback_name=str(path), standard=deck.standard,
                             length_seconds=deck.deck.length // deck.fps, passes=0)
    return cassette, deck, medium


def test_label_is_hidden_from_st_numbering(image: Path) -> None:
    cassette, deck, medium = open_unit(image)
    label = new_label("MONDAY", "NTSC", 1800)
    deck.write_label(label, MODE)
    assert deck.label == label
    medium.load()  # the medium starts again from BOT of the user's tape
    archives = [tar_of(["first"]), tar_of(["second"])]
    for a in archives:
        write_file(medium, a)
    medium.rewind()
    assert read_file(medium).startswith(archives[0][:512])
    medium.rewind()
    medium.space_filemarks(1)  # mt fsf 1 reaches the second archive
    assert read_file(medium).startswith(archives[1][:512])
    assert len(cassette.recordings) == 3  # the original driver sees one file more
    cassette.close()
    # reopened: the label is read at load
    cassette, deck, medium = open_unit(image)
    assert deck.label == label and deck.base == cassette.recordings[0].end
    assert read_label(SimDeck(cassette))[0] == label
    cassette.close()


def test_writing_at_bot_keeps_the_label(image: Path) -> None:
    cassette, deck, medium = open_unit(image)
    deck.write_label(new_label("KEEP", "NTSC", 1800), MODE)
    medium.load()
    write_file(medium, tar_of(["a"]))
    medium.rewind()
    write_file(medium, tar_of(["b"]))  # overwrite file 0: the label stays
    medium.rewind()
    medium.erase()
    assert deck.label is not None and deck.label.text == "KEEP"
    deck.refresh()
    assert deck.label is not None and deck.label.text == "KEEP"
    cassette.close()


def test_labelling_a_cassette_with_data_needs_force(image: Path) -> None:
    cassette, deck, medium = open_unit(image)
    write_file(medium, b"user data" * 1000)
    with pytest.raises(UsageError, match="holds data"):
        deck.write_label(new_label("X", "NTSC", 1800), MODE)
    deck.write_label(new_label("X", "NTSC", 1800), MODE, force=True)
    medium.load()
    assert medium.read_block(1 << 16) is END_OF_DATA  # the old data went with --force
    cassette.close()


def test_catalog_rows_appear_on_the_filemark_and_match_a_rebuild(
        image: Path, tmp_path: Path) -> None:
    store = Catalog(tmp_path / "cat.db")
    cassette, deck, medium = open_unit(image, store)
    deck.write_label(new_label("CAT-1", "NTSC", 1800), MODE)
    medium.load()
    live = deck.sink
    assert isinstance(live, LiveCatalog)
    uuid = live.cassette_loaded(deck.label, fallback_name="x", standard="ntsc",
                                length_seconds=1800, passes=0)
    long = "dir/" * 40 + "leaf.bin"
    data = tar_of(["etc/fstab", long])
    for i in range(0, len(data), 10240):
        medium.write_block(data[i:i + 10240].ljust(10240, b"\0"))
    assert store.recordings(uuid) == []  # no filemark yet: nothing claimed
    medium.write_filemarks(1)
    write_file(medium, bytes(range(256)) * 100)
    medium.write_filemarks(1)  # an empty file
    live_rows = store.recordings(uuid)
    assert [(r.file_number, r.content) for r in live_rows] == [
        (0, "tar"), (1, "opaque"), (2, "empty")]
    assert [m.path for m in live_rows[0].members] == ["etc/fstab", long]
    label, scanned = rows_from_scan(scan_cassette(cassette), cassette.fps)
    assert label is not None and label.uuid == uuid

    def shape(rows):
        return [(r.file_number, r.field_start, r.field_end, r.counter_start, r.counter_end,
                 r.mode, r.format, r.bytes, r.blocks, r.block_size, r.status, r.content,
                 r.members) for r in rows]

    assert shape(scanned) == shape(live_rows)
    cassette.close()
    store.close()


def test_transfer_state_and_totals(image: Path) -> None:
    cassette, deck, medium = open_unit(image)
    assert medium.transfer_state() == "STOPPED"
    medium.write_block(b"\1" * 10240)
    assert medium.transfer_state() == "WRITING"
    medium.write_block(b"\2" * 10240)
    medium.write_filemarks(1)
    assert medium.transfer_state() == "STOPPED"
    medium.rewind()
    assert medium.read_block(10240) == b"\1" * 10240
    assert medium.transfer_state() == "READING"
    totals = medium.totals.as_dict()
    assert totals["write_bytes_total"] == 20480 and totals["writes_completed_total"] == 2
    assert totals["read_bytes_total"] == 10240 and totals["filemarks_written_total"] == 1
    assert medium.reading_stats() is not None and medium.trace
    cassette.close()
    # past the filemark the unit is stopped again
    cassette, deck, medium = open_unit(image)
    medium.rewind()
    medium.read_block(10240)
    medium.read_block(10240)
    assert medium.read_block(10240) is FILEMARK
    assert medium.transfer_state() == "STOPPED"
    cassette.close()


def test_a_raw_mode_unit_labels_in_its_standards_formatted_mode(image: Path) -> None:
    # A raw recording has no length field, so its label could never be read back.
    cassette, deck, _ = open_unit(image)
    label = new_label("RAW-UNIT", "NTSC", 1800)
    deck.write_label(label, "nhr")
    assert cassette.recordings[0].mode == "nhs"
    cassette.close()
    cassette, deck, _ = open_unit(image)
    assert deck.label == label
    cassette.close()

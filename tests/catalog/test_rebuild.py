"""Rebuild core: label hidden from numbering, members indexed, unfinished files left out."""

from __future__ import annotations

import io
import os
import tarfile

from backerd.catalog.label import encode_label, new_label
from backerd.catalog.rebuild import ScannedRecording, recording_row, rows_from_scan
from backerd.vcr.base import Recording


def tar_of(*names: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 3
            tf.addfile(info, io.BytesIO(b"abc"))
    return out.getvalue()


def scanned(start: int, data: bytes, *, filemark: bool = True) -> ScannedRecording:
    rec = Recording(start, 50, "nhs", "3.102", user_bytes=len(data),
                    blocks=((10240, len(data) // 10240), (len(data) % 10240, 1)),
                    filemark=filemark)
    return ScannedRecording(rec, [data[i:i + 333] for i in range(0, len(data), 333)])


def test_label_is_found_and_hidden_from_numbering() -> None:
    label = new_label("SHELF-A-7", "NTSC", 10800)
    long_name = "deep/" * 30 + "file.txt"
    items = [scanned(0, encode_label(label)), scanned(50, tar_of("a", long_name)),
             scanned(100, os.urandom(5000)), scanned(150, tar_of("late"), filemark=False)]
    got_label, rows = rows_from_scan(items, fps=60)
    assert got_label == label
    assert [(r.file_number, r.content, r.field_start) for r in rows] == [
        (0, "tar", 50), (1, "opaque", 100)]
    assert [m.path for m in rows[0].members] == ["a", long_name]
    assert rows[0].counter_start == "0:00:00" and rows[1].counter_start == "0:00:01"


def test_original_driver_cassette_has_no_label() -> None:
    got_label, rows = rows_from_scan([scanned(0, tar_of("x")), scanned(50, b"")], fps=50)
    assert got_label is None
    assert [(r.file_number, r.content) for r in rows] == [(0, "tar"), (1, "empty")]


def test_row_shape_from_block_runs() -> None:
    rec = Recording(10, 5, "pls", "3.101", user_bytes=30000, blocks=((10240, 2), (9520, 1)))
    row = recording_row(rec, 4, fps=50)
    assert (row.blocks, row.block_size, row.field_end) == (3, 10240, 15)

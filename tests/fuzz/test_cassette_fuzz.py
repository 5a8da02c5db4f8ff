"""Cassette images damaged exhaustively: every byte of the superblock and of the newest
index copy flipped in turn, every JSON field given every wrong type, with the index CRC
recomputed so the forgery passes the checksum. Each must give a clear one-line error or
a load that is right: a flipped index copy fails its CRC, so the image must come back
exactly as the older copy recorded it. ``backerd cassette info`` is run on every damaged
image as well: it fails with one line on stderr (no traceback) or succeeds.

tests/vcr/test_image*.py draw random flips and forgeries with hypothesis; this file
walks all of them. The layout is the format spec's (not taken from the code under test).
"""

from __future__ import annotations

import copy
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backerd.cli import main
from backerd.errors import BackerError
from backerd.vcr.base import Recording
from backerd.vcr.sim import Cassette, SimDeck

SUPERBLOCK = 4096
INDEX = 4 << 20
HEADER = struct.Struct("<4sQII")  # magic, generation, payload length, crc32
WRONG_VALUES: list[Any] = [None, True, False, 0, -1, 1.5, 2**64, "x", "", [], [1, 2], {},
                           {"a": 1}]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An NTSC T-15 with three committed recordings (so two index generations differ)."""
    path = tmp_path_factory.mktemp("cassette") / "c.img"
    with Cassette.create(path, "ntsc", "T-15", sync=False) as c:
        deck = SimDeck(c)
        for k in range(3):
            start = deck.position()
            c.begin_recording(start, "nls")
            deck.record([bytes([k + 1]) * 1012] * 4)
            c.commit_recording(Recording(start, 4, "nls", user_bytes=1000 + k,
                                         blocks=((500, 2),)))
    return path


def region(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def put(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def copies(path: Path) -> list[tuple[int, int, bytes]]:
    """(generation, offset, header + payload) of each index copy, newest first."""
    out = []
    for n in (0, 1):
        offset = SUPERBLOCK + n * INDEX
        magic, gen, size, crc = HEADER.unpack(region(path, offset, HEADER.size))
        out.append((gen, offset, region(path, offset, HEADER.size + size)))
    return sorted(out, reverse=True)


def load(path: Path) -> tuple[Any, ...] | BackerError:
    try:
        with Cassette.open(path, readonly=True) as c:
            for r in c.recordings:
                assert 0 <= r.start <= r.end <= c.slots
            return (c.standard, c.slots, tuple(c.recordings), c.write_protected)
    except BackerError as exc:
        assert exc.message and "\n" not in exc.message
        return exc


def cli_info(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        status = main(["cassette", "info", str(path)])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    err = capsys.readouterr().err
    if status:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    else:
        assert not err.strip(), err


@pytest.fixture(scope="module")
def truth(image: Path) -> dict[str, Any]:
    """What the image holds, and what its older index copy alone says."""
    newest = load(image)
    assert not isinstance(newest, BackerError)
    (_, new_offset, new_raw), _ = copies(image)
    put(image, new_offset, bytes(HEADER.size))  # the newest copy gone: the older one
    older = load(image)
    put(image, new_offset, new_raw)
    assert not isinstance(older, BackerError) and older != newest
    return {"newest": newest, "older": older}


def test_every_superblock_byte_flipped(image: Path, truth: dict[str, Any],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    original = region(image, 0, SUPERBLOCK)
    end = original.index(b"\0") + 2  # the text, its end and a byte of the padding
    loads = 0
    for i in range(end):
        for flip in (0x01, 0x20, 0x80, 0xFF):
            damaged = bytearray(original)
            damaged[i] ^= flip
            put(image, 0, bytes(damaged))
            try:
                result = load(image)
                if not isinstance(result, BackerError):
                    loads += 1  # e.g. JSON whitespace or a key's case: must still be right
                    assert result == truth["newest"], (i, flip)
                if flip == 0x01:
                    cli_info(image, capsys)
            finally:
                put(image, 0, original)
    assert load(image) == truth["newest"]
    assert loads < end  # most flips are caught


def test_every_index_byte_flipped(image: Path, truth: dict[str, Any],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    (_, offset, raw), _ = copies(image)
    for i in range(len(raw)):
        for flip in (0x01, 0xFF):
            damaged = bytearray(raw)
            damaged[i] ^= flip
            put(image, offset, bytes(damaged))
            try:
                result = load(image)
                if i >= HEADER.size or i < 4:  # payload or magic: the CRC or magic fails
                    assert result == truth["older"], (i, flip, result)
                else:  # generation, length, CRC: the older copy or (generation) the same
                    assert result in (truth["older"], truth["newest"]), (i, flip, result)
                if flip == 0xFF and i % 4 == 0:
                    cli_info(image, capsys)
            finally:
                put(image, offset, raw)


def _paths(doc: Any, prefix: tuple = ()) -> Iterator[tuple]:
    if prefix:
        yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _paths(value, (*prefix, index))


def _replaced(doc: Any, path: tuple, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


def test_every_index_field_given_every_wrong_value(image: Path, truth: dict[str, Any],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (gen, offset, raw), _ = copies(image)
    doc = json.loads(zlib.decompress(raw[HEADER.size:]))
    cases = 0
    for path in _paths(doc):
        for value in WRONG_VALUES:
            payload = zlib.compress(json.dumps(_replaced(doc, path, value)).encode())
            # CRC-valid: it passes the checksum and is the newest generation
            put(image, offset, HEADER.pack(b"BKIX", gen, len(payload), zlib.crc32(payload))
                + payload)
            try:
                result = load(image)
                cases += 1
                if value is not None and type(value) is not type(_get(doc, path)):
                    # a JSON type the field never has (true is not 1, 1.5 is not 1)
                    assert isinstance(result, BackerError), (path, value, result)
                cli_info(image, capsys)
            finally:
                put(image, offset, raw)
    assert cases > 100


def _get(doc: Any, path: tuple) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def test_every_superblock_field_given_every_wrong_value(
        image: Path, truth: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    original = region(image, 0, SUPERBLOCK)
    magic, text = original.split(b"\n")[0] + b"\n", original.split(b"\n")[1]
    meta = json.loads(text)
    for path in _paths(meta):
        for value in WRONG_VALUES:
            forged = magic + json.dumps(_replaced(meta, path, value)).encode() + b"\n"
            put(image, 0, forged.ljust(SUPERBLOCK, b"\0"))
            try:
                result = load(image)
                if not isinstance(result, BackerError):
                    assert result == truth["newest"], (path, value)
                cli_info(image, capsys)
            finally:
                put(image, 0, original)

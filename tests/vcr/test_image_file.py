"""Damaged, forged, truncated and misplaced cassette images: clear errors, never a crash."""

from __future__ import annotations

import errno
import json
import os
import stat
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backerd.errors import BackerError, MediumError, UsageError
from backerd.vcr import image
from backerd.vcr.base import Recording
from backerd.vcr.sim import Cassette, SimDeck

# The on-disk layout as the format spec fixes it (not taken from the code under test).
SUPERBLOCK = 4096
INDEX = 4 << 20
HEADER = struct.Struct("<4sQII")


def field(i: int, size: int = 1012) -> bytes:
    return bytes([(i % 251) + 1]) * size


def make_image(path: Path) -> Path:
    """An NTSC T-15 with two recordings and a journaled recording after them."""
    with Cassette.create(path, "ntsc", "T-15", sync=False) as c:
        deck = SimDeck(c)
        for k in range(2):
            start = deck.position()
            c.begin_recording(start, "nls")
            deck.record([field(k * 10 + i) for i in range(6)])
            c.commit_recording(Recording(start, 6, "nls", user_bytes=100 + k,
                                         blocks=((50, 2),) if k else ((100, 1),)))
        c.begin_recording(deck.position(), "nhs")
        deck.record([field(99, 2540)] * 3)
    return path


def write_superblock(path: Path, meta: Any) -> None:
    raw = b"BACKERD-CASSETTE 1\n" + json.dumps(meta).encode() + b"\n"
    with open(path, "r+b") as f:
        f.write(raw.ljust(SUPERBLOCK, b"\0"))


def read_superblock(path: Path) -> dict:
    with open(path, "rb") as f:
        return json.loads(f.read(SUPERBLOCK).split(b"\n")[1])


def newest_copy(path: Path) -> tuple[int, int, Any]:
    """(copy number, generation, JSON document) of the newest intact index copy."""
    best = None
    with open(path, "rb") as f:
        for copy in (0, 1):
            f.seek(SUPERBLOCK + copy * INDEX)
            magic, gen, size, crc = HEADER.unpack(f.read(HEADER.size))
            payload = f.read(size)
            if magic == b"BKIX" and zlib.crc32(payload) == crc and (
                    best is None or gen > best[1]):
                best = (copy, gen, json.loads(zlib.decompress(payload)))
    assert best is not None
    return best


def forge_index(path: Path, payload_json: bytes, generation: int) -> None:
    """Write a CRC-valid index copy as the newest one: it passes the checksum."""
    payload = zlib.compress(payload_json)
    with open(path, "r+b") as f:
        f.seek(SUPERBLOCK + (generation % 2) * INDEX)
        f.write(HEADER.pack(b"BKIX", generation, len(payload), zlib.crc32(payload)) + payload)


def assert_one_line(exc: BackerError) -> None:
    assert exc.message and "\n" not in exc.message


# -- the superblock -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: {**m, "slots": "abc"}, "slots is 'abc'"),
        (lambda m: {**m, "standard": "secam"}, "standard is 'secam'"),
        (lambda m: [m], "expected an object"),
        (lambda m: {**m, "slots": -54000, "minutes": -15}, "minutes is -15"),
        (lambda m: {**m, "slots": 600, "minutes": 10 / 60}, "minutes is 0.166"),
        (lambda m: {**m, "slots": 3600, "minutes": 1}, "longer than the tape"),
        (lambda m: {**m, "minutes": 10**6, "slots": 10**6 * 3600}, "minutes is 1000000"),
    ],
)
def test_damaged_superblock_is_a_one_line_error(tmp_path: Path, change: Any,
                                                message: str) -> None:
    path = make_image(tmp_path / "c.img")
    write_superblock(path, change(read_superblock(path)))
    for readonly in (True, False):
        with pytest.raises(MediumError, match="damaged cassette header") as info:
            Cassette.open(path, readonly=readonly)
        assert message in info.value.message
        assert_one_line(info.value)


def test_directories_fifos_and_devices_are_not_images(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for readonly in (True, False):
        with pytest.raises(UsageError, match="is a directory"):
            Cassette.open(tmp_path, readonly=readonly)
        with pytest.raises(UsageError, match="not a regular file"):
            Cassette.open(fifo, readonly=readonly)  # and does not wait for a writer
    with pytest.raises(UsageError, match="not a regular file"):
        Cassette.open("/dev/null", readonly=True)


# -- the index ----------------------------------------------------------------------------


def test_absurd_open_recording_start_is_refused(tmp_path: Path) -> None:
    path = make_image(tmp_path / "c.img")
    _, gen, doc = newest_copy(path)
    doc["open"]["start"] = 10**15
    forge_index(path, json.dumps(doc).encode(), gen + 1)
    with pytest.raises(MediumError, match="open: start is 1000000000000000") as info:
        Cassette.open(path)
    assert_one_line(info.value)


def test_open_recording_at_the_end_of_the_tape_finds_no_signal(tmp_path: Path) -> None:
    path = make_image(tmp_path / "c.img")
    _, gen, doc = newest_copy(path)
    doc["open"]["start"] = 54000 - 1
    forge_index(path, json.dumps(doc).encode(), gen + 1)
    with Cassette.open(path) as c:
        assert c.interrupted is None  # the slot is blank: nothing to recover


def test_both_index_copies_damaged_is_an_error_also_read_write(tmp_path: Path) -> None:
    path = make_image(tmp_path / "c.img")
    with open(path, "r+b") as f:
        for copy in (0, 1):
            f.seek(SUPERBLOCK + copy * INDEX + HEADER.size)
            f.write(b"\xff" * 16)
    for readonly in (True, False):
        with pytest.raises(MediumError, match="both copies"):
            Cassette.open(path, readonly=readonly)


# -- truncated images ---------------------------------------------------------------------


def test_truncated_image_reports_the_recordings_past_its_end(tmp_path: Path) -> None:
    path = make_image(tmp_path / "c.img")
    with Cassette.open(path, readonly=True) as c:
        assert c.past_end is None and c.lost_recordings == ()
    os.truncate(path, SUPERBLOCK + 2 * INDEX + 8 * 3072)  # inside recording 1
    with Cassette.open(path, readonly=True) as c:
        assert c.lost_recordings == (1,)
        assert c.past_end is not None and "recording 1 lies past its end" in c.past_end
        assert c.describe()["past_end"] == c.past_end
    os.truncate(path, SUPERBLOCK + 2 * INDEX)
    with Cassette.open(path) as c:
        assert c.lost_recordings == (0, 1)


# -- creating -----------------------------------------------------------------------------


def test_force_replaces_only_regular_files(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    link = tmp_path / "link"
    link.symlink_to(target)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases = [(link, "symbolic link"), (dangling, "symbolic link"), (fifo, "FIFO"),
             (tmp_path, "directory")]
    try:
        node = tmp_path / "null"
        os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        cases.append((node, "device node"))
    except PermissionError:
        pass  # not root: no device node to try
    for path, kind in cases:
        for force in (False, True):
            with pytest.raises(UsageError, match=kind) as info:
                Cassette.create(path, "ntsc", "T-15", force=force)
            assert_one_line(info.value)
        after = os.lstat(path)
        assert not stat.S_ISREG(after.st_mode), path  # still what it was
    assert target.read_bytes() == b"keep me" and link.is_symlink()
    assert not (tmp_path / "nowhere").exists()
    regular = tmp_path / "old.img"
    regular.write_bytes(b"old")
    with Cassette.create(regular, "pal", "E-30", force=True) as c:
        assert c.slots == 30 * 60 * 50


# -- fuzzing whole image files ----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["nls", "phe", "3.102", "auto", "recovered"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8,
)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _replace(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


def _use(path: Path, readonly: bool) -> None:
    """Open the image and do what info, dump and serve do: a clear error or a sound load."""
    try:
        c = Cassette.open(path, readonly=readonly)
    except BackerError as exc:
        assert_one_line(exc)
        return
    with c:
        info = c.describe()
        assert 0 <= info["eod"] <= c.slots
        for r in c.recordings:
            assert 0 <= r.start <= r.end <= c.slots
            assert len(c.read_fields(r.start, min(r.fields, 50))) == min(r.fields, 50)
        lost = c.interrupted
        if lost is not None:
            assert lost.start >= 0 and lost.fields > 0 and lost.start + lost.fields <= c.slots
        assert c.scan_signal(0) is not None
        if not readonly:
            c.add_wear(passes=1)
            c.flush()
            recordings = c.recordings
    if not readonly:
        with Cassette.open(path, readonly=True) as again:  # what it wrote loads again
            assert again.recordings == recordings


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=st.data(), readonly=st.booleans())
def test_fuzz_byte_flips_in_superblock_and_index(data: st.DataObject, readonly: bool) -> None:
    with tempfile.TemporaryDirectory() as work:
        path = make_image(Path(work) / "c.img")
        copy, _, _ = newest_copy(path)
        with open(path, "rb") as f:
            sb_len = f.read(SUPERBLOCK).index(b"\0")
            f.seek(SUPERBLOCK + copy * INDEX)
            _, _, size, _ = HEADER.unpack(f.read(HEADER.size))
        region = data.draw(st.sampled_from(["superblock", "index"]))
        base, length = ((0, sb_len + 4) if region == "superblock"
                        else (SUPERBLOCK + copy * INDEX, HEADER.size + size))
        with open(path, "r+b") as f:
            for _ in range(data.draw(st.integers(1, 6))):
                f.seek(base + data.draw(st.integers(0, length - 1)))
                f.write(bytes([data.draw(st.integers(0, 255))]))
        _use(path, readonly)


@FUZZ
@given(data=st.data(), readonly=st.booleans())
def test_fuzz_crc_valid_forged_index(data: st.DataObject, readonly: bool) -> None:
    with tempfile.TemporaryDirectory() as work:
        path = make_image(Path(work) / "c.img")
        _, gen, doc = newest_copy(path)
        for _ in range(data.draw(st.integers(1, 3))):
            where = data.draw(st.sampled_from(_paths(doc)))
            doc = _replace(doc, where, data.draw(json_values | st.integers(-2, 54002)))
        text = bytearray(json.dumps(doc).encode())
        if data.draw(st.booleans()):  # and damage to the JSON text itself
            text[data.draw(st.integers(0, len(text) - 1))] = data.draw(st.integers(0, 255))
        forge_index(path, bytes(text), gen + 1)
        _use(path, readonly)


@FUZZ
@given(data=st.data())
def test_fuzz_superblock_json(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as work:
        path = make_image(Path(work) / "c.img")
        meta = read_superblock(path)
        where = data.draw(st.sampled_from(_paths(meta)))
        write_superblock(path, _replace(meta, where, data.draw(json_values)))
        if data.draw(st.booleans()):
            os.truncate(path, data.draw(st.integers(0, image.DATA_OFFSET + 20 * 3072)))
        _use(path, readonly=True)


def _short_pwrite(monkeypatch: pytest.MonkeyPatch, then_full: bool) -> list[int]:
    """A nearly full host disk: the first field write (a gathered one) stores half and
    returns the count; the next ones fail with ENOSPC (``then_full``) or are stored
    whole."""
    real, calls = os.pwrite, []

    def pwrite(fd: int, data: Any, offset: int) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real(fd, bytes(data)[: len(data) // 2], offset)
        if then_full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data, offset)

    def pwritev(fd: int, parts: list[bytes], offset: int) -> int:
        return pwrite(fd, b"".join(parts), offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    monkeypatch.setattr(os, "pwritev", pwritev)
    return calls


def test_short_field_write_is_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fields = [field(i, 2000) for i in range(4)]
    with Cassette.create(tmp_path / "c.img", "ntsc", "T-15", sync=False) as c:
        calls = _short_pwrite(monkeypatch, then_full=False)
        c.write_fields(10, fields)
        monkeypatch.undo()
        assert len(calls) == 2 and calls[1] == calls[0] - calls[0] // 2
        assert c.read_fields(10, 4) == fields


def test_short_field_write_then_full_disk_raises_enospc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Cassette.create(tmp_path / "c.img", "ntsc", "T-15", sync=False) as c:
        _short_pwrite(monkeypatch, then_full=True)
        with pytest.raises(OSError) as e:
            c.write_fields(10, [field(i, 2000) for i in range(4)])
        assert e.value.errno == errno.ENOSPC


def test_slot_parts_lay_out_whole_slots() -> None:
    fields = [bytes([i]) * n for i, n in enumerate([1, 2530, image.MAX_FIELD])]
    raw = b"".join(image.slot_parts(fields))
    assert len(raw) == 3 * image.SLOT_SIZE
    for i, f in enumerate(fields):
        slot = raw[i * image.SLOT_SIZE : (i + 1) * image.SLOT_SIZE]
        assert int.from_bytes(slot[:2], "little") == len(f) and slot[2:4] == b"\0\0"
        assert slot[4 : 4 + len(f)] == f and not slot[4 + len(f) :].strip(b"\0")
    with pytest.raises(ValueError, match="does not fit"):
        image.slot_parts([b"x" * (image.MAX_FIELD + 1)])
    with pytest.raises(ValueError, match="does not fit"):
        image.slot_parts([b""])


def test_more_fields_than_one_gathered_write_holds(tmp_path: Path) -> None:
    count = image.SLOT_PARTS_PER_WRITE // 3 * 2 + 5
    fields = [field(i, 1000 + i % 7) for i in range(count)]
    with Cassette.create(tmp_path / "c.img", "ntsc", "T-15", sync=False) as c:
        c.write_fields(3, fields)
        assert c.read_fields(3, count) == fields
        assert c.read_fields(3 + count, 1) == [None]

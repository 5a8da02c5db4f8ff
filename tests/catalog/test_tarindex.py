"""Tar member indexing: tarfile and GNU tar make the archives, the indexer reads them."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.catalog.tarindex import (
    Broken,
    End,
    Member,
    Opaque,
    TarIndexer,
    index_bytes,
    parse_pax,
)


def feed_chunked(data: bytes, cuts: list[int]) -> tuple[TarIndexer, list]:
    indexer = TarIndexer()
    events: list = []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in zip(points, points[1:], strict=False):
        events += indexer.feed(data[a:b])
    events += indexer.finish()
    return indexer, events


names = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/\\"),
    min_size=1, max_size=40,
)
paths = st.lists(names, min_size=1, max_size=8).map("/".join)
member_specs = st.lists(
    st.tuples(paths, st.integers(0, 3000), st.integers(0, 2**33 - 1),
              st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE])),
    max_size=6, unique_by=lambda m: m[0],
)
formats = st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])


def make_tar(specs, fmt) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tf:
        for path, size, mtime, kind in specs:
            info = tarfile.TarInfo(path)
            info.type = kind
            info.mtime = mtime
            if kind == tarfile.SYMTYPE:
                info.linkname = "target/" + path
            info.size = size if kind == tarfile.REGTYPE else 0
            tf.addfile(info, io.BytesIO(bytes([len(path) % 251]) * info.size))
    return out.getvalue()


KIND = {tarfile.REGTYPE: "file", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink"}


@settings(max_examples=150, deadline=None)
@given(member_specs, formats, st.lists(st.integers(0, 1 << 20), max_size=30))
def test_members_match_tarfile_under_any_chunking(specs, fmt, cuts) -> None:
    try:
        data = make_tar(specs, fmt)
    except ValueError:  # ustar cannot hold this name: nothing to compare
        return
    with tarfile.open(fileobj=io.BytesIO(data)) as oracle:
        infos = list(oracle)
    expected = [(m.name, m.size, m.mtime, KIND[m.type], m.linkname) for m in infos]
    indexer, events = feed_chunked(data, cuts)
    got = [(m.path.rstrip("/"), m.size, m.mtime, m.type, m.linkname)
           for m in events if isinstance(m, Member)]
    assert got == expected
    assert indexer.kind == "tar"
    assert isinstance(events[-1], End)
    # the recorded offset is the member's own header, the block before its data
    got_offsets = [m.offset for m in events if isinstance(m, Member)]
    assert got_offsets == [m.offset_data - 512 for m in infos]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 4000), max_size=10))
def test_arbitrary_bytes_never_raise(data, cuts) -> None:
    indexer, events = feed_chunked(data, cuts)
    assert indexer.kind in ("empty", "tar", "opaque")
    if data[:512] and any(data[:512]) and len(data) >= 512:
        # a random first block is practically never a valid header
        assert indexer.kind == "opaque" or isinstance(events[0], Member)


@settings(max_examples=100, deadline=None)
@given(member_specs, st.integers(1, 10_000), st.binary(min_size=1, max_size=600))
def test_damage_after_members_is_reported_once(specs, cut, junk) -> None:
    data = make_tar(specs, tarfile.GNU_FORMAT)
    damaged = data[: cut % len(data)] + junk
    indexer, events = feed_chunked(damaged, [7, 513, 4000])
    tail = [e for e in events if not isinstance(e, Member)]
    assert len(tail) <= 1


def test_non_tar_data_is_opaque() -> None:
    kind, members, events = index_bytes(os.urandom(10_000))
    assert kind == "opaque" and members == [] and isinstance(events[0], Opaque)


def test_truncated_archive_is_broken() -> None:
    data = make_tar([("a", 5000, 0, tarfile.REGTYPE)], tarfile.GNU_FORMAT)
    kind, members, events = index_bytes(data[:2048])
    assert kind == "tar" and [m.path for m in members] == ["a"]
    assert isinstance(events[-1], Broken)


def test_pax_records() -> None:
    rec = b"30 mtime=1234567890.123456789\n"
    assert len(rec) == 30
    assert parse_pax(rec + b"junk") == {"mtime": "1234567890.123456789"}
    assert parse_pax(b"99 path=x\n") == {}


GNU_TAR = shutil.which("tar")


def _gnu_tar_version_ok() -> bool:
    if GNU_TAR is None:
        return False
    out = subprocess.run([GNU_TAR, "--version"], capture_output=True, text=True).stdout
    return "GNU tar" in out


@pytest.mark.skipif(not _gnu_tar_version_ok(), reason="GNU tar not installed")
@pytest.mark.parametrize("fmt", ["gnu", "pax", "ustar", "oldgnu", "posix"])
def test_gnu_tar_archives_with_long_names(tmp_path: Path, fmt: str) -> None:
    root = tmp_path / "src"
    long_dir = "d" * 90 + "/" + "e" * 90
    files = {
        "short.txt": 10,
        f"{long_dir}/{'f' * 120}.bin": 1500,  # > 100 chars: L (gnu) or path= (pax)
        "empty": 0,
        "ü-unicode-ß.txt": 3,
    }
    if fmt == "ustar":  # ustar splits at most prefix 155 + name 100 and has no long names
        files = {k: v for k, v in files.items() if len(k) < 100}
    expected = {}
    for i, (rel, size) in enumerate(files.items()):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * size)
        os.utime(p, (1_600_000_000 + i, 1_600_000_000 + i))
        expected[rel] = (size, 1_600_000_000 + i)
    link = root / ("l" * 110)
    if fmt != "ustar":
        link.symlink_to("short.txt")
    archive = tmp_path / "a.tar"
    subprocess.run([GNU_TAR, f"--format={fmt}", "-cf", str(archive), "-C", str(root), "."],
                   check=True)
    data = archive.read_bytes()
    indexer, events = feed_chunked(data, [1, 100, 511, 513, 1024, 5000, 10_001])
    members = {m.path.removeprefix("./").rstrip("/"): m for m in events
               if isinstance(m, Member)}
    for rel, (size, mtime) in expected.items():
        assert members[rel].size == size and members[rel].type == "file"
        assert int(members[rel].mtime) == mtime
    if fmt != "ustar":
        assert members[str(Path(long_dir).parent)].type == "dir"
        assert members["l" * 110].type == "symlink"
        assert members["l" * 110].linkname == "short.txt"
    # GNU tar itself lists the same paths
    listed = subprocess.run([GNU_TAR, "-tf", str(archive)], capture_output=True, check=True,
                            ).stdout.decode("utf-8", "surrogateescape").splitlines()
    assert sorted(p.removeprefix("./").rstrip("/") for p in listed if p != "./") == sorted(
        k for k in members if k not in ("", "."))
    assert isinstance(events[-1], End)


@pytest.mark.skipif(not _gnu_tar_version_ok(), reason="GNU tar not installed")
def test_gnu_volume_label_is_not_a_member(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"data" * 300)
    archive = tmp_path / "v.tar"
    subprocess.run([GNU_TAR, "--format=gnu", "-V", "WEEKLY-07", "-cf", str(archive),
                    "-C", str(tmp_path / "src"), "f"], check=True)
    _, members, events = index_bytes(archive.read_bytes())
    assert [(m.path, m.size) for m in members] == [("f", 1200)]
    assert isinstance(events[-1], End)

"""Member digests of tar streams: against Python's tarfile as the oracle, any chunking,
GNU incremental archives made by the real tar, and broken streams."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.jobs.records import MemberDigest
from backerd.jobs.tardigest import (
    Broken,
    DirState,
    End,
    TarDigester,
    digest_stream,
    parse_dumpdir,
    tree_digest,
)

names = st.text(st.sampled_from("abcxyz/é_"), min_size=1, max_size=150).filter(
    lambda n: not n.startswith("/") and "//" not in n and not n.endswith("/"))
members = st.lists(st.tuples(names, st.binary(max_size=3000)), min_size=1, max_size=6,
                   unique_by=lambda m: m[0])


def archive(files: list[tuple[str, bytes]], fmt: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("a-dir")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    return out.getvalue()


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=150)
@given(members, st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
       st.lists(st.integers(0, 1 << 20), max_size=8))
def test_digests_match_tarfile_in_any_chunking(files: list[tuple[str, bytes]], fmt: int,
                                               cuts: list[int]) -> None:
    data = archive(files, fmt)
    events = digest_stream(chunked(data, cuts))
    got = [e for e in events if isinstance(e, MemberDigest)]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        want = [MemberDigest(m.name.rstrip("/"), "dir" if m.isdir() else "file", m.size,
                             hashlib.sha256(tar.extractfile(m).read() if m.isfile()
                                            else b"").hexdigest())
                for m in tar.getmembers()]
    assert [MemberDigest(m.path.rstrip("/"), m.type, m.size, m.sha256) for m in got] == want
    assert isinstance(events[-1], End)


def test_one_flipped_data_byte_changes_only_that_digest() -> None:
    data = bytearray(archive([("a", b"x" * 700), ("b", b"y" * 700)], tarfile.GNU_FORMAT))
    good = digest_stream([bytes(data)])
    data[512 + 3] ^= 1  # inside member a's data
    bad = digest_stream([bytes(data)])
    assert [e.sha256 for e in good if isinstance(e, MemberDigest)][1:] == \
        [e.sha256 for e in bad if isinstance(e, MemberDigest)][1:]
    assert good[0] != bad[0]


def test_broken_streams_never_raise() -> None:
    data = archive([("a", b"x" * 700)], tarfile.GNU_FORMAT)
    assert isinstance(digest_stream([data[:1000]])[-1], Broken)
    bad_header = bytearray(data)
    bad_header[1536] = 0x41  # where the end-of-archive zero block was
    assert isinstance(digest_stream([bytes(bad_header)])[-1], Broken)
    assert isinstance(digest_stream([b"not a tar archive" * 40])[0], Broken)
    assert isinstance(digest_stream([])[0], Broken)
    digester = TarDigester()
    digester.feed(data)
    assert digester.ended and digester.feed(b"more") == [] and digester.finish() == []


def test_dumpdir_flags_fold() -> None:
    assert parse_dumpdir(b"Ya\0Nb\0Dc\0\0") == ("Fa", "Fb", "Dc")
    assert parse_dumpdir(b"") == ()


def test_tree_digest_is_order_free_and_sees_every_field() -> None:
    a = DirState("x/", 0o755, 0, 0, 10, ("Fa",))
    b = DirState("y/", 0o755, 0, 0, 10, None)
    assert tree_digest([a, b]) == tree_digest([b, a])
    base = tree_digest([a])
    for changed in (DirState("z/", 0o755, 0, 0, 10, ("Fa",)), DirState("x/", 0o700, 0, 0, 10,
                    ("Fa",)), DirState("x/", 0o755, 1, 0, 10, ("Fa",)),
                    DirState("x/", 0o755, 0, 1, 10, ("Fa",)),
                    DirState("x/", 0o755, 0, 0, 11, ("Fa",)),
                    DirState("x/", 0o755, 0, 0, 10, ("Fb",)),
                    DirState("x/", 0o755, 0, 0, 10, ("Fa", "Fb")),
                    DirState("x/", 0o755, 0, 0, 10, None)):
        assert tree_digest([changed]) != base


GNU_TAR = shutil.which("tar")


@pytest.mark.skipif(GNU_TAR is None, reason="needs GNU tar")
def test_gnu_incremental_archives(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a\n")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 9)
    (src / ("long-" + "n" * 120)).write_text("long name\n")
    snar = tmp_path / "s.snar"

    def run() -> list:
        out = subprocess.run([GNU_TAR, "--create", "--format=gnu", "--file=-",
                              f"--listed-incremental={snar}", "--no-check-device", "-C",
                              str(tmp_path), "src"], capture_output=True, check=True).stdout
        return digest_stream([out])

    full = run()
    dirs = [e for e in full if isinstance(e, DirState)]
    assert {d.path for d in dirs} == {"src/", "src/sub/"}
    top = next(d for d in dirs if d.path == "src/")
    assert set(top.dumpdir or ()) == {"Fa.txt", "Dsub", "F" + "long-" + "n" * 120}
    files = {e.path: e for e in full if isinstance(e, MemberDigest) and e.type == "file"}
    assert files["src/sub/b.bin"].sha256 == hashlib.sha256(bytes(range(256)) * 9).hexdigest()
    assert ("src/long-" + "n" * 120) in files
    # nothing changed: an incremental holds only directories, with the same state
    again = run()
    assert all(e.type == "dir" for e in again if isinstance(e, MemberDigest))
    assert tree_digest(e for e in again if isinstance(e, DirState)) == tree_digest(dirs)
    (src / "a.txt").unlink()
    changed = run()
    assert tree_digest(e for e in changed if isinstance(e, DirState)) != tree_digest(dirs)


@settings(max_examples=300)
@given(members, st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
                         max_size=12), st.lists(st.integers(0, 1 << 16), max_size=5))
def test_damaged_archives_never_raise(files: list[tuple[str, bytes]],
                                      damage: list[tuple[int, int]], cuts: list[int]) -> None:
    data = bytearray(archive(files, tarfile.GNU_FORMAT))
    for where, value in damage:
        data[where % len(data)] = value
    events = digest_stream(chunked(bytes(data), cuts))
    assert isinstance(events[-1], End | Broken)
    assert sum(isinstance(e, End | Broken) for e in events) == 1

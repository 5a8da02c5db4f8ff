"""BackerMedium against the Medium contract, with tape.medium.MemoryMedium as reference.

Raw modes need no codec, so these tests pin down the tape logic (files, blocks,
filemarks, spacing, truncation, foreign streams, recovery) on their own; the formatted
modes are exercised in test_medium_drive.py.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backerd.errors import TapeError, UsageError
from backerd.format.params import mode as mode_params
from backerd.medium import WRITE_BATCH, BackerMedium
from backerd.tape.medium import END_OF_DATA, FILEMARK, Medium, MemoryMedium
from backerd.vcr.base import Recording
from backerd.vcr.sim import Cassette, SimDeck


@pytest.fixture
def cassette(tmp_path: Path) -> Cassette:
    c = Cassette.create(tmp_path / "tape.img", "ntsc", "T-30")
    yield c
    c.close()


def medium_on(c: Cassette, mode: str = "nlr", **kwargs: Any) -> BackerMedium:
    return BackerMedium(SimDeck(c), mode, **kwargs)


def read_all(m: Medium, size: int = 1 << 20) -> list[list[bytes]]:
    files: list[list[bytes]] = []
    cur: list[bytes] = []
    while True:
        item = m.read_block(size)
        if item is FILEMARK:
            files.append(cur)
            cur = []
        elif item is END_OF_DATA:
            if cur:
                files.append(cur)
            return files
        else:
            cur.append(item)


def test_is_a_medium(cassette: Cassette) -> None:
    m = medium_on(cassette)
    assert isinstance(m, Medium)
    assert m.loaded and not m.write_protected and m.at_bot()
    assert m.read_block(10) is END_OF_DATA


def test_files_of_blocks_round_trip_and_survive_reopen(tmp_path: Path) -> None:
    rnd = random.Random(1)
    files = [[rnd.randbytes(rnd.randrange(1, 9000)) for _ in range(rnd.randrange(0, 6))]
             for _ in range(4)]
    with Cassette.create(tmp_path / "t.img", "pal", "E-30") as c:
        m = medium_on(c, "plr")
        for blocks in files:
            for b in blocks:
                m.write_block(b)
            m.write_filemarks(1)
        m.rewind()
        assert read_all(m) == files
    with Cassette.open(tmp_path / "t.img") as c:
        m = medium_on(c, "phr")
        assert read_all(m) == files
        assert [r.mode for r in c.recordings] == ["plr"] * 4
        # recordings follow each other on tape, each as long as its raw stream
        g = mode_params("plr").geometry
        for r, blocks in zip(c.recordings, files, strict=True):
            assert r.user_bytes == sum(map(len, blocks))
            assert r.fields == -(-r.user_bytes // g.field_size)
        assert c.recordings[0].start == 0
        assert all(a.end == b.start for a, b in zip(c.recordings, c.recordings[1:], strict=False))


# -- differential test against MemoryMedium ---------------------------------------------

OPS = st.one_of(
    st.tuples(st.just("write"), st.integers(1, 5000)),
    st.tuples(st.just("weof"), st.integers(1, 2)),
    st.tuples(st.just("read"), st.sampled_from([1, 100, 4096, 1 << 20])),
    st.tuples(st.just("fsr"), st.integers(-3, 3)),
    st.tuples(st.just("fsf"), st.integers(-2, 2)),
    st.tuples(st.just("rewind"), st.just(0)),
    st.tuples(st.just("eod"), st.just(0)),
    st.tuples(st.just("locate"), st.integers(0, 12)),
    st.tuples(st.just("erase"), st.just(0)),
)


def apply(m: Any, op: str, arg: int, rnd: random.Random) -> Any:
    try:
        if op == "write":
            m.write_block(rnd.randbytes(arg))
            return None
        if op == "weof":
            return m.write_filemarks(arg)
        if op == "read":
            item = m.read_block(arg)
            return item if isinstance(item, bytes) else item.name
        if op == "fsr":
            return m.space_blocks(arg)
        if op == "fsf":
            return m.space_filemarks(arg)
        if op == "rewind":
            return m.rewind()
        if op == "eod":
            return m.seek_eod()
        if op == "locate":
            return m.locate(arg)
        if op == "erase":
            return m.erase()
    except TapeError as exc:
        return ("error", exc.errno)
    raise AssertionError(op)


SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@settings(max_examples=60, deadline=None, suppress_health_check=SLOW_OK)
@given(ops=st.lists(OPS, max_size=25), seed=st.integers(0, 2**32))
def test_behaves_like_memory_medium(tmp_path: Path, ops: list[tuple[str, int]], seed: int) -> None:
    compare_with_memory_medium(tmp_path, "nhr", ops, seed)


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW_OK)
@given(ops=st.lists(OPS, max_size=16), seed=st.integers(0, 2**32),
       mode=st.sampled_from(["nls", "nhe"]))
def test_formatted_modes_behave_like_memory_medium(
    tmp_path: Path, ops: list[tuple[str, int]], seed: int, mode: str
) -> None:
    compare_with_memory_medium(tmp_path, mode, ops, seed)


def compare_with_memory_medium(
    tmp_path: Path, mode: str, ops: list[tuple[str, int]], seed: int
) -> None:
    ref = MemoryMedium()
    with Cassette.create(tmp_path / "d.img", "ntsc", "T-30", force=True, sync=False) as c:
        m = medium_on(c, mode)
        r1, r2 = random.Random(seed), random.Random(seed)
        for op, arg in ops:
            expected = apply(ref, op, arg, r1)
            got = apply(m, op, arg, r2)
            assert got == expected, (op, arg)
            assert m.position() == ref.position(), (op, arg)
            assert m.tell() == ref.tell()
            assert m.at_bot() == ref.at_bot()
        contents = ref.files()
        m.rewind()
        got_files = read_all(m)
        # an empty unterminated last file is invisible: blank tape
        assert got_files == [f for i, f in enumerate(contents)
                             if f or i < len(contents) - 1 or ref._files[i].filemark]


def test_writing_in_the_middle_keeps_earlier_blocks_and_drops_the_rest(
    cassette: Cassette,
) -> None:
    m = medium_on(cassette)
    blocks = [bytes([i + 1]) * (700 + 300 * i) for i in range(6)]
    for b in blocks:
        m.write_block(b)
    m.write_filemarks(1)
    m.write_block(b"second file")
    m.write_filemarks(1)
    m.rewind()
    assert m.space_blocks(3) == 3
    m.write_block(b"new")
    m.write_filemarks(1)
    m.rewind()
    assert read_all(m) == [blocks[:3] + [b"new"]]
    assert len(cassette.recordings) == 1


def test_foreign_stream_reads_in_the_sizes_asked(cassette: Cassette) -> None:
    deck = SimDeck(cassette)
    raw = os.urandom(50_000)
    g = mode_params("nlr").geometry
    fields, pos, i = [], 0, 0
    while pos < len(raw):
        n = g.field_length(i)
        fields.append(raw[pos : pos + n])
        pos += n
        i += 1
    cassette.begin_recording(0, "nlr", "auto")
    deck.record(fields)
    cassette.commit_recording(Recording(0, len(fields), "nlr", "auto", origin="record"))
    m = BackerMedium(deck, "nlr", stream_block=4096)
    ref = MemoryMedium.from_streams([raw], stream_block=4096)
    for op, arg in [("read", 10240), ("read", 512), ("fsr", 3), ("read", 100), ("fsr", -2),
                    ("read", 7000), ("fsr", 100), ("read", 5), ("fsf", -1), ("read", 60000),
                    ("read", 1), ("locate", 2), ("read", 3)]:
        assert apply(m, op, arg, random.Random()) == apply(ref, op, arg, random.Random())
        assert m.position() == ref.position() and m.tell() == ref.tell()
    # the length learnt by decoding is kept in the catalog
    assert cassette.recordings[0].user_bytes == len(raw)


def test_write_protect_no_cassette_and_density(tmp_path: Path) -> None:
    c = Cassette.create(tmp_path / "p.img", "ntsc", "T-30")
    m = medium_on(c, "nls")
    assert m.density() == 0x15  # nls mode bits (spec 12.1)
    m.set_density(0x19)
    assert m.mode == "nhs" and m.density() == 0x19
    m.set_density(0)
    assert m.mode == "nls"
    for bad in (0x1A, 0x26, 0x40, 0x99):  # PAL modes on an NTSC cassette, unknown codes
        with pytest.raises(TapeError) as e:
            m.set_density(bad)
        assert e.value.errno == errno.EINVAL
    with pytest.raises(UsageError, match="PAL"):
        medium_on(c, "pls")
    c.write_protected = True
    assert m.write_protected
    for call in (lambda: m.write_block(b"x"), lambda: m.write_filemarks(1), m.erase):
        with pytest.raises(TapeError) as e:
            call()
        assert e.value.errno == errno.EACCES
    m.unload()
    assert not m.loaded
    with pytest.raises(TapeError) as e:
        m.read_block(10)
    assert e.value.errno == errno.ENOMEDIUM
    m.load()
    assert m.loaded and m.at_bot()
    c.close()


def test_early_warning_then_end_of_tape(tmp_path: Path) -> None:
    with Cassette.create(tmp_path / "s.img", "ntsc", "1") as c:  # one minute of tape
        m = medium_on(c, "nhr", early_warning_seconds=10)
        block = os.urandom(50_000)
        written = 0
        while not m.early_warning():
            m.write_block(block)
            written += 1
        frame = mode_params("nhr").geometry.frame_size
        # warning from 50 s of tape on: 25 frames per second of tape
        assert (written - 1) * len(block) < 50 * 30 * frame <= written * len(block)
        with pytest.raises(TapeError) as e:
            while True:
                m.write_block(block)
                written += 1
        assert e.value.errno == errno.ENOSPC
        assert written * len(block) <= 60 * 30 * frame
        m.write_filemarks(1)  # the recording still closes
        m.rewind()
        assert read_all(m) == [[block] * written]


CRASHER = textwrap.dedent(
    """
    import os, signal, sys
    from backerd.medium import WRITE_BATCH, BackerMedium
    from backerd.vcr.sim import Cassette, SimDeck
    m = BackerMedium(SimDeck(Cassette.create(sys.argv[1], "ntsc", "T-30")), "nlr")
    data = bytes(range(256)) * 400
    for i in range(5):
        m.write_block(data[i * 1000:(i + 1) * 1000])
    m.write_filemarks(1)
    for _ in range(30):  # well over the medium's write buffer
        m.write_block(data)
    m.write_block(data[:5000])
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_kill_9_mid_recording(tmp_path: Path) -> None:
    image = tmp_path / "k.img"
    proc = subprocess.run([sys.executable, "-c", CRASHER, str(image)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    data = bytes(range(256)) * 400
    with Cassette.open(image) as c:
        assert c.interrupted is not None and c.interrupted.mode == "nlr"
        notes: list[str] = []
        m = BackerMedium(SimDeck(c), "nlr", log=notes.append)
        assert notes and "recovered" in notes[0]
        assert m.read_block(1 << 20) == data[:1000]  # the closed file has its blocks
        assert m.space_filemarks(1) == 1
        recovered = b""
        while isinstance(item := m.read_block(4096), bytes):
            recovered += item
        assert item is END_OF_DATA  # no filemark ever ended it
        # what reached the tape comes back: all but the medium's write buffer
        written = data * 30 + data[:5000]
        field = mode_params("nlr").geometry.field_size
        assert written.startswith(recovered)
        assert len(recovered) > len(written) - WRITE_BATCH - 2 * field
        rec = c.recordings[1]
        assert (rec.origin, rec.filemark, rec.blocks) == ("recovered", False, None)
    with Cassette.open(image) as c:  # recovery was committed
        assert c.interrupted is None and len(c.recordings) == 2


def test_memory_stays_bounded_whatever_the_recording_length(cassette: Cassette) -> None:
    import tracemalloc

    m = medium_on(cassette, "nhr")
    block = os.urandom(10240)
    size = 24 << 20
    tracemalloc.start()
    try:
        for _ in range(size // len(block)):
            m.write_block(block)
        m.write_filemarks(1)
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        m.rewind()
        assert m.space_blocks(1000) == 1000  # a skip decodes and drops
        count = 1000
        while isinstance(item := m.read_block(10240), bytes):
            assert item == block
            count += 1
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == size // len(block)
    assert write_peak < 4 << 20 and read_peak < 4 << 20, (write_peak, read_peak)


@pytest.mark.parametrize("mode", ["nlr", "nls", "nhe"])
def test_writing_inside_a_foreign_recording_keeps_the_blocks_read(
    cassette: Cassette, mode: str
) -> None:
    """As on MemoryMedium: the blocks read (and spaced over) become real boundaries."""
    from backerd.format.fields import FieldCutter
    from backerd.format.recorder import Recorder

    raw = random.Random(mode).randbytes(60_000)
    recorder = Recorder(mode)
    fields = FieldCutter(mode_params(mode)).cut(recorder.write(raw) + recorder.close())
    deck = SimDeck(cassette)
    cassette.begin_recording(0, mode, "3.102")
    deck.record(fields)
    cassette.commit_recording(Recording(0, len(fields), mode, "3.102", origin="record"))
    m = BackerMedium(deck, mode, stream_block=4096)
    ref = MemoryMedium.from_streams([raw], stream_block=4096)
    for medium in (m, ref):
        assert medium.read_block(1000) == raw[:1000]
        assert medium.read_block(3000) == raw[1000:4000]
        assert medium.space_blocks(2) == 2  # two virtual blocks of 4096
        medium.write_block(b"new block")
        medium.write_filemarks(1)
        medium.rewind()
    kept = [raw[:1000], raw[1000:4000], raw[4000:8096], raw[8096:12192], b"new block"]
    assert ref.files() == [kept]
    assert read_all(m) == [kept]
    assert cassette.recordings[0].blocks == ((1000, 1), (3000, 1), (4096, 2), (9, 1))

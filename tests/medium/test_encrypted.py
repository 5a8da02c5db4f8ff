"""EncryptingMedium: sealed blocks below, the Drive's blocks above, and its refusals.

The tape below is a MemoryMedium, so tests can look at and damage the sealed blocks;
the plaintext is what the test itself wrote.
"""

from __future__ import annotations

import dataclasses
import errno
import os

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from backerd.catalog.label import Label, new_label
from backerd.errors import TapeError
from backerd.tape.drive import Drive
from backerd.tape.medium import END_OF_DATA, FILEMARK, MemoryMedium

pytest.importorskip("cryptography")

from backerd.crypt.blocks import OVERHEAD  # noqa: E402
from backerd.crypt.keys import UnitKey  # noqa: E402
from backerd.medium.encrypted import EncryptingMedium, crypt_label_fields  # noqa: E402

KEY = UnitKey.from_secret(bytes(range(32)))
BLOCKS = [bytes([65 + i]) * (512 + i) for i in range(5)]


def label_for(key: UnitKey | None) -> Label:
    label = new_label("T-1", "NTSC", 1800)
    if key is None:
        return label
    return dataclasses.replace(label, encrypted=True, extra=crypt_label_fields(key))


SEALED = label_for(KEY)  # one cassette: the blocks are bound to its UUID


def sealing(inner: MemoryMedium | None = None, *, key: UnitKey | None = KEY,
            label: Label | None = None, missing: str | None = None,
            log: list[str] | None = None) -> EncryptingMedium:
    label = SEALED if label is None else label
    return EncryptingMedium(inner or MemoryMedium(), label_of=lambda: label, key=key,
                            missing=missing, log=None if log is None else log.append)


def read_all(m: EncryptingMedium) -> list[bytes | str]:
    """Every item until EOD: block bytes, "FM", or "EIO" for a block that failed."""
    out: list[bytes | str] = []
    for _ in range(100):
        try:
            item = m.read_block(1 << 16)
        except TapeError as exc:
            assert exc.errno == errno.EIO
            out.append("EIO")
            continue
        if item is END_OF_DATA:
            return out
        out.append("FM" if item is FILEMARK else item)
    raise AssertionError("no end of data")


def written(blocks: list[bytes], files: int = 1) -> tuple[EncryptingMedium, MemoryMedium]:
    inner = MemoryMedium()
    m = sealing(inner)
    for _ in range(files):
        for b in blocks:
            m.write_block(b)
        m.write_filemarks(1)
    return m, inner


def test_round_trip_blocks_one_for_one_and_sealed_below() -> None:
    m, inner = written(BLOCKS, files=2)
    [first, second] = inner.files()
    assert [len(b) for b in first] == [len(b) + OVERHEAD for b in BLOCKS]
    assert all(b.startswith(b"BKE1") and BLOCKS[0][:8] not in b for b in first)
    assert first != second  # a fresh salt per recording
    m.rewind()
    assert read_all(m) == [*BLOCKS, "FM", *BLOCKS, "FM"]


def test_through_the_drive_with_positions_counting_the_held_block() -> None:
    inner = MemoryMedium()
    m = sealing(inner)
    drive = Drive(m)
    drive.open(False, os.O_RDWR)
    for b in BLOCKS[:3]:
        drive.write(b)
    assert m.position().block == 3 and inner.position().block == 2 and m.tell() == 3
    drive.close()  # the filemark seals the held block as the last
    drive.open(True, os.O_RDONLY)
    drive.ioctl(*_rewind())
    assert [drive.read(1 << 16) for _ in range(4)] == [*BLOCKS[:3], b""]
    drive.close()


def test_flush_at_close_seals_the_held_block_as_the_last() -> None:
    # close(2)'s FLUSH writes the filemark: the held block is sealed there with the
    # last-block flag (a recording without it reads as cut short: EIO at its end)
    inner = MemoryMedium()
    m = sealing(inner)
    drive = Drive(m)
    drive.open(False, os.O_WRONLY)
    for b in BLOCKS[:3]:
        drive.write(b)
    assert inner.position().block == 2
    drive.flush()
    assert inner.filemarks_written == 1 and [len(f) for f in inner.files()] == [3]
    drive.write(BLOCKS[3])  # a write after the flush: a new recording
    drive.flush()
    drive.close()  # nothing left for the release
    assert inner.filemarks_written == 2
    m.rewind()
    assert read_all(m) == [*BLOCKS[:3], "FM", BLOCKS[3], "FM"]


def _rewind() -> tuple[int, bytes, int]:
    from testkit.stwire import MTIOCTOP, mtop

    return MTIOCTOP, mtop(6, 1), 0


def test_a_damaged_block_loses_only_that_block() -> None:
    _, inner = written(BLOCKS)
    [blocks] = inner.files()
    bad = bytearray(blocks[2])
    bad[100] ^= 0x20
    log: list[str] = []
    m = sealing(MemoryMedium.from_files([[*blocks[:2], bytes(bad), *blocks[3:]]]), log=log)
    assert read_all(m) == [*BLOCKS[:2], "EIO", *BLOCKS[3:], "FM"]
    assert m.describe()["blocks_failed"] == 1 and "file 0 block 2" in log[0]


def test_reordered_blocks_fail() -> None:
    _, inner = written(BLOCKS)
    [b] = inner.files()
    m = sealing(MemoryMedium.from_files([[b[0], b[2], b[1], b[3], b[4]]]))
    assert read_all(m) == [BLOCKS[0], "EIO", "EIO", *BLOCKS[3:], "FM"]


def test_a_recording_cut_short_fails_once_at_its_end() -> None:
    _, inner = written(BLOCKS, files=2)
    first, second = inner.files()
    m = sealing(MemoryMedium.from_files([first[:-1], second]))
    assert read_all(m) == [*BLOCKS[:-1], "EIO", "FM", *BLOCKS, "FM"]


def test_blocks_of_another_recording_fail() -> None:
    _, inner = written(BLOCKS, files=2)
    first, second = inner.files()
    m = sealing(MemoryMedium.from_files([second, first]))
    assert read_all(m) == [*["EIO"] * 5, "FM", *["EIO"] * 5, "FM"]


def test_continuing_a_recording_in_its_middle_reseals_the_block_before() -> None:
    m, inner = written(BLOCKS)
    m.rewind()
    m.space_blocks(3)
    m.write_block(b"new")
    m.write_filemarks(1)
    m.rewind()
    assert read_all(m) == [*BLOCKS[:3], b"new", "FM"]


def test_a_missing_key_refuses_to_write_and_nothing_reaches_the_tape() -> None:
    inner = MemoryMedium()
    log: list[str] = []
    m = sealing(inner, key=None, missing="key file /k does not exist", log=log)
    for _ in range(2):
        with pytest.raises(TapeError, match="key is missing .*refusing to write") as exc:
            m.write_block(b"secret")
        assert exc.value.errno == errno.EACCES
    assert inner.blocks_written == 0 and len(log) == 1
    loaded = [KEY]
    m.reload = lambda: loaded[0]
    m.write_block(b"secret")  # the key file appeared
    m.write_filemarks(1)
    assert inner.files()[0][0].startswith(b"BKE1")


@pytest.mark.parametrize(("key", "label", "writing", "message"), [
    (KEY, "unlabelled", True, "needs a labelled cassette"),
    (KEY, "plain", True, "labelled without encryption"),
    (UnitKey.from_secret(bytes(32)), "sealed", True, "wrong key"),
    (UnitKey.from_secret(bytes(32)), "sealed", False, "wrong key"),
    (None, "sealed", False, "this unit has no key"),
    (None, "sealed", True, "this unit has no key"),
])
def test_refusals(key: UnitKey | None, label: str, writing: bool, message: str) -> None:
    inner = MemoryMedium.from_files([[b"x"]])
    labels = {"unlabelled": None, "plain": label_for(None), "sealed": SEALED}
    m = EncryptingMedium(inner, label_of=lambda: labels[label], key=key)
    with pytest.raises(TapeError, match=message) as exc:
        m.write_block(b"data") if writing else m.read_block(100)
    assert exc.value.errno == errno.EACCES
    assert inner.position().block == 0 and inner.files() == [[b"x"]]


def test_unconfigured_unit_passes_plaintext_cassettes_through() -> None:
    inner = MemoryMedium()
    m = EncryptingMedium(inner, label_of=lambda: label_for(None))
    m.write_block(b"plain")
    m.write_filemarks(1)
    assert inner.files() == [[b"plain"]]
    m.rewind()
    assert read_all(m) == [b"plain", "FM"]


@pytest.mark.parametrize("label", [None, label_for(None)], ids=["unlabelled", "plain"])
def test_a_unit_with_a_key_reads_a_plaintext_cassette_as_it_is(label: Label | None) -> None:
    # what a unit without a key recorded reads back unchanged (docs/encryption.md)
    log: list[str] = []
    m = EncryptingMedium(MemoryMedium.from_files([[b"plain 1", b"plain 2"], [b"p3"]]),
                         label_of=lambda: label, key=KEY, log=log.append)
    assert read_all(m) == [b"plain 1", b"plain 2", "FM", b"p3", "FM"]
    assert log == [] and m.hard_errors == 0


def test_plaintext_recordings_on_an_encrypted_cassette_fail_with_one_line_per_file() -> None:
    # recorded there by a writer that ignored the label (the original driver): every
    # block fails with EIO, never handed out as data, and the reason is logged per file
    log: list[str] = []
    m = sealing(MemoryMedium.from_files([[b"plain 1", b"plain 2", b"plain 3"], [b"p4"]]),
                log=log)
    assert read_all(m) == ["EIO", "EIO", "EIO", "FM", "EIO", "FM"]
    assert m.hard_errors == 4
    assert len(log) == 2 and all("recorded without encryption" in line for line in log)
    assert log[0].startswith("file 0 block 0: not an encrypted block")
    assert log[1].startswith("file 1 block 0: ")
    m.rewind()
    assert read_all(m)[:3] == ["EIO"] * 3 and len(log) == 2  # told once per cassette
    m.unload()
    m.load()
    assert read_all(m) == ["EIO", "EIO", "EIO", "FM", "EIO", "FM"] and len(log) == 4


def test_a_recording_sealed_under_another_key_fails_with_one_line() -> None:
    other = UnitKey.from_secret(bytes(32))
    _, inner = written(BLOCKS)
    log: list[str] = []
    # the label names ``other``, the unit's key, but the blocks were sealed under KEY
    m = sealing(MemoryMedium.from_files(inner.files()), key=other, label=label_for(other),
                log=log)
    assert read_all(m) == [*["EIO"] * len(BLOCKS), "FM"]
    assert len(log) == 1 and KEY.fingerprint_hex in log[0]


class _Buffering(MemoryMedium):
    """A MemoryMedium that says a call would not wait and notes the sizes it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[str, int]] = []

    def write_would_wait(self, size: int) -> bool:
        self.asked.append(("write", size))
        return False

    def read_would_wait(self, max_size: int) -> bool:
        self.asked.append(("read", max_size))
        return False


def test_unconfigured_unit_lets_the_medium_below_answer_would_wait() -> None:
    inner = _Buffering()
    plain = label_for(None)
    m = EncryptingMedium(inner, label_of=lambda: plain)
    assert m.write_would_wait(100)  # the rules have not seen this cassette yet
    assert inner.asked == []
    m.write_block(b"plain")
    assert not m.write_would_wait(100)  # a pass-through: the medium's own answer
    m.write_filemarks(1)
    m.rewind()
    assert m.read_block(1 << 16) == b"plain"
    assert not m.read_would_wait(200)
    assert inner.asked == [("write", 100), ("read", 200)]  # sizes as given: not sealed
    m.use_key(None, missing="no key file")  # configured now: the rules answer again
    assert m.write_would_wait(100)


def test_sealing_unit_waits_for_a_recording_s_first_block() -> None:
    inner = _Buffering()
    m = sealing(inner)
    assert m.write_would_wait(100)  # the first sealed block may read the tape back
    m.write_block(b"x" * 100)
    m.write_block(b"y" * 100)
    assert not m.write_would_wait(100)  # held: the medium answers for a sealed block
    assert inner.asked == [("write", 100 + OVERHEAD)]


def test_configuring_a_missing_key_later_refuses_at_once() -> None:
    inner = MemoryMedium()
    plain = dataclasses.replace(SEALED, encrypted=False, extra={})
    m = EncryptingMedium(inner, label_of=lambda: plain)
    m.write_block(b"plain before")  # not configured, plaintext cassette: passes
    m.use_key(None, missing="the job's key file is gone")
    with pytest.raises(TapeError, match="job's key file is gone"):
        m.write_block(b"must not pass")
    m.write_filemarks(1)
    assert inner.files() == [[b"plain before"]]


def test_a_job_brings_its_own_key() -> None:
    job_key = UnitKey.generate()
    inner, label = MemoryMedium(), label_for(job_key)
    m = EncryptingMedium(inner, label_of=lambda: label)
    m.use_key(job_key)
    m.write_block(b"job data")
    m.write_filemarks(1)
    m.rewind()
    assert read_all(m) == [b"job data", "FM"]
    inner.rewind()  # the unit's own key (the same one) reads it too
    assert sealing(inner, label=label, key=job_key).read_block(100) == b"job data"


# -- the wrapper against a plain tape: any sequence of st operations reads the same ----

OPS = st.lists(st.one_of(
    st.tuples(st.just("write"), st.integers(1, 4)),
    st.tuples(st.just("weof"), st.integers(1, 2)),
    st.tuples(st.just("rewind"), st.just(0)),
    st.tuples(st.just("fsr"), st.integers(-3, 3)),
    st.tuples(st.just("fsf"), st.integers(-2, 2)),
    st.tuples(st.just("read"), st.integers(1, 3)),
    st.tuples(st.just("eod"), st.just(0)),
    st.tuples(st.just("erase"), st.just(0)),
), max_size=25)


def apply(m: EncryptingMedium | MemoryMedium, ops: list[tuple[str, int]]) -> list[object]:
    seen: list[object] = []
    counter = 0
    for op, n in ops:
        if op == "write":
            for _ in range(n):
                counter += 1
                m.write_block(counter.to_bytes(2, "big") * (counter % 7 + 1))
        elif op == "weof":
            m.write_filemarks(n)
        elif op == "rewind":
            m.rewind()
        elif op == "fsr":
            seen.append(m.space_blocks(n))
        elif op == "fsf":
            seen.append(m.space_filemarks(n))
        elif op == "eod":
            m.seek_eod()
        elif op == "erase":
            m.erase()
        else:
            for _ in range(n):
                try:
                    item = m.read_block(1 << 12)
                except TapeError as exc:
                    item = f"errno {exc.errno}"
                seen.append(item)
        seen.append((m.position(), m.tell(), m.at_bot()))
    m.rewind()
    seen.append(read_all(m) if isinstance(m, EncryptingMedium) else plain_all(m))
    return seen


def plain_all(m: MemoryMedium) -> list[bytes | str]:
    out: list[bytes | str] = []
    while (item := m.read_block(1 << 16)) is not END_OF_DATA:
        out.append("FM" if item is FILEMARK else item)
    return out


@settings(max_examples=300, deadline=None)
@given(OPS)
@example([("write", 4), ("weof", 1), ("rewind", 0), ("fsr", 2), ("weof", 1)])  # mt weof
@example([("write", 4), ("rewind", 0), ("fsr", 3), ("erase", 0)])  # mid-file erase
def test_any_sequence_of_operations_reads_as_on_a_plain_tape(ops: list[tuple[str, int]]
                                                             ) -> None:
    assert apply(sealing(), ops) == apply(MemoryMedium(), ops)

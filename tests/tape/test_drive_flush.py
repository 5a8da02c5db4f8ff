"""Drive.flush: st_flush at close(2) (FUSE FLUSH). After a write it records the filemark
and reports its errors; RELEASE (Drive.close) then has nothing left to write, and still
ends the recording itself when no FLUSH came (st-semantics.md 1.3, "Close after writing")."""

from __future__ import annotations

import errno
import os

import pytest

from backerd.errors import TapeError

RDWR, RDONLY, WRONLY = os.O_RDWR, os.O_RDONLY, os.O_WRONLY


def test_flush_after_write_writes_the_filemark_once(tape, st) -> None:
    d, m = tape()
    d.open(False, WRONLY)
    d.write(b"x")
    d.flush()
    assert m.filemarks_written == 1
    assert m.files() == [[b"x"]]
    assert st.where(d) == (1, 0)
    d.flush()  # the close of a duplicate: nothing more
    d.close()
    assert m.filemarks_written == 1
    assert m.position() == (1, 0)


def test_flush_writes_two_filemarks_with_two_fm_and_stays_between(tape, st) -> None:
    d, m = tape()
    d.open(False, WRONLY)
    st.mt(d, "MTSETDRVBUFFER", 0x30000010, privileged=True)  # set TWO_FM
    d.write(b"x")
    d.flush()
    d.close()
    assert m.filemarks_written == 2
    assert m.position() == (1, 0)  # before the second filemark, as st leaves it


def test_flush_after_read_or_nothing_writes_nothing(tape, st) -> None:
    d, m = tape([[b"a", b"b"]])
    d.open(False, RDONLY)
    d.flush()
    assert d.read(10) == b"a"
    d.flush()
    assert d.read(10) == b"b"  # the position is kept
    d.close()
    assert m.filemarks_written == 0
    assert m.position() == (0, 2)


def test_flush_error_reaches_the_caller_and_release_adds_nothing(tape) -> None:
    # the block fits, its filemark does not: close(2) must say so (ENOSPC)
    d, m = tape(capacity=10, filemark_size=5)
    d.open(False, WRONLY)
    d.write(b"12345678")
    with pytest.raises(TapeError) as e:
        d.flush()
    assert e.value.errno == errno.ENOSPC
    d.close()  # st does not try the filemark again at release
    assert m.filemarks_written == 0
    assert not d.is_open


def test_release_without_flush_still_writes_the_filemark(tape, st) -> None:
    d, m = tape(capacity=20, filemark_size=5)
    d.open(False, WRONLY)
    d.write(b"x")
    d.close()
    assert m.filemarks_written == 1
    d.open(False, WRONLY)
    d.write(b"0123456789")  # 6 + 10 fit in 20, the filemark's 5 do not
    assert st.errno_of(d.close) == errno.ENOSPC  # the fallback reports it too
    assert not d.is_open


def test_rewinding_node_rewinds_at_release_not_at_flush(tape) -> None:
    d, m = tape()
    d.open(True, WRONLY)
    d.write(b"x")
    d.flush()
    assert m.position() == (1, 0)
    d.close()
    assert m.at_bot()
    assert m.files() == [[b"x"]]


def test_write_after_flush_starts_a_new_file(tape, st) -> None:
    # a duplicate's close ended the file (FUSE cannot tell it was not the last)
    d, m = tape()
    d.open(False, WRONLY)
    d.write(b"x")
    d.flush()
    d.write(b"y")
    d.flush()
    d.close()
    assert m.files() == [[b"x"], [b"y"]]
    assert m.filemarks_written == 2


def test_flush_after_weof_writes_nothing_more(tape, st) -> None:
    d, m = tape()
    d.open(False, WRONLY)
    d.write(b"x")
    st.mt(d, "MTWEOF", 1)
    d.flush()
    d.close()
    assert m.filemarks_written == 1


def test_flush_with_the_position_lost_writes_nothing(tape) -> None:
    d, m = tape()
    d.open(False, WRONLY)
    d.write(b"x")
    d.position_lost()
    d.flush()
    d.close()
    assert m.filemarks_written == 0


def test_flush_of_a_closed_drive_does_nothing(tape) -> None:
    d, m = tape()
    d.flush()
    d.open(False, WRONLY)
    d.write(b"x")
    d.close()
    d.flush()
    assert m.filemarks_written == 1

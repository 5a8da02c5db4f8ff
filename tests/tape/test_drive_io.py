"""Drive: open rules, variable- and fixed-block reads and writes, filemarks, end of data
and the early-warning protocol (st-semantics.md 1.3, 1.4)."""

from __future__ import annotations

import errno
import os

RDWR, RDONLY, WRONLY, NONBLOCK = os.O_RDWR, os.O_RDONLY, os.O_WRONLY, os.O_NONBLOCK


# -- open ----------------------------------------------------------------------------


def test_second_open_is_busy(tape, st) -> None:
    d, _ = tape()
    d.open(False, RDWR)
    assert st.errno_of(d.open, False, RDONLY) == errno.EBUSY
    assert st.errno_of(d.open, True, RDONLY) == errno.EBUSY
    d.close()
    d.open(True, RDONLY)


def test_no_cassette(tape, st) -> None:
    d, m = tape()
    m.unload()
    assert st.errno_of(d.open, False, RDONLY) == errno.ENOMEDIUM
    d.open(False, RDONLY | NONBLOCK)
    assert st.errno_of(d.read, 10240) == errno.ENOMEDIUM
    assert st.errno_of(st.mt, d, "MTREW") == errno.ENOMEDIUM
    g = st.mtget(d)
    assert g["bits"] == {"DR_OPEN", "IM_REP_EN"}
    assert (g["file"], g["block"]) == (-1, -1)
    st.mt(d, "MTLOAD")
    assert st.mtget(d)["bits"] == {"BOT", "ONLINE", "IM_REP_EN"}
    d.close()


def test_write_protected_cassette(tape, st) -> None:
    d, m = tape([[b"data"]], write_protected=True)
    assert st.errno_of(d.open, False, WRONLY) == errno.EROFS
    assert st.errno_of(d.open, False, RDWR) == errno.EROFS
    d.open(False, RDWR | NONBLOCK)  # st lets a non-blocking open through
    assert st.errno_of(d.write, b"x") == errno.EACCES
    assert "WR_PROT" in st.mtget(d)["bits"]
    d.close()
    d.open(False, RDONLY)
    assert d.read(100) == b"data"
    d.close()


def test_read_only_descriptor(tape, st) -> None:
    d, m = tape([[b"data"]])
    d.open(False, RDONLY)
    assert st.errno_of(d.write, b"x") == errno.EACCES
    assert st.errno_of(st.mt, d, "MTWEOF", 1) == errno.EACCES
    assert st.errno_of(st.mt, d, "MTERASE", 0) == errno.EACCES
    assert "WR_PROT" not in st.mtget(d)["bits"]  # WR_PROT is the cassette's, not the fd's
    d.close()
    assert m.files() == [[b"data"]]


# -- variable-block mode -------------------------------------------------------------


def test_one_write_is_one_block(tape) -> None:
    d, m = tape()
    d.open(False, WRONLY)
    assert d.write(b"a" * 10240) == 10240
    assert d.write(b"b" * 700) == 700
    d.close()
    assert m.files() == [[b"a" * 10240, b"b" * 700]]


def test_read_returns_at_most_one_block(tape) -> None:
    d, _ = tape([[b"a" * 100, b"b" * 50]])
    d.open(False, RDONLY)
    assert d.read(1 << 20) == b"a" * 100
    assert d.read(1 << 20) == b"b" * 50
    d.close()


def test_small_buffer_is_enomem_and_skips_the_block(tape, st) -> None:
    d, _ = tape([[b"a" * 10240, b"b" * 512]])
    d.open(False, RDONLY)
    assert st.errno_of(d.read, 512) == errno.ENOMEM
    assert st.where(d) == (0, 1)
    assert d.read(512) == b"b" * 512
    d.close()


def test_unknown_buffer_size_gets_the_whole_block(tape) -> None:
    d, _ = tape([[b"a" * 10240]])
    d.open(False, RDONLY)
    assert d.read(4096, exact=False) == b"a" * 10240
    d.close()


def test_damaged_block_is_eio_and_counted_as_passed(tape, st) -> None:
    from backerd.tape.medium import DamagedBlock

    d, medium = tape([[b"a" * 100, b"b" * 100, b"c" * 100]])
    real_read = medium.read_block

    def read_block(max_size: int):
        data = real_read(max_size)
        if data == b"b" * 100:
            raise DamagedBlock("unrecoverable data in block 1")
        return data

    medium.read_block = read_block
    d.open(False, RDONLY)
    assert d.read(1 << 20) == b"a" * 100
    assert st.errno_of(d.read, 1 << 20) == errno.EIO
    assert st.where(d) == (0, 2)
    assert d.read(1 << 20) == b"c" * 100
    assert st.where(d) == (0, 3)
    d.close()


def test_filemark_read_returns_zero_once_then_next_file(tape, st) -> None:
    d, _ = tape([[b"a"], [b"b", b"c"], []])
    d.open(False, RDONLY)
    assert d.read(100) == b"a"
    assert st.where(d) == (0, 1)
    assert d.read(100) == b""
    assert st.where(d) == (1, 0)
    assert "EOF" in st.mtget(d)["bits"]
    assert d.read(100) == b"b"
    assert d.read(100) == b"c"
    assert d.read(100) == b""
    assert d.read(100) == b""  # file 2 is empty: its filemark
    assert st.where(d) == (3, 0)
    d.close()


def test_end_of_data_two_zero_reads_then_eio(tape, st) -> None:
    d, _ = tape([[b"a"]])
    d.open(False, RDONLY)
    assert d.read(100) == b"a"
    assert d.read(100) == b""  # the filemark
    assert d.read(100) == b""  # blank tape after it
    assert "EOD" in st.mtget(d)["bits"]
    assert st.errno_of(d.read, 100) == errno.EIO
    assert st.errno_of(d.read, 100) == errno.EIO
    d.close()


def test_blank_tape_read_is_eio(tape, st) -> None:
    d, _ = tape()
    d.open(False, RDONLY)
    assert st.errno_of(d.read, 100) == errno.EIO
    d.close()


def test_read_after_write_without_filemark_is_eio(tape, st) -> None:
    d, _ = tape()
    d.open(False, RDWR)
    d.write(b"x")
    assert st.errno_of(d.read, 10) == errno.EIO
    d.close()


def test_filemark_on_close_only_after_writing(tape) -> None:
    d, m = tape()
    d.open(False, RDWR)
    d.close()
    assert m.filemarks_written == 0
    d.open(False, RDWR)
    d.write(b"x")
    d.close()
    assert m.filemarks_written == 1
    assert m.files() == [[b"x"]]
    assert m.position() == (1, 0)


def test_zero_length_write_writes_nothing(tape) -> None:
    d, m = tape()
    d.open(False, RDWR)
    assert d.write(b"") == 0
    d.close()
    assert m.filemarks_written == 0 and m.files() == []


def test_rewind_on_close_only_on_the_rewinding_node(tape, st) -> None:
    d, m = tape()
    d.open(False, WRONLY)
    d.write(b"x")
    d.close()
    assert m.position() == (1, 0)
    d.open(True, WRONLY)
    d.write(b"y")
    d.close()
    assert m.at_bot()
    assert m.files() == [[b"x"], [b"y"]]
    d.open(False, RDONLY)
    assert st.where(d) == (0, 0)
    d.close()


def test_weof_suppresses_the_close_filemark_nop_does_not(tape, st) -> None:
    d, m = tape()
    d.open(False, WRONLY)
    d.write(b"x")
    st.mt(d, "MTWEOF", 1)
    d.close()
    assert m.filemarks_written == 1
    d.open(False, WRONLY)
    d.write(b"y")
    st.mt(d, "MTNOP")
    d.close()
    assert m.filemarks_written == 2
    assert m.files() == [[b"x"], [b"y"]]


def test_block_limits(tape, st) -> None:
    d, _ = tape()
    d.max_block_size = 1000
    d.open(False, RDWR)
    assert st.errno_of(d.write, b"x" * 1001) == errno.EINVAL
    assert d.write(b"x" * 1000) == 1000
    d.close()


def test_close_after_reading_keeps_position_on_nst(tape, st) -> None:
    d, m = tape([[b"a", b"b"], [b"c"]])
    d.open(False, RDONLY)
    d.read(10)
    d.close()
    assert m.position() == (0, 1)
    d.open(False, RDONLY)
    assert d.read(10) == b"b"
    assert st.where(d) == (0, 2)
    d.close()


# -- fixed-block mode ----------------------------------------------------------------


def fixed(tape, st, files, size=512):
    d, m = tape(files)
    d.open(False, RDWR)
    st.mt(d, "MTSETBLK", size)
    return d, m


def test_fixed_write_must_be_a_multiple(tape, st) -> None:
    d, m = fixed(tape, st, None)
    assert st.errno_of(d.write, b"x" * 1000) == errno.EINVAL
    assert d.write(bytes(range(256)) * 4) == 1024
    assert st.mtget(d)["block_size"] == 512
    d.close()
    assert m.files() == [[bytes(range(256)) * 2] * 2]


def test_fixed_reads_need_not_be_multiples(tape, st) -> None:
    data = bytes(range(256)) * 4
    d, _ = fixed(tape, st, [[data[:512], data[512:]], [b"z" * 512]])
    assert d.read(700) == data[:700]
    assert d.read(700) == data[700:]  # the rest before the filemark
    assert d.read(700) == b""  # then the filemark
    assert st.where(d) == (1, 0)
    assert d.read(100) == b"z" * 100
    d.close()


def test_fixed_read_of_other_block_size_is_eio(tape, st) -> None:
    d, _ = fixed(tape, st, [[b"x" * 100]])
    assert st.errno_of(d.read, 512) == errno.EIO
    d.close()


def test_fixed_status_backs_over_read_ahead(tape, st) -> None:
    data = bytes(range(256)) * 6
    d, _ = fixed(tape, st, [[data[:512], data[512:1024], data[1024:]]])
    assert d.read(700) == data[:700]
    assert d.status()["block"] == 1  # st's count less the block not fully returned
    assert st.where(d) == (0, 2)  # MTIOCGET flushes: the partly returned block is done
    assert d.read(100) == data[1024:1124]
    d.close()


def test_fixed_close_backs_over_a_filemark_not_yet_reported(tape, st) -> None:
    d, m = fixed(tape, st, [[b"a" * 512], [b"b" * 512]])
    assert d.read(1024) == b"a" * 512  # met the filemark, kept it for the next read
    d.close()
    assert m.position() == (0, 1)


def test_fixed_fsf_counts_a_pending_filemark(tape, st) -> None:
    d, _ = fixed(tape, st, [[b"a" * 512], [b"b" * 512], [b"c" * 512]])
    assert d.read(1024) == b"a" * 512
    st.mt(d, "MTFSF", 1)
    assert st.where(d) == (1, 0)
    assert d.read(512) == b"b" * 512
    d.close()


def test_setblk_zero_returns_to_variable_mode(tape, st) -> None:
    d, m = fixed(tape, st, None)
    st.mt(d, "MTSETBLK", 0)
    d.write(b"x" * 3)
    d.close()
    assert m.files() == [[b"x" * 3]]


# -- early warning -------------------------------------------------------------------


def test_early_warning_enospc_alternates(tape, st) -> None:
    d, m = tape(capacity=10_000, early_warning_size=3_000)
    d.open(False, WRONLY)
    for _ in range(6):
        assert d.write(b"x" * 1000) == 1000
    assert "EOT" not in st.mtget(d)["bits"]
    assert d.write(b"x" * 1000) == 1000  # crosses early warning: completes
    assert "EOT" in st.mtget(d)["bits"]
    results = [st.errno_of(d.write, b"t" * 100) for _ in range(6)]
    assert results == [errno.ENOSPC, None, errno.ENOSPC, None, errno.ENOSPC, None]
    assert "EOT" in st.mtget(d)["bits"]
    d.close()  # the filemark still fits
    assert m.files()[0][-1] == b"t" * 100
    assert m.filemarks_written == 1


def test_physical_end_is_enospc(tape, st) -> None:
    d, m = tape(capacity=1000, early_warning_size=100)
    d.open(False, WRONLY)
    assert d.write(b"x" * 950) == 950
    assert st.errno_of(d.write, b"x" * 10) == errno.ENOSPC
    assert st.errno_of(d.write, b"x" * 100) == errno.ENOSPC  # allowed, but does not fit
    d.close()


def test_weof_in_the_zone(tape, st) -> None:
    d, m = tape(capacity=1000, early_warning_size=500)
    d.open(False, WRONLY)
    d.write(b"x" * 600)
    st.mt(d, "MTWEOF", 2)
    assert "EOT" in st.mtget(d)["bits"]
    d.close()
    assert m.filemarks_written == 2


def test_read_after_end_of_data_leaves_the_counters(tape, st) -> None:
    d, _ = tape([[b"a", b"b"]])
    d.open(False, RDWR)
    d.write(b"c")  # replaces "a"; no filemark yet
    st.mt(d, "MTBSR", 1)
    assert st.errno_of(st.mt, d, "MTFSR", 3) == errno.EIO  # end of data after "c"
    assert st.where(d) == (0, 1)
    assert "EOD" in st.mtget(d)["bits"]
    assert st.errno_of(d.read, 100) == errno.EIO  # st does not even touch the tape
    assert st.where(d) == (0, 1)
    d.close()


def test_fixed_odd_block_is_eio_and_stays(tape, st) -> None:
    d, m = fixed(tape, st, [[b"a" * 512, b"b" * 100]])
    assert d.read(1024) == b"a" * 512  # the data before the odd block
    assert st.errno_of(d.read, 512) == errno.EIO
    assert m.position() == (0, 1)
    st.mt(d, "MTSETBLK", 0)
    assert d.read(512) == b"b" * 100
    d.close()


def test_enospc_then_trailer_then_enospc_also_in_fixed_mode(tape, st) -> None:
    d, m = fixed(tape, st, None, size=100)
    m.capacity, m.early_warning_size = 1000, 300
    d.write(b"x" * 700)
    assert "EOT" in st.mtget(d)["bits"]
    assert st.errno_of(d.write, b"t" * 100) == errno.ENOSPC
    assert d.write(b"t" * 100) == 100
    assert st.errno_of(d.write, b"t" * 100) == errno.ENOSPC
    d.close()

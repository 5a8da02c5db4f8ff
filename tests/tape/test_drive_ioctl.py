"""Drive ioctls: MTIOCGET fields, MTIOCPOS, every MTIOCTOP op and its errno."""

from __future__ import annotations

import errno
import os
import struct

import pytest

from testkit.stwire import MTIOCTOP, mtop

RDWR, RDONLY = os.O_RDWR, os.O_RDONLY


@pytest.fixture
def five(tape):
    """Five files of 1..5 blocks named by file and block, drive open O_RDWR on nst."""
    files = [[f"{f}.{b}".encode() for b in range(f + 1)] for f in range(5)]
    d, m = tape(files)
    d.open(False, RDWR)
    yield d, m
    if d.is_open:
        d.close()


def blocks_before(files: list[list[bytes]], f: int, b: int) -> int:
    """SCSI logical block address of (file, block): blocks and filemarks before it."""
    return sum(len(x) + 1 for x in files[:f]) + b


# -- MTIOCGET ------------------------------------------------------------------------


def test_mtget_at_bot(five, st) -> None:
    d, _ = five
    g = st.mtget(d)
    assert g["type"] == 0x72  # MT_ISSCSI2: mt-st prints "SCSI 2 tape drive"
    assert g["resid"] == 0  # partition 0
    assert (g["file"], g["block"]) == (0, 0)
    assert g["bits"] == {"BOT", "ONLINE", "IM_REP_EN"}
    assert g["block_size"] == 0 and g["erreg"] == 0


def test_mtget_dsreg_block_size_and_density(five, st) -> None:
    d, _ = five
    st.mt(d, "MTSETBLK", 10240)
    st.mt(d, "MTSETDENSITY", 0x29)  # nhe
    g = st.mtget(d)
    assert g["dsreg"] == (0x29 << 24) | 10240
    assert d.status()["mode"] == "nhe"


def test_mtget_soft_errors_cleared_on_read(five, st) -> None:
    d, m = five
    d.note_soft_errors(5)
    m.take_soft_errors = lambda: 2  # a medium may report recovered errors itself
    assert st.mtget(d)["erreg"] == 7
    del m.take_soft_errors
    assert st.mtget(d)["erreg"] == 0
    d.note_soft_errors(1 << 20)
    assert st.mtget(d)["erreg"] == 0xFFFF


def test_mtget_32bit_compat(five, st) -> None:
    d, _ = five
    raw = d.ioctl(0x801C6D02, b"", 28)
    fields = struct.unpack("<7i", raw)
    assert fields[0] == 0x72 and fields[5:] == (0, 0)
    assert fields[3] & 0xFFFFFFFF == 0x41010000
    assert struct.unpack("<i", d.ioctl(0x80046D03, b"", 4)) == (0,)


def test_mtiocpos_is_the_logical_block_address(five, st) -> None:
    d, m = five
    files = m.files()
    st.mt(d, "MTFSF", 3)
    st.mt(d, "MTFSR", 2)
    assert st.mtpos(d) == blocks_before(files, 3, 2)
    d.read(100)
    assert st.mtpos(d) == blocks_before(files, 3, 3)


# -- ioctl numbers and sizes -----------------------------------------------------------


@pytest.mark.parametrize("cmd", [0x024B, 0x5401, 0x80306D09, 0x40087001])
def test_unknown_ioctl_is_enotty(five, st, cmd) -> None:
    d, _ = five  # FDFLUSH (tar -W), TCGETS (isatty), unknown 'm' number, other type
    assert st.errno_of(d.ioctl, cmd, b"\0" * 8, 8) == errno.ENOTTY


@pytest.mark.parametrize("cmd", [0x40106D01, 0x80286D02, 0x80106D03])
def test_wrong_ioc_size_is_einval(five, st, cmd) -> None:
    d, _ = five
    assert st.errno_of(d.ioctl, cmd, b"\0" * 16, 64) == errno.EINVAL


@pytest.mark.parametrize("op", ["MTRESET", "MTTELL", "MTRAS1", "MTRAS2", "MTRAS3"])
def test_ops_st_does_not_implement(five, st, op) -> None:
    d, _ = five
    assert st.errno_of(st.mt, d, op) == errno.ENOSYS


@pytest.mark.parametrize("number", [17, 19, 36, 200, -1])
def test_unknown_op_is_enosys(five, st, number) -> None:
    d, _ = five
    assert st.errno_of(d.ioctl, MTIOCTOP, mtop(number), 0) == errno.ENOSYS


# -- spacing ---------------------------------------------------------------------------


def test_fsf_and_bsf(five, st) -> None:
    d, m = five
    st.mt(d, "MTFSF", 2)
    assert st.where(d) == (2, 0) and "EOF" in st.mtget(d)["bits"]
    assert d.read(100) == b"2.0"
    st.mt(d, "MTBSF", 1)
    assert st.where(d) == (1, -1)  # BOT side of the filemark: block unknown
    assert m.position() == (1, 2)
    assert d.read(100) == b""  # the filemark
    assert st.where(d) == (2, 0)


def test_fsf_past_end_of_data(five, st) -> None:
    d, m = five
    assert st.errno_of(st.mt, d, "MTFSF", 9) == errno.EIO
    assert st.where(d) == (5, -1)  # st: file counted, block unknown
    assert "EOD" in st.mtget(d)["bits"]
    assert m.position() == (5, 0)


def test_bsf_into_bot(five, st) -> None:
    d, m = five
    st.mt(d, "MTFSF", 2)
    assert st.errno_of(st.mt, d, "MTBSF", 3) == errno.EIO
    assert st.where(d) == (0, 0) and m.at_bot()


def test_fsr_and_bsr(five, st) -> None:
    d, _ = five
    st.mt(d, "MTFSF", 4)
    st.mt(d, "MTFSR", 3)
    assert st.where(d) == (4, 3)
    st.mt(d, "MTBSR", 2)
    assert st.where(d) == (4, 1)
    assert d.read(100) == b"4.1"


def test_fsr_stops_after_a_filemark(five, st) -> None:
    d, _ = five
    st.mt(d, "MTFSF", 2)
    assert st.errno_of(st.mt, d, "MTFSR", 5) == errno.EIO
    assert st.where(d) == (3, 0)
    assert d.read(100) == b"3.0"


def test_bsr_stops_before_a_filemark(five, st) -> None:
    d, m = five
    st.mt(d, "MTFSF", 2)
    st.mt(d, "MTFSR", 1)
    assert st.errno_of(st.mt, d, "MTBSR", 3) == errno.EIO
    assert st.where(d) == (1, -1)
    assert m.position() == (1, 2)


def test_bsr_at_bot(five, st) -> None:
    d, _ = five
    assert st.errno_of(st.mt, d, "MTBSR", 1) == errno.EIO
    assert st.where(d) == (0, 0)


def test_fsr_into_end_of_data(tape, st) -> None:
    d, _ = tape()
    d.open(False, RDWR)
    d.write(b"a")
    d.write(b"b")
    st.mt(d, "MTREW")  # writes the filemark first
    assert st.errno_of(st.mt, d, "MTFSR", 5) == errno.EIO
    assert st.where(d) == (1, 0)
    d.close()


def test_bsfm_and_fsfm(five, st) -> None:
    d, m = five
    st.mt(d, "MTFSF", 3)
    st.mt(d, "MTBSFM", 2)  # back over 2 filemarks, then forward over 1
    assert st.where(d) == (2, 0)
    assert d.read(100) == b"2.0"
    st.mt(d, "MTFSFM", 1)  # forward over 1, then back over it
    assert st.where(d) == (2, -1)
    assert m.position() == (2, 3)
    assert d.read(100) == b""


def test_eom(five, st) -> None:
    d, m = five
    st.mt(d, "MTEOM")
    g = st.mtget(d)
    assert (g["file"], g["block"]) == (5, -1)  # st spaces filemarks: block unknown
    assert "EOD" in g["bits"] and not g["bits"] & {"EOF", "BOT"}
    assert m.position() == (5, 0)
    assert st.errno_of(d.read, 100) == errno.EIO
    d.write(b"new")
    d.close()
    assert m.files()[5] == [b"new"]


def test_eom_past_unterminated_file(tape, st) -> None:
    d, m = tape()
    d.open(False, RDWR)
    d.write(b"a")
    d.write(b"b")
    st.mt(d, "MTBSR", 2)
    assert st.errno_of(st.mt, d, "MTFSF", 1) == errno.EIO  # no filemark: st wrote none
    st.mt(d, "MTBSR", 1)
    st.mt(d, "MTEOM")
    assert st.where(d) == (0, -1)
    assert m.position() == (0, 2)
    d.close()


def test_fast_eom_loses_the_file_number(five, st) -> None:
    d, _ = five
    st.mt(d, "MTSETDRVBUFFER", 0x30000000 | 0x20, privileged=True)
    st.mt(d, "MTEOM")
    assert st.where(d) == (-1, -1)


# -- writing ops -----------------------------------------------------------------------


def test_weof_counts(five, st) -> None:
    d, m = five
    st.mt(d, "MTEOM")
    st.mt(d, "MTWEOF", 2)
    assert st.where(d) == (7, 0)
    assert m.files()[5:] == [[], []]
    st.mt(d, "MTWEOFI", 1)
    assert st.where(d) == (8, 0)


def test_weof_protected_cassette(tape, st) -> None:
    d, _ = tape([[b"a"]], write_protected=True)
    d.open(False, RDONLY)
    for op in ("MTWEOF", "MTWEOFI", "MTERASE", "MTWSM"):
        assert st.errno_of(st.mt, d, op, 1) == errno.EACCES
    d.close()


def test_erase(five, st) -> None:
    d, m = five
    st.mt(d, "MTFSF", 2)
    st.mt(d, "MTERASE", 1)
    assert st.where(d) == (0, 0) and m.at_bot()
    assert len(m.files()) == 2


@pytest.mark.parametrize("op", ["MTREW", "MTOFFL", "MTSEEK", "MTBSF", "MTUNLOAD"])
def test_filemark_written_before_moving_after_a_write(tape, st, op) -> None:
    d, m = tape([[b"a"]])
    d.open(False, RDWR)
    st.mt(d, "MTFSF", 1)
    d.write(b"b")
    st.mt(d, op, 0 if op == "MTSEEK" else 1)
    assert m.files() == [[b"a"], [b"b"]]
    assert m.filemarks_written == 1
    if m.loaded:
        d.close()
        assert m.filemarks_written == 1  # and none again at close


@pytest.mark.parametrize("op", ["MTFSF", "MTEOM", "MTFSR"])
def test_no_filemark_before_forward_ops_after_a_write(tape, st, op) -> None:
    d, m = tape()
    d.open(False, RDWR)
    d.write(b"a")
    st.errno_of(st.mt, d, op, 1)
    d.close()
    assert m.filemarks_written == 0  # st: the op makes the drive idle


def test_bsf_right_after_writing_becomes_bsf_2(tape, st) -> None:
    d, m = tape([[b"a"], [b"b"]])
    d.open(False, RDWR)
    st.mt(d, "MTEOM")
    d.write(b"c")
    st.mt(d, "MTBSF", 1)  # filemark after "c", then back over 2 filemarks
    assert st.where(d) == (1, -1)
    assert m.position() == (1, 1)
    d.close()


# -- positioning, loading and the rest -------------------------------------------------


def test_rewind_and_retension(five, st) -> None:
    d, m = five
    st.mt(d, "MTFSF", 3)
    st.mt(d, "MTREW")
    assert st.where(d) == (0, 0) and m.at_bot()
    st.mt(d, "MTFSF", 3)
    st.mt(d, "MTRETEN")
    assert st.where(d) == (0, 0) and m.at_bot()


def test_offline_unloads_and_cancels_rewind_on_close(tape, st) -> None:
    d, m = tape([[b"a"]])
    d.open(True, RDONLY)
    st.mt(d, "MTLOCK")
    st.mt(d, "MTOFFL")
    assert not m.loaded and not d.status()["locked"]
    assert st.mtget(d)["bits"] == {"DR_OPEN", "IM_REP_EN"}
    assert st.errno_of(d.read, 10) == errno.ENOMEDIUM
    assert st.errno_of(st.mt, d, "MTFSF") == errno.ENOMEDIUM
    d.close()
    assert st.errno_of(d.open, True, RDONLY) == errno.ENOMEDIUM
    d.open(True, RDONLY | os.O_NONBLOCK)
    st.mt(d, "MTLOAD")
    assert d.read(10) == b"a"
    d.close()


def test_seek_and_tell(five, st) -> None:
    d, m = five
    files = m.files()
    target = blocks_before(files, 3, 2)
    st.mt(d, "MTSEEK", target)
    assert st.where(d) == (-1, -1)  # st does not know after a seek
    assert st.mtpos(d) == target
    assert d.read(100) == b"3.2"
    assert st.errno_of(st.mt, d, "MTTELL") == errno.ENOSYS
    st.mt(d, "MTSEEK", 0)
    assert st.where(d) == (0, 0)
    assert st.errno_of(st.mt, d, "MTSEEK", 10_000) == errno.EIO


def test_nop_lock_unlock(five, st) -> None:
    d, _ = five
    st.mt(d, "MTNOP")
    st.mt(d, "MTLOCK")
    assert d.status()["locked"]
    st.mt(d, "MTUNLOCK")
    assert not d.status()["locked"]


def test_setblk_limits(five, st) -> None:
    d, _ = five
    d.max_block_size = 65536
    assert st.errno_of(st.mt, d, "MTSETBLK", 65537) == errno.EINVAL
    assert st.errno_of(st.mt, d, "MTSETBLK", -5) == errno.EINVAL
    st.mt(d, "MTSETBLK", 65536)
    assert st.mtget(d)["block_size"] == 65536


@pytest.mark.parametrize("code,mode", [(0x19, "nhs"), (0x15, "nls"), (0x2A, "phe"),
                                       (0x05, "nlr")])
def test_setdensity_selects_a_backer_mode(five, st, code, mode) -> None:
    d, m = five
    st.mt(d, "MTSETDENSITY", code)
    assert m.density() == code
    assert st.mtget(d)["density"] == code
    assert d.status()["mode"] == mode


@pytest.mark.parametrize("code", [1, 0x13, 0x30, 0xFF, 0x119])
def test_setdensity_other_codes_einval(five, st, code) -> None:
    d, _ = five
    assert st.errno_of(st.mt, d, "MTSETDENSITY", code) == errno.EINVAL


def test_setdrvbuffer_needs_privilege(five, st) -> None:
    d, _ = five
    assert st.errno_of(st.mt, d, "MTSETDRVBUFFER", 0x30000010) == errno.EPERM
    st.mt(d, "MTSETDRVBUFFER", 0x30000010, privileged=True)  # set TWO_FM
    assert d.status()["options"] & 0x10


def test_two_filemarks_at_close_with_two_fm(tape, st) -> None:
    d, m = tape()
    d.open(False, RDWR)
    st.mt(d, "MTSETDRVBUFFER", 0x30000010, privileged=True)
    d.write(b"a")
    d.close()
    assert m.files() == [[b"a"], []]
    assert m.position() == (1, 0)  # between the two filemarks
    d.open(False, RDWR)
    assert st.where(d) == (1, 0)
    d.close()


@pytest.mark.parametrize("op,code", [("MTCOMPRESSION", errno.EIO), ("MTSETPART", errno.EINVAL),
                                     ("MTMKPART", errno.EINVAL), ("MTFSS", errno.EIO),
                                     ("MTBSS", errno.EIO), ("MTWSM", errno.EIO)])
def test_unsupported_features(five, st, op, code) -> None:
    d, _ = five
    assert st.errno_of(st.mt, d, op, 1) == code


def test_position_lost_until_repositioned(five, st) -> None:
    d, _ = five
    st.mt(d, "MTFSF", 2)
    d.position_lost()
    assert st.errno_of(d.read, 100) == errno.EIO
    assert st.errno_of(d.write, b"x") == errno.EIO
    assert st.errno_of(st.mt, d, "MTFSR", 1) == errno.EIO
    assert st.where(d) == (-1, -1)
    st.mt(d, "MTREW")
    assert d.read(100) == b"0.0"


def test_cassette_swapped_behind_our_back(five, st) -> None:
    d, m = five
    st.mt(d, "MTFSF", 2)
    m.unload()
    assert st.errno_of(d.read, 100) == errno.ENOMEDIUM
    m.load()
    assert st.where(d) == (0, 0)
    assert d.read(100) == b"0.0"


def test_status_dict(five, st) -> None:
    d, _ = five
    st.mt(d, "MTFSF", 1)
    s = d.status()
    assert s["open"] and s["loaded"] and not s["read_only"]
    assert (s["file"], s["block"]) == (1, 0)
    assert s["gstat"] == ["EOF", "ONLINE", "IM_REP_EN"]
    assert s["block_size"] == 0 and s["density"] == 0 and s["mode"] is None


def test_load_restores_the_nodes_rewind_on_close(tape, st) -> None:
    d, m = tape([[b"a"]])
    d.open(True, RDONLY)
    st.mt(d, "MTOFFL")
    st.mt(d, "MTLOAD")
    st.mt(d, "MTFSF", 1)
    d.close()
    assert m.at_bot()


def test_lock_without_cassette(tape, st) -> None:
    d, m = tape()
    m.unload()
    d.open(False, RDONLY | os.O_NONBLOCK)
    st.mt(d, "MTLOCK")  # PREVENT MEDIUM REMOVAL needs no cassette
    st.mt(d, "MTUNLOCK")
    assert st.errno_of(st.mt, d, "MTSETPART", 0) == errno.EINVAL
    assert st.errno_of(st.mt, d, "MTSETBLK", 512) == errno.ENOMEDIUM
    assert st.errno_of(d.ioctl, 0x80086D03, b"", 8) == errno.EIO  # MTIOCPOS
    d.close()


def test_rewinding_close_recovers_a_lost_position(tape, st) -> None:
    d, m = tape([[b"a"], [b"b"]])
    d.open(True, RDONLY)
    st.mt(d, "MTFSF", 1)
    d.position_lost()
    d.close()
    assert m.at_bot()
    d.open(False, RDONLY)
    assert d.read(10) == b"a"
    d.close()


def test_default_block_size_applies_to_the_next_cassette(tape, st) -> None:
    d, m = tape([[b"a" * 512]])
    d.open(False, RDONLY)
    st.mt(d, "MTSETDRVBUFFER", 0x50000000 | 512, privileged=True)  # mt defblksize 512
    assert st.mtget(d)["block_size"] == 0
    st.mt(d, "MTOFFL")
    st.mt(d, "MTLOAD")
    assert st.mtget(d)["block_size"] == 512
    d.close()

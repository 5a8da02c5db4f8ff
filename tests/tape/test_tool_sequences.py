"""The exact call sequences GNU tar, mt-st, cpio's mt, cpio and dd issue
(st-semantics.md section 2), replayed against the Drive. Archives are made and checked
with Python's tarfile, an independent reader."""

from __future__ import annotations

import errno
import io
import os
import tarfile

RECORD = 10240  # tar's default record: blocking factor 20 x 512
FDFLUSH = 0x024B


def make_archive(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def contents(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def records(archive: bytes) -> list[bytes]:
    assert len(archive) % RECORD == 0
    return [archive[i : i + RECORD] for i in range(0, len(archive), RECORD)]


def tar_create(drive, archive: bytes, rewind: bool = False) -> None:
    drive.open(rewind, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    for rec in records(archive):
        assert drive.write(rec) == RECORD
    drive.close()


def tar_list(drive, rewind: bool = False, record: int = RECORD) -> bytes:
    """tar -t: read records until the end-of-archive blocks, then close."""
    drive.open(rewind, os.O_RDONLY)
    got = b""
    while True:
        rec = drive.read(record)
        if not rec:
            break
        got += rec
        if got.endswith(b"\0" * 1024):
            break
    drive.close()
    return got


def mt_cmd(drive, st, op: str, count: int = 1, flags: int = os.O_RDONLY) -> int | None:
    """One mt-st invocation on /dev/nst0: open, MTIOCTOP, close; returns the errno."""
    drive.open(False, flags)
    try:
        return st.errno_of(st.mt, drive, op, count)
    finally:
        drive.close()


def mt_status(drive, st) -> dict:
    """mt-st status: O_RDONLY|O_NONBLOCK open, MTIOCGET."""
    drive.open(False, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return st.mtget(drive)
    finally:
        drive.close()


A = {"a.txt": b"alpha" * 3000, "b.bin": bytes(range(256)) * 100}
B = {"c.txt": b"charlie\n" * 5000}
C = {"d.txt": b"delta" * 10}


def test_tar_create_then_read_back_with_mt(tape, st) -> None:
    d, m = tape()
    arch_a, arch_b = make_archive(A), make_archive(B)
    tar_create(d, arch_a)
    tar_create(d, arch_b)
    assert mt_cmd(d, st, "MTREW") is None
    assert contents(tar_list(d)) == A
    status = mt_status(d, st)
    # tar stops at the end-of-archive blocks: the tape is still inside file 0
    assert (status["file"], status["block"]) == (0, len(arch_a) // RECORD)
    assert mt_cmd(d, st, "MTFSF", 1) is None
    assert (mt_status(d, st)["file"], mt_status(d, st)["block"]) == (1, 0)
    assert contents(tar_list(d)) == B


def test_tar_on_the_rewinding_node(tape, st) -> None:
    d, m = tape()
    tar_create(d, make_archive(A), rewind=True)
    assert m.at_bot()
    assert contents(tar_list(d, rewind=True)) == A
    assert m.at_bot()


def test_tar_larger_record_adopts_the_block(tape) -> None:
    d, _ = tape()
    tar_create(d, make_archive(A), rewind=True)
    d.open(True, os.O_RDONLY)
    assert len(d.read(2 * RECORD)) == RECORD  # short first record: tar adopts 10240
    d.close()


def test_tar_smaller_record_is_enomem(tape, st) -> None:
    d, _ = tape()
    tar_create(d, make_archive(A), rewind=True)
    d.open(True, os.O_RDONLY)
    assert st.errno_of(d.read, RECORD // 2) == errno.ENOMEM
    d.close()


def tar_verify(drive, st, archive: bytes) -> bytes | None:
    """tar -cW: write, FDFLUSH, MTBSF 1 (retried once on EIO, else lseek 0: a no-op on a
    tape), then read the archive back; returns what the verify pass read."""
    drive.open(False, os.O_RDWR | os.O_CREAT)
    for rec in records(archive):
        drive.write(rec)
    assert st.errno_of(drive.ioctl, FDFLUSH, b"", 0) == errno.ENOTTY
    code = st.errno_of(st.mt, drive, "MTBSF", 1)
    if code == errno.EIO:
        code = st.errno_of(st.mt, drive, "MTBSF", 1)
    got = b""
    for _ in records(archive):
        rec = drive.read(RECORD)
        if not rec:
            break
        got += rec
    drive.close()
    return got


def test_tar_verify_first_file_on_tape(tape, st) -> None:
    d, m = tape()
    arch = make_archive(A)
    # BSF 1 becomes BSF 2 after the automatic filemark, hits BOT: EIO twice, then
    # tar's lseek(0) "works" and the verify pass reads the archive from BOT
    assert tar_verify(d, st, arch) == arch
    assert m.files() == [records(arch)]


def test_tar_verify_later_file_verifies_nothing_as_on_st(tape, st) -> None:
    d, m = tape()
    first, second = make_archive(A), make_archive(B)
    tar_create(d, first)
    # st parks before the previous filemark: the first verify read meets it
    assert tar_verify(d, st, second) == b""
    assert m.files() == [records(first), records(second)]


def with_member_appended(arch: bytes) -> bytes:
    """What tar -r makes of `arch`: d.txt appended over its end-of-archive blocks."""
    buf = io.BytesIO(arch)
    with tarfile.open(fileobj=buf, mode="a", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("d.txt")
        info.size = len(C["d.txt"])
        tar.addfile(info, io.BytesIO(C["d.txt"]))
    return buf.getvalue()


def test_tar_append_uses_bsr_1(tape, st) -> None:
    d, m = tape()
    arch = make_archive(A)
    tar_create(d, arch, rewind=True)
    # what tar -r writes: the archive with the new member, from the record that held
    # the end-of-archive blocks
    appended = with_member_appended(arch)
    n = len(arch) // RECORD
    assert appended[: (n - 1) * RECORD] == arch[: (n - 1) * RECORD]

    d.open(True, os.O_RDWR)
    for _ in range(n):
        d.read(RECORD)
    assert st.errno_of(st.mt, d, "MTBSR", 1) is None
    for rec in records(appended)[n - 1 :]:
        d.write(rec)
    d.close()
    assert m.at_bot()
    assert contents(tar_list(d, rewind=True)) == A | C
    assert len(m.files()) == 1


def test_tar_multivolume_stops_at_enospc(tape, st) -> None:
    d, m = tape(capacity=30 * RECORD, early_warning_size=5 * RECORD)
    d.open(False, os.O_WRONLY)
    written = 0
    while st.errno_of(d.write, b"r" * RECORD) is None:
        written += 1
    assert written == 25  # the write that crossed early warning completed
    d.close()  # tar closes and asks for the next volume; the filemark fits
    assert len(m.files()[0]) == written


def test_mt_fsf_bsf_eod_status_tell(tape, st) -> None:
    files = [[f"{f}.{b}".encode() for b in range(3)] for f in range(4)]
    d, m = tape(files)
    s = mt_status(d, st)
    assert (s["file"], s["block"], s["bits"]) == (0, 0, {"BOT", "ONLINE", "IM_REP_EN"})
    assert mt_cmd(d, st, "MTFSF", 2) is None
    s = mt_status(d, st)
    assert (s["file"], s["block"]) == (2, 0) and "EOF" in s["bits"]
    assert mt_cmd(d, st, "MTBSF", 1) is None
    s = mt_status(d, st)
    assert (s["file"], s["block"]) == (1, -1)
    assert not s["bits"] & {"BOT", "EOF"}
    assert mt_cmd(d, st, "MTEOM") is None
    s = mt_status(d, st)
    assert (s["file"], s["block"]) == (4, -1) and "EOD" in s["bits"]
    d.open(False, os.O_RDONLY)  # mt tell: MTIOCPOS
    assert st.mtpos(d) == 16  # 12 blocks and 4 filemarks
    d.close()
    assert mt_cmd(d, st, "MTWEOF", 1, os.O_RDWR) is None
    assert mt_cmd(d, st, "MTREW") is None
    assert m.at_bot() and len(m.files()) == 5
    # asf 2 = rewind + fsf 2
    assert mt_cmd(d, st, "MTREW") is None and mt_cmd(d, st, "MTFSF", 2) is None
    assert mt_status(d, st)["file"] == 2


def test_mt_setblk_and_setdensity_with_nonblocking_open(tape, st) -> None:
    d, m = tape()
    assert mt_cmd(d, st, "MTSETBLK", 512, os.O_RDONLY | os.O_NONBLOCK) is None
    assert mt_cmd(d, st, "MTSETDENSITY", 0x19, os.O_RDONLY | os.O_NONBLOCK) is None
    s = mt_status(d, st)
    assert (s["block_size"], s["density"]) == (512, 0x19)
    assert mt_cmd(d, st, "MTTELL") == errno.ENOSYS
    assert mt_cmd(d, st, "MTSETDRVBUFFER", 0x10000000) == errno.EPERM


def test_cpio_mt_status_sends_nop_first(tape, st) -> None:
    d, _ = tape([[b"x"]])
    d.open(False, os.O_RDONLY)
    st.mt(d, "MTNOP")
    s = st.mtget(d)
    d.close()
    assert (s["type"], s["file"], s["block"]) == (0x72, 0, 0)


def test_cpio_reel_end_on_zero_read(tape, st) -> None:
    d, m = tape()
    d.open(False, os.O_WRONLY)
    for i in range(8):  # cpio's 512-byte blocks
        d.write(bytes([i]) * 512)
    d.close()
    assert mt_cmd(d, st, "MTREW") is None
    d.open(False, os.O_RDONLY)
    got = [d.read(512) for _ in range(9)]
    d.close()
    assert got[:8] == [bytes([i]) * 512 for i in range(8)]
    assert got[8] == b""  # cpio takes the filemark for the end of the reel


def test_dd_block_sizes(tape, st) -> None:
    d, _ = tape()
    d.open(True, os.O_WRONLY)  # dd of=/dev/st0 bs=10240
    for i in range(3):
        d.write(bytes([i]) * RECORD)
    d.close()
    d.open(True, os.O_RDONLY)  # dd if=/dev/st0 bs=512: ENOMEM
    assert st.errno_of(d.read, 512) == errno.ENOMEM
    d.close()
    d.open(True, os.O_RDONLY)  # dd if=/dev/st0 bs=1M: one block per read, then 0
    got = []
    while chunk := d.read(1 << 20):
        got.append(chunk)
    d.close()
    assert got == [bytes([i]) * RECORD for i in range(3)]


def test_foreign_tape_reads_in_the_sizes_asked(tape) -> None:
    """A tape written by the original driver has no block boundaries: tar still reads."""
    from backerd.tape.drive import Drive
    from backerd.tape.medium import MemoryMedium

    arch = make_archive(A)
    d = Drive(MemoryMedium.from_streams([arch]))
    assert contents(tar_list(d)) == A


def test_tar_append_to_a_foreign_tape(tape, st) -> None:
    """tar -r on a tape without block boundaries: MTBSR 1 backs over the last read."""
    from backerd.tape.drive import Drive
    from backerd.tape.medium import MemoryMedium

    arch = make_archive(A)
    m = MemoryMedium.from_streams([arch])
    d = Drive(m)
    appended = with_member_appended(arch)
    n = len(arch) // RECORD
    d.open(True, os.O_RDWR)
    for _ in range(n):
        assert len(d.read(RECORD)) == RECORD
    st.mt(d, "MTBSR", 1)
    for rec in records(appended)[n - 1 :]:
        d.write(rec)
    d.close()
    assert m.streams() == [appended]
    assert contents(tar_list(d, rewind=True)) == A | C

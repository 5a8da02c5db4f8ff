"""The st Drive over the Backer medium on a simulated cassette, with the real codec.

References are independent of the code under test: the shared vectors (tape and
decoded SHA-256 of the original writer), the mtio constants of the st notes, and the
data the test itself wrote.
"""

from __future__ import annotations

import errno
import hashlib
import json
import lzma
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from backerd.errors import TapeError
from backerd.medium import BackerMedium
from backerd.medium.writer import LANE_BATCH
from backerd.tape.drive import Drive
from backerd.tape.medium import END_OF_DATA, FILEMARK
from backerd.vcr.noise import NoiseModel
from backerd.vcr.sim import Cassette, SimDeck
from testkit.stwire import MTGET_SIZE, MTIOCGET, MTIOCTOP, mtop, parse_mtget

DATA = Path(__file__).resolve().parents[1] / "data"
MANIFEST = json.loads((DATA / "manifest.json").read_text())

MTFSF, MTBSF, MTFSR, MTBSR, MTWEOF, MTREW, MTEOM, MTSETDENSITY = 1, 2, 3, 4, 5, 6, 12, 21
GMT_BOT, GMT_EOF, GMT_EOD = 0x40000000, 0x80000000, 0x08000000


def mt(drive: Drive, op: int, count: int = 1) -> None:
    drive.ioctl(MTIOCTOP, mtop(op, count), 0)


def mtget(drive: Drive) -> dict:
    return parse_mtget(drive.ioctl(MTIOCGET, b"", MTGET_SIZE))


def mod251(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


def entry(name: str) -> dict:
    return next(e for e in MANIFEST if e["name"] == name)


def backerd(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backerd", *args], input=stdin,
                          capture_output=True, check=False)


@pytest.fixture
def tape(tmp_path: Path):
    made: list[Cassette] = []

    def make(mode: str, length: str = "T-30", **deck_kwargs) -> tuple[Drive, BackerMedium]:
        standard = "pal" if mode[0] == "p" else "ntsc"
        c = Cassette.create(tmp_path / f"{mode}.img", standard, length, force=True, sync=False)
        made.append(c)
        medium = BackerMedium(SimDeck(c, **deck_kwargs), mode)
        return Drive(medium), medium

    yield make
    for c in made:
        c.close()


def write_file(drive: Drive, blocks: list[bytes]) -> None:
    drive.open(False, os.O_WRONLY)
    for b in blocks:
        assert drive.write(b) == len(b)
    drive.close()  # st writes the filemark


def read_file(drive: Drive, size: int = 1 << 20) -> list[bytes]:
    drive.open(False, os.O_RDONLY)
    blocks = []
    while data := drive.read(size):
        blocks.append(data)
    drive.close()
    return blocks


@pytest.mark.parametrize("mode", ["nls", "nhs", "nle", "phe", "nhr"])
def test_files_of_blocks_with_st_positioning(tape, mode: str) -> None:
    drive, medium = tape(mode)
    rnd = random.Random(mode)
    files = [
        [rnd.randbytes(10240) for _ in range(12)],  # tar records
        [rnd.randbytes(rnd.randrange(1, 70000)) for _ in range(5)],  # dd, odd sizes
        [rnd.randbytes(512)],
    ]
    for blocks in files:
        write_file(drive, blocks)
    drive.open(False, os.O_RDONLY)
    mt(drive, MTREW)
    status = mtget(drive)
    assert status["gstat"] & GMT_BOT and (status["file"], status["block"]) == (0, 0)
    assert status["dsreg"] >> 24 == {"nls": 0x15, "nhs": 0x19, "nle": 0x25, "phe": 0x2A,
                                     "nhr": 0x09}[mode]
    drive.close()
    assert [read_file(drive) for _ in files] == files
    # at the end: a zero read, then EIO (blank tape)
    drive.open(False, os.O_RDONLY)
    assert drive.read(1 << 20) == b""
    with pytest.raises(TapeError) as e:
        drive.read(1 << 20)
    assert e.value.errno == errno.EIO
    # fsf / bsf / fsr / bsr
    mt(drive, MTREW)
    mt(drive, MTFSF, 1)
    mt(drive, MTFSR, 2)
    assert drive.read(1 << 20) == files[1][2]
    mt(drive, MTBSR, 2)
    assert drive.read(1 << 20) == files[1][1]
    mt(drive, MTBSF, 1)  # BOT side of the filemark ending file 0...
    mt(drive, MTFSF, 1)  # ...and over it again
    assert drive.read(1 << 20) == files[1][0]
    mt(drive, MTFSF, 1)
    assert (mtget(drive)["file"], mtget(drive)["block"]) == (2, 0)
    assert drive.read(1 << 20) == files[2][0]
    drive.close()


@pytest.mark.parametrize("mode", ["nls", "ple"])
def test_eod_and_append(tape, mode: str) -> None:
    drive, medium = tape(mode)
    write_file(drive, [b"first" * 1000])
    write_file(drive, [b"second" * 1000])
    drive.open(False, os.O_RDWR)
    mt(drive, MTREW)
    mt(drive, MTEOM)
    status = mtget(drive)
    assert status["file"] == 2 and status["gstat"] & GMT_EOD
    drive.write(b"third" * 3000)
    drive.close()
    drive.open(True, os.O_RDONLY)
    mt(drive, MTREW)
    drive.close()
    assert [read_file(drive) for _ in range(3)] == [
        [b"first" * 1000], [b"second" * 1000], [b"third" * 3000]]
    assert [r.mode for r in medium.deck.catalog.recordings] == [mode] * 3


def test_tar_append_backspaces_into_a_recording(tape) -> None:
    """tar -r: read to the end of the archive, MTBSR 1, rewrite the last record."""
    drive, medium = tape("nhs")
    records = [bytes([i + 1]) * 10240 for i in range(8)]
    write_file(drive, records)
    drive.open(False, os.O_RDWR)
    mt(drive, MTREW)
    for _ in records:
        drive.read(10240)
    mt(drive, MTBSR, 1)
    drive.write(b"N" * 10240)
    drive.write(b"M" * 10240)
    drive.close()
    drive.open(True, os.O_RDONLY)
    mt(drive, MTREW)
    drive.close()
    assert read_file(drive) == records[:7] + [b"N" * 10240, b"M" * 10240]
    assert len(medium.deck.catalog.recordings) == 1


def test_density_selects_the_mode_at_bot(tape) -> None:
    drive, medium = tape("nls")
    drive.open(False, os.O_RDWR)
    mt(drive, MTSETDENSITY, 0x29)  # nhe
    drive.write(b"x" * 5000)
    drive.close()
    assert medium.deck.catalog.recordings[0].mode == "nhe"
    drive.open(False, os.O_RDWR)
    with pytest.raises(TapeError) as e:
        mt(drive, MTSETDENSITY, 0x1A)  # phs on an NTSC cassette
    assert e.value.errno == errno.EINVAL
    mt(drive, MTREW)
    assert drive.read(10000) == b"x" * 5000
    drive.close()


def test_noisy_playback_gives_eio_for_damaged_blocks_only(tape) -> None:
    drive, medium = tape("nls", noise=NoiseModel(seed=11, errors=2, gap=0.004, gap_length=2))
    blocks = [bytes([i]) * 4096 for i in range(1, 120)]
    write_file(drive, blocks)
    drive.open(False, os.O_RDONLY)
    mt(drive, MTREW)
    got, failed = [], 0
    while True:
        try:
            data = drive.read(1 << 20)
        except TapeError as exc:
            assert exc.errno == errno.EIO
            failed += 1
            got.append(None)
            continue
        if not data:
            break
        got.append(data)
    assert len(got) == len(blocks)
    assert all(g == b for g, b in zip(got, blocks, strict=True) if g is not None)
    assert 0 < failed < len(blocks) // 2  # lost fields cost some blocks, not the rest
    assert mtget(drive)["erreg"] > 0  # corrected symbols are soft errors
    assert medium.hard_errors == failed
    drive.close()


# -- interchange with the offline tools: the shared vectors ------------------------------

ORIGINAL_TAPES = ["3.102-nls-m1000", "3.102-nhe-m1000", "3.102-ple-m207737",
                  "3.101-pls-m1000", "3.3-nhs-m1000", "3.102-phs-m100000-noise-e3"]


@pytest.mark.parametrize("name", ORIGINAL_TAPES)
def test_recorded_stream_of_the_original_reads_through_the_medium(tmp_path: Path,
                                                                  name: str) -> None:
    e = entry(name)
    raw = lzma.decompress((DATA / e["tape"]).read_bytes())
    image = tmp_path / "orig.img"
    standard = "pal" if e["mode"][0] == "p" else "ntsc"
    assert backerd("cassette", "new", str(image), "--standard", standard,
                   "--length", "E-30").returncode == 0
    done = backerd("cassette", "record", str(image), "--mode", e["mode"], stdin=raw)
    assert done.returncode == 0, done.stderr.decode()
    with Cassette.open(image, sync=False) as c:
        medium = BackerMedium(SimDeck(c), e["mode"])
        out = bytearray()
        while isinstance(item := medium.read_block(3000), bytes):
            assert 0 < len(item) <= 3000
            out += item
        assert item is FILEMARK
        assert medium.read_block(10) is END_OF_DATA
    assert hashlib.sha256(out).hexdigest() == e["decoded_sha256"]
    assert len(out) == e["input"]["length"]


@pytest.mark.parametrize("name", ["3.102-nls-m1000", "3.102-phe-m1000", "3.102-nle-m168257"])
def test_recording_written_through_the_drive_is_the_original_stream(tmp_path: Path,
                                                                    name: str) -> None:
    e = entry(name)
    image = tmp_path / "w.img"
    standard = "pal" if e["mode"][0] == "p" else "ntsc"
    with Cassette.create(image, standard, "E-30", sync=False) as c:
        drive = Drive(BackerMedium(SimDeck(c), e["mode"]))
        data = mod251(e["input"]["length"])
        write_file(drive, [data[i : i + 10240] for i in range(0, len(data), 10240)])
    dumped = backerd("cassette", "dump", str(image), "--file", "0")
    assert dumped.returncode == 0, dumped.stderr.decode()
    assert len(dumped.stdout) == e["tape_length"]
    assert hashlib.sha256(dumped.stdout).hexdigest() == e["tape_sha256"]
    from backerd.format.player import Player

    player = Player(e["mode"])
    out = player.feed(dumped.stdout).data + player.finish().data
    assert hashlib.sha256(out).hexdigest() == e["decoded_sha256"]


def test_unfinished_recording_is_recovered_by_decoding(tmp_path: Path) -> None:
    image = tmp_path / "r.img"
    data = random.Random(5).randbytes(700_000)
    with Cassette.create(image, "ntsc", "T-30", sync=False) as c:
        m = BackerMedium(SimDeck(c), "nhs")
        m.write_block(b"closed" * 100)
        m.write_filemarks(1)
        for i in range(0, len(data), 10240):
            m.write_block(data[i : i + 10240])
        m.lane.finish()  # the batch handed to the codec lane is recorded
        # the daemon dies here: the cassette is left as it is
    with Cassette.open(image, sync=False) as c:
        assert c.interrupted is not None and c.interrupted.mode == "nhs"
        m = BackerMedium(SimDeck(c), "nls")
        assert m.read_block(1 << 20) == b"closed" * 100
        assert m.read_block(1 << 20) is FILEMARK
        out = bytearray()
        while isinstance(item := m.read_block(10240), bytes):
            out += item
        assert item is END_OF_DATA
        # everything the Recorder had turned into whole sectors is back: all but the
        # batch still gathering
        assert data.startswith(out) and len(out) > len(data) - LANE_BATCH - 2156
        assert len(c.recordings) == 2 and c.recordings[1].origin == "recovered"


def test_recordings_the_catalog_never_saw_are_found_by_scanning(tmp_path: Path) -> None:
    """Signal without index entries: mode guessed, recordings split at their EORs."""
    from backerd.format.fields import FieldCutter
    from backerd.format.params import mode as mode_params
    from backerd.format.recorder import Recorder

    contents = [mod251(3000), b"", random.Random(6).randbytes(5000)]
    streams: list[list[bytes]] = []
    for blob in contents:
        r = Recorder("nle")
        cutter = FieldCutter(mode_params("nle"))
        streams.append(cutter.cut(r.write(blob) + r.close()))
    image = tmp_path / "s.img"
    gap = 500  # the VCR was stopped and started again before the third recording
    with Cassette.create(image, "ntsc", "T-30", sync=False) as c:
        c.write_fields(0, streams[0] + streams[1])
        c.write_fields(len(streams[0]) + len(streams[1]) + gap, streams[2])
    with Cassette.open(image, sync=False) as c:
        notes: list[str] = []
        m = BackerMedium(SimDeck(c), "nhs", log=notes.append)
        assert [r.mode for r in c.recordings] == ["nle"] * 3, notes
        assert [r.fields for r in c.recordings] == [len(f) for f in streams]
        assert c.recordings[2].start == c.recordings[1].end + gap
        got = []
        for _ in contents:
            out = bytearray()
            while isinstance(item := m.read_block(4096), bytes):
                out += item
            assert item is FILEMARK
            got.append(bytes(out))
        assert got == contents
        assert m.read_block(10) is END_OF_DATA


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["nhs", "ple"])
def test_offline_tools_and_the_device_interchange(tmp_path: Path, mode: str) -> None:
    """backerd encode | cassette record -> read by the Drive; Drive -> dump | decode."""
    standard = "pal" if mode[0] == "p" else "ntsc"
    image = tmp_path / "x.img"
    data = random.Random(mode).randbytes(150_000)
    assert backerd("cassette", "new", str(image), "--standard", standard,
                   "--length", "E-30").returncode == 0
    encoded = backerd("encode", "--mode", mode, stdin=data)
    assert encoded.returncode == 0, encoded.stderr.decode()
    assert backerd("cassette", "record", str(image), "--mode", mode,
                   stdin=encoded.stdout).returncode == 0
    with Cassette.open(image, sync=False) as c:
        drive = Drive(BackerMedium(SimDeck(c), mode))
        drive.open(False, os.O_RDWR)
        got = bytearray()
        while chunk := drive.read(10240):  # a foreign stream: the sizes asked for
            assert len(chunk) <= 10240
            got += chunk
        assert got == data
        drive.write(data[::-1])  # a second file, written through the device
        drive.close()
    dumped = backerd("cassette", "dump", str(image), "--file", "1")
    decoded = backerd("decode", "--mode", mode, stdin=dumped.stdout)
    assert decoded.returncode == 0, decoded.stderr.decode()
    assert decoded.stdout == data[::-1]

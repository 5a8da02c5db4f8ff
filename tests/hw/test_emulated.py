"""Recording and playing through the emulated cards, in process; faults and recovery."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backerd.errors import BackerError
from backerd.hw.emu.setup import EmulatedUnit, emulated_unit
from backerd.hw.service import LateService
from backerd.medium import BackerMedium
from backerd.vcr.sim import Cassette, SimDeck
from testkit.hwtest import ServiceThread

KINDS = ["isa", "parport"]


def data_of(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


class Running:
    """An emulated unit with its service task running, and a medium on its deck."""

    def __init__(self, cassette: Cassette, kind: str, mode: str = "nhs",
                 late: LateService | None = None) -> None:
        self.unit: EmulatedUnit = emulated_unit(cassette, kind, mode=mode)
        self.service = ServiceThread(self.unit.modem, self.unit.clock, late=late)
        self.medium = BackerMedium(self.unit.deck, mode=mode)

    def close(self) -> None:
        try:
            self.medium.close()
        finally:
            self.service.stop()
            self.unit.modem.close()


@pytest.fixture
def cassettes(tmp_path: Path) -> Iterator[tuple[Cassette, Cassette]]:
    a = Cassette.create(tmp_path / "card.cassette", "ntsc", "E-30", sync=False)
    b = Cassette.create(tmp_path / "sim.cassette", "ntsc", "E-30", sync=False)
    yield a, b
    a.close()
    b.close()


def write_files(medium: BackerMedium, files: list[bytes]) -> None:
    for data in files:
        medium.write_block(data)
        medium.write_filemarks(1)


def read_file(medium: BackerMedium) -> bytes:
    out = bytearray()
    while True:
        block = medium.read_block(1 << 20)
        if not isinstance(block, bytes) or not block:
            return bytes(out)
        out += block


@pytest.mark.parametrize("kind", KINDS)
def test_card_recording_equals_the_simulated_vcrs(cassettes, kind: str) -> None:  # noqa: ANN001
    card, sim = cassettes
    files = [data_of(200_000, 1), data_of(5_000, 2)]
    run = Running(card, kind)
    try:
        write_files(run.medium, files)
        assert run.unit.modem.counters.underruns == 0
    finally:
        run.close()
    plain = BackerMedium(SimDeck(sim), mode="nhs")
    write_files(plain, files)
    plain.close()
    assert card.recordings == sim.recordings
    end = sim.recordings[-1].end
    assert card.read_fields(0, end + 2) == sim.read_fields(0, end + 2)
    # and the plain simulated VCR reads the card's cassette
    reader = BackerMedium(SimDeck(card), mode="nhs")
    assert read_file(reader) == files[0]
    reader.close()


@pytest.mark.parametrize("kind", KINDS)
def test_card_reads_what_the_simulated_vcr_recorded(cassettes, kind: str) -> None:  # noqa: ANN001
    card, sim = cassettes
    files = [data_of(150_000, 3), data_of(70_000, 4)]
    plain = BackerMedium(SimDeck(sim), mode="nhs")
    write_files(plain, files)
    plain.close()
    card.close()
    run = Running(sim, kind)
    try:
        assert read_file(run.medium) == files[0]
        assert read_file(run.medium) == files[1]
        assert run.unit.modem.counters.overruns == 0
    finally:
        run.close()


def test_card_cassette_dumps_and_decodes_offline(cassettes) -> None:  # noqa: ANN001
    card, _ = cassettes
    data = data_of(123_456, 5)
    run = Running(card, "isa", mode="nls")
    try:
        write_files(run.medium, [data])
    finally:
        run.close()
    card.close()
    backerd = [sys.executable, "-m", "backerd"]
    dump = subprocess.run([*backerd, "cassette", "dump", "--file", "0", str(card.path)],
                          capture_output=True, check=True, timeout=120)
    decoded = subprocess.run([*backerd, "decode", "--mode", "nls"], input=dump.stdout,
                             capture_output=True, check=True, timeout=120)
    assert decoded.stdout == data


def test_mistimed_start_is_retried(cassettes) -> None:  # noqa: ANN001
    card, sim = cassettes
    run = Running(card, "isa")
    late = [True]

    def once_late(ns: int) -> int:
        if late and ns > 100_000:
            late.clear()
            return ns + 120_000  # the machine stalled during the start pause
        return ns

    run.unit.machine.clock.delay_hook = once_late
    try:
        write_files(run.medium, [data_of(50_000, 6)])
        assert run.unit.modem.counters.framing_errors == 1
    finally:
        run.close()
    plain = BackerMedium(SimDeck(sim), mode="nhs")
    write_files(plain, [data_of(50_000, 6)])
    plain.close()
    end = sim.recordings[-1].end
    assert card.read_fields(0, end) == sim.read_fields(0, end)


@pytest.mark.parametrize("kind", KINDS)
def test_late_service_while_recording_is_an_underrun_the_reader_survives(
        cassettes, kind: str) -> None:  # noqa: ANN001
    card, _ = cassettes
    data = data_of(400_000, 7)
    run = Running(card, kind, late=LateService(after_ns=200_000_000, late_ns=700_000_000))
    try:
        write_files(run.medium, [data])
        counters = run.unit.modem.counters
        assert counters.underruns >= 1 and counters.stale_bytes > 0
    finally:
        run.close()
    # the stale frames are old data again: the decoder skips them as duplicates
    assert card.recordings[0].fields > 400_000 // 2156 + 1
    reader = BackerMedium(SimDeck(card), mode="nhs")
    assert read_file(reader) == data
    reader.close()


@pytest.mark.parametrize("kind", KINDS)
def test_late_service_while_playing_is_an_overrun(cassettes, kind: str) -> None:  # noqa: ANN001
    _, sim = cassettes
    data = data_of(400_000, 8)  # 300 BOR fields (5 s), then data: the late tick lands in it
    plain = BackerMedium(SimDeck(sim), mode="nhs")
    write_files(plain, [data])
    plain.close()
    run = Running(sim, kind, late=LateService(after_ns=5_500_000_000, late_ns=900_000_000,
                                                    direction="receive"))
    try:
        with pytest.raises(BackerError):
            read_file(run.medium)  # sectors lost in the data: the block is unreadable
        counters = run.unit.modem.counters
        assert counters.overruns >= 1 and counters.lost_bytes > 0
    finally:
        run.close()


def test_loss_of_signal_while_playing(cassettes) -> None:  # noqa: ANN001
    _, sim = cassettes
    plain = BackerMedium(SimDeck(sim), mode="nhs")
    write_files(plain, [data_of(100_000, 9)])
    plain.close()
    run = Running(sim, "isa")
    run.unit.vcr.signal_lost = True
    try:
        with pytest.raises(BackerError) as err:
            read_file(run.medium)
        assert err.value.errno == 5  # EIO, as st reports an unreadable block
        assert run.unit.modem.counters.bytes_received == 0
    finally:
        run.close()

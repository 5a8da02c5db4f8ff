"""The emulated hardware at register level: 8237, ISA card status, ECP port, VCR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backerd.daemon.config import parse_config
from backerd.errors import ConfigError, UsageError
from backerd.format.params import GEOMETRIES
from backerd.hw import dma8237 as d
from backerd.hw.card import Status, start_sequence
from backerd.hw.deck import CardDeck
from backerd.hw.emu.clock import ACCESS_NS
from backerd.hw.emu.i8237 import I8237, PhysMemory
from backerd.hw.emu.isacard import IsaCard
from backerd.hw.emu.machine import EmuMachine
from backerd.hw.emu.setup import emulated_unit
from backerd.hw.emu.vcr import EmuVcr
from backerd.hw.emu.video import FieldTiming
from backerd.hw.service import LateService
from backerd.vcr.base import Deck
from backerd.vcr.control import Motion, VcrControl, WindTarget
from backerd.vcr.sim import Cassette

NTSC_HIGH = GEOMETRIES[("n", "h")]


def dma_with_block(mode: int, count: int) -> tuple[I8237, np.ndarray]:
    memory = PhysMemory()
    ram = memory.add(0xE00000, 65536)
    dma = I8237(memory)
    for port, value in d.program_plan(d.Block(3, mode, 0xE00000, count)):
        dma.outb(port, value)
    return dma, ram


def read_count(dma: I8237) -> int:
    dma.outb(d.CLEAR_FLIP_FLOP, 0)
    low = dma.inb(d.COUNT_PORT[3])
    return d.decode_residue(low, dma.inb(d.COUNT_PORT[3]))


def test_8237_auto_init_wraps_and_flags_terminal_count() -> None:
    dma, ram = dma_with_block(d.ISA_RECEIVE, 1000)
    dma.to_memory(3, np.arange(700, dtype=np.uint8) % 251)
    assert read_count(dma) == 300 and dma.inb(d.STATUS) & 0x0F == 0
    dma.to_memory(3, np.full(400, 7, np.uint8))
    assert read_count(dma) == 900  # 100 bytes into the second lap
    assert dma.inb(d.STATUS) & 0x08  # terminal count of channel 3...
    assert dma.inb(d.STATUS) & 0x08 == 0  # ...cleared by the read
    assert list(ram[:100]) == [7] * 100 and ram[100] == 100 % 251


def test_8237_without_auto_init_masks_at_terminal_count() -> None:
    dma, _ = dma_with_block(d.MODE_DEMAND | d.MODE_READ, 100)
    assert len(dma.from_memory(3, 250)) == 100
    assert dma.channels[3].masked


def test_8237_flip_flop_orders_the_bytes() -> None:
    dma, _ = dma_with_block(d.ISA_TRANSMIT, 0x1234 + 1)
    dma.outb(d.CLEAR_FLIP_FLOP, 0)
    assert (dma.inb(d.COUNT_PORT[3]), dma.inb(d.COUNT_PORT[3])) == (0x34, 0x12)
    # without clearing, the next read is the low byte again (the flip-flop toggled twice)
    assert dma.inb(d.COUNT_PORT[3]) == 0x34
    assert dma.inb(d.PAGE_PORT[3]) == 0xE0


def test_8237_low_byte_is_stale_while_dreq_is_active() -> None:
    dma, _ = dma_with_block(d.ISA_TRANSMIT, 1000)
    dma.from_memory(3, 10)
    dma.channels[3].dreq = True
    stale = read_count(dma)
    dma.channels[3].dreq = False
    assert read_count(dma) == 990 and stale != 990


@pytest.fixture
def cassette(tmp_path: Path) -> Cassette:
    c = Cassette.create(tmp_path / "t.cassette", "ntsc", "E-30", sync=False)
    yield c
    c.close()


def card_machine(cassette: Cassette) -> tuple[EmuMachine, IsaCard, EmuVcr]:
    m = EmuMachine()
    vcr = EmuVcr(cassette, m.lock, m.clock.now_ns)
    card = IsaCard(0x300, 3, m.dma, vcr)
    m.add(card)
    return m, card, vcr


def test_every_access_costs_bus_time(cassette: Cassette) -> None:
    m, _, _ = card_machine(cassette)
    before = m.now_ns()
    for _ in range(10):
        m.inb(0x300)
    assert m.now_ns() - before == 10 * ACCESS_NS


def test_card_status_follows_the_video_lines(cassette: Cassette) -> None:
    m, card, _ = card_machine(cassette)
    assert m.inb(0x300) & (Status.SYNC | Status.FIELD_BUSY) == Status.SYNC | Status.FIELD_BUSY
    first, second = start_sequence(NTSC_HIGH, "transmit")
    m.outb(0x300, first)
    m.delay_ns(576_000)
    m.outb(0x300, second)
    timing = FieldTiming(NTSC_HIGH)
    seen = {"dreq": False, "sync_low": False, "busy": False}
    for _ in range(2000):  # a few lines, sampled every access
        s = m.inb(0x300)
        seen["dreq"] |= bool(s & Status.DREQ)
        seen["sync_low"] |= not s & Status.SYNC
        seen["busy"] |= not s & Status.FIELD_BUSY
    assert all(seen.values())
    assert m.inb(0x300) & Status.PAL == 0  # NTSC written: the inverted bit reads 0
    assert timing.first == 9 and card.misaligned_starts == 0


def test_card_start_outside_the_window_is_misaligned(cassette: Cassette) -> None:
    m, card, _ = card_machine(cassette)
    first, second = start_sequence(NTSC_HIGH, "transmit")
    m.outb(0x300, first)
    m.delay_ns(700_000)
    m.outb(0x300, second)
    assert card.misaligned_starts == 1 and card.shift_lines > 0


def test_receive_with_no_video_shows_no_sync_and_no_dreq(cassette: Cassette) -> None:
    m, _, vcr = card_machine(cassette)
    vcr.press(Motion.PLAY)  # blank tape
    first, second = start_sequence(NTSC_HIGH, "receive")
    m.outb(0x300, first)
    m.delay_ns(576_000)
    m.outb(0x300, second)
    for _ in range(500):
        s = m.inb(0x300)
        assert s & Status.SYNC and s & Status.FIELD_BUSY and not s & Status.DREQ


def test_vcr_control_winds_and_refuses_protected_record(cassette: Cassette) -> None:
    m, _, vcr = card_machine(cassette)
    assert isinstance(vcr, VcrControl)
    vcr.wind_to(WindTarget(position=1234, origin=0, counter="0:00:20"))
    assert vcr.status()["position"] == 1234 and vcr.transport.elapsed > 0
    cassette.write_protected = True
    with pytest.raises(Exception, match="write-protected"):
        vcr.press(Motion.RECORD)


def test_card_deck_is_a_deck(cassette: Cassette) -> None:
    unit = emulated_unit(cassette, "isa")
    assert isinstance(unit.deck, Deck) and isinstance(unit.deck, CardDeck)
    assert unit.deck.length == cassette.slots and unit.deck.fps == 60


def test_late_service_syntax() -> None:
    fault = LateService.parse("receive:5500:900")
    assert (fault.after_ns, fault.late_ns, fault.direction) == (5_500_000_000, 900_000_000,
                                                               "receive")
    with pytest.raises(UsageError):
        LateService.parse("sideways:1:2:3")


def test_config_takes_emulated_decks_and_checks_late_service() -> None:
    env = {"BACKERD_STATE_DIR": "/tmp/s", "BACKERD_RUNTIME_DIR": "/tmp/r"}
    config = parse_config({"unit": [{"deck": "emulated-parport",
                                     "late_service": "transmit:1:2"}]}, environ=env)
    assert config.units[0].deck == "emulated-parport"
    assert config.with_overrides(deck="emulated-isa").units[0].deck == "emulated-isa"
    with pytest.raises(ConfigError, match="unit.0..late_service"):
        parse_config({"unit": [{"late_service": "soon"}]}, environ=env)


def test_waits_time_out_and_abort(cassette: Cassette) -> None:
    import errno
    import threading

    from backerd.errors import TapeError

    unit = emulated_unit(cassette, "isa")  # no service task: the card never gets time
    unit.modem.start(NTSC_HIGH, "receive")
    with pytest.raises(TapeError) as err:
        unit.modem.collect(10**12, timeout=0.2)
    assert err.value.errno == errno.ETIMEDOUT
    threading.Timer(0.1, unit.modem.abort).start()
    with pytest.raises(TapeError) as err:
        unit.modem.collect(10**12, timeout=30)
    assert err.value.errno == errno.EINTR
    unit.modem.stop()


@pytest.mark.parametrize("kind", ["isa", "parport"])
def test_end_of_recording_deadline_is_the_tape_time_left(cassette: Cassette,
                                                          kind: str) -> None:
    """A card nobody services (as when a stopping daemon ends its service task) fails
    the end of a recording with ETIMEDOUT once the tape time of what is left to send,
    plus the slack, has passed: the deadline follows the amount, not a fixed guess."""
    import errno

    from backerd.errors import TapeError

    unit = emulated_unit(cassette, kind)  # no service task: the card never gets time
    frame = NTSC_HIGH.frame_size
    video_rate = frame * NTSC_HIGH.fps / 2  # bytes per second: a frame is two fields
    slack = 0.05
    for frames in (1, 3):
        unit.modem.start(NTSC_HIGH, "transmit", preload=bytes(frames * frame - 100))
        with pytest.raises(TapeError) as err:
            unit.modem.finish(slack)
        # the data's frames, one blank frame of padding, at most a field to stop in
        left = frames * frame + frame + frame // 2
        assert err.value.errno == errno.ETIMEDOUT
        assert (f"timed out after {slack + left / video_rate:.1f} s ({left} bytes at tape "
                "speed)") in err.value.message
        unit.modem.stop()


def test_transmit_deadline_is_the_tape_time_ahead_of_the_queue(cassette: Cassette) -> None:
    """A full hand-over queue that the card does not drain fails with ETIMEDOUT once the
    card could have sent everything ahead of it (the ring's and the queue's bytes)."""
    import errno

    from backerd.errors import TapeError
    from backerd.hw.stream import QUEUE_BYTES

    unit = emulated_unit(cassette, "isa")  # no service task: the card never gets time
    frame = NTSC_HIGH.frame_size
    video_rate = frame * NTSC_HIGH.fps / 2
    slack = 0.05
    unit.modem.start(NTSC_HIGH, "transmit", preload=bytes(2 * frame))
    with pytest.raises(TapeError) as err:
        unit.modem.submit(bytes(QUEUE_BYTES + 1), slack)  # the last byte finds no room
    ahead = 2 * frame + QUEUE_BYTES
    assert err.value.errno == errno.ETIMEDOUT
    assert (f"transmit timed out after {slack + ahead / video_rate:.1f} s ({ahead} bytes "
            "at tape speed)") in err.value.message
    unit.modem.stop()

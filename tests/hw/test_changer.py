"""Cassette changes on card decks: EJECT through the VCR control, the operator prompted
to insert, the recording catalog following the cassette's name (or image)."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest

from backerd.daemon.config import parse_config
from backerd.errors import TapeError, UsageError
from backerd.hw.cardunit import open_card_unit
from backerd.hw.changer import CardChanger
from backerd.hw.emu.vcr import OperatedVcr
from backerd.hw.unit import HardwareUnit, open_emulated_unit, prompter_for
from backerd.vcr.manual import ManualControl
from backerd.vcr.sim import Cassette
from testkit.hwtest import ServiceThread

from .test_card_unit import Operator, Rig, unit_config


def write_archive(unit: HardwareUnit, data: bytes) -> None:
    medium = unit.drive.medium
    medium.write_block(data)
    medium.write_filemarks(1)


def test_a_real_deck_prompts_eject_and_insert_and_follows_the_name(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    unit = open_card_unit(unit_config(tmp_path, {"deck": "isa", "label": "monday-1"},
                                      {"control": "manual", "ack_timeout": 20.0}),
                          host=rig.host())
    assert isinstance(unit, HardwareUnit) and isinstance(unit.operator, ManualControl)
    assert isinstance(unit.changer, CardChanger) and unit.prompter() is unit.operator
    unit.deck.control = OperatedVcr(unit.operator, rig.vcr)
    operator = Operator(unit.operator)
    service = ServiceThread(unit.modem, rig.machine.clock)
    changer = unit.changer
    try:
        write_archive(unit, random.Random(1).randbytes(20_000))
        first = changer.facts()
        assert first.recordings == 1 and first.holds_unexpired
        changer.eject()
        assert any(p.startswith("press EJECT") for p in operator.prompts)
        with pytest.raises(TapeError) as caught:
            unit.drive.open(False, os.O_RDONLY)
        assert caught.value.errno == errno.ENOMEDIUM
        with pytest.raises(UsageError, match="--new"):
            changer.insert(Path("/somewhere/monday-2"))
        reply = changer.insert(Path("/somewhere/monday-2"), new=True, prompt=True)
        assert reply["blank"] and reply["identity"] != first.identity
        assert any("insert cassette monday-2" in p for p in operator.prompts)
        asked = len(operator.prompts)
        with pytest.raises(TapeError) as caught:
            changer.insert(Path("monday-1"))
        assert caught.value.errno == errno.EBUSY
        changer.eject()
        reply = changer.insert(Path("monday-1"))  # the operator says it is in: no prompt
        assert reply["recordings"] == 1 and reply["identity"] == first.identity
        assert not any("insert" in p for p in operator.prompts[asked:])
        changer.eject()
        with pytest.raises(UsageError, match="letters"):
            changer.insert(Path("bad name"), new=True)
    finally:
        unit.drive.medium.close()
        operator.stop()
        service.stop()
        unit.modem.close()
        rig.cassette.close()
    assert (tmp_path / "state" / "monday-2.catalog.json").exists()


def test_an_emulated_deck_swaps_cassette_images(tmp_path: Path) -> None:
    config = parse_config({"unit": [{"deck": "emulated-isa", "mode": "nhs", "length": "5",
                                     "cassette": str(tmp_path / "a.img")}]},
                          environ={"BACKERD_STATE_DIR": str(tmp_path)}).units[0]
    unit = open_emulated_unit(config)
    assert isinstance(unit, HardwareUnit) and isinstance(unit.changer, CardChanger)
    assert unit.prompter() is None  # the emulated VCR presses its own buttons
    service = ServiceThread(unit.modem, unit.clock)
    data = random.Random(2).randbytes(30_000)
    changer = unit.changer
    try:
        write_archive(unit, data)
        changer.eject()
        reply = changer.insert(tmp_path / "b.img", new=True)
        assert reply["blank"]
        write_archive(unit, data[:1000])
        changer.eject()
        reply = changer.insert(tmp_path / "a.img")
        assert reply["recordings"] == 1
        unit.drive.medium.rewind()
        assert unit.drive.medium.read_block(1 << 20) == data
        changer.eject()
        Cassette.create(tmp_path / "p.img", "pal", "5").close()
        with pytest.raises(UsageError, match="PAL"):
            changer.insert(tmp_path / "p.img")
    finally:
        service.stop()
        unit.modem.close()
        unit.changer.slot.vcr.cassette.close()  # type: ignore[attr-defined]
    with Cassette.open(tmp_path / "b.img", readonly=True) as b:
        assert (b.standard, b.length_name, len(b.recordings)) == ("ntsc", "5 min", 1)


def test_lirc_units_get_a_manual_prompter_for_inserts(tmp_path: Path) -> None:
    config = unit_config(tmp_path, {"deck": "isa"}, {"control": "manual"})
    manual = ManualControl(0, config.vcr, notify=lambda text: None)
    assert prompter_for(0, config, manual, lambda text: None) is manual
    assert prompter_for(0, config, None, lambda text: None) is None
    other = prompter_for(0, config, OperatedVcr(manual, None), lambda text: None)  # type: ignore[arg-type]
    assert isinstance(other, ManualControl) and other is not manual

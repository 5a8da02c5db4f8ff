"""Cassette changes in a running sim unit, through the control socket's request table."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from backerd.daemon import config as cfg
from backerd.daemon.node import Unit
from backerd.daemon.service import Service, TransportChoice, open_sim_unit
from backerd.errors import BackerError, TapeError, UsageError
from backerd.vcr.sim import Cassette
from testkit.stwire import MTIOCTOP, mtop


@pytest.fixture
def unit(tmp_path: Path) -> Iterator[Unit]:
    f = tmp_path / "unit.toml"
    f.write_text(f'state_dir = "{tmp_path}"\n[[unit]]\ncassette = "{tmp_path / "a.img"}"\n'
                 'mode = "nhr"\nlength = "3"\n')
    u = open_sim_unit(cfg.load_config(f, environ={}).units[0])
    try:
        yield u
    finally:
        trio.run(u.shutdown)


def ask(unit: Unit, request: str, **body: Any) -> dict[str, Any]:
    service = Service(cfg.parse_config({}, environ={}), [unit], TransportChoice("fuse", ""))

    async def go() -> dict[str, Any]:
        return await service.requests()[request]({"request": request, "unit": 0, **body})

    return trio.run(go)


def write_file(unit: Unit, data: bytes) -> None:
    unit.drive.open(False, os.O_RDWR)
    unit.drive.write(data)
    unit.drive.close()


def test_eject_then_open_is_enomedium_and_insert_new_copies_the_ejected(
        unit: Unit, tmp_path: Path) -> None:
    write_file(unit, b"a" * 10240)
    reply = ask(unit, "eject")
    assert reply["ejected"] == str(tmp_path / "a.img")
    with pytest.raises(TapeError) as caught:
        unit.drive.open(False, os.O_RDONLY)
    assert caught.value.errno == errno.ENOMEDIUM
    assert unit.tools is not None and unit.tools.status()["loaded"] is False
    service = Service(cfg.parse_config({}, environ={}), [unit], TransportChoice("fuse", ""))
    shown = json.loads(json.dumps(service.status(), default=str))["units"][0]
    assert shown["loaded"] is False and shown["cassette"] is None
    assert "backerd_build_info" in service.metrics_text()
    # the ejected image is closed: another process may open it (its lock is released)
    Cassette.open(tmp_path / "a.img").close()

    with pytest.raises(UsageError, match="--new"):
        ask(unit, "insert", image=str(tmp_path / "b.img"))
    reply = ask(unit, "insert", image=str(tmp_path / "b.img"), new=True)
    assert reply["loaded"] and reply["blank"] and reply["label"] is None
    with Cassette.open(tmp_path / "b.img", readonly=True) as made:
        assert (made.standard, made.length_name) == ("ntsc", "3 min")
    status = unit.tools.status()
    assert status["cassette"] == str(tmp_path / "b.img")
    assert 0 < status["capacity_left_bytes"] == status["blank_capacity_bytes"]
    assert not status["nearly_full"]


def test_insert_reads_the_label_and_counts_recordings(unit: Unit, tmp_path: Path) -> None:
    assert unit.tools is not None
    unit.tools.label("TUESDAY", force=False, open_node=None)
    write_file(unit, b"x" * 20480)
    ask(unit, "eject")
    ask(unit, "insert", image=str(tmp_path / "b.img"), new=True)
    ask(unit, "eject")
    reply = ask(unit, "insert", image=str(tmp_path / "a.img"))
    assert reply["label"] == "TUESDAY" and reply["recordings"] == 1
    assert reply["holds_unexpired"] and "'TUESDAY' with 1 recording" in reply["message"]
    # the drive starts a new session at BOT: file 0 is the one written
    unit.drive.open(False, os.O_RDONLY)
    assert unit.drive.read(1 << 20) == b"x" * 20480
    unit.drive.close()


def test_busy_while_a_node_is_open_and_one_cassette_at_a_time(unit: Unit,
                                                             tmp_path: Path) -> None:
    unit.drive.open(False, os.O_RDONLY)
    for request in ("eject", "insert"):
        with pytest.raises(TapeError) as caught:
            ask(unit, request, image=str(tmp_path / "b.img"), new=True)
        assert caught.value.errno == errno.EBUSY
    unit.drive.close()
    assert not (tmp_path / "b.img").exists()
    with pytest.raises(TapeError) as caught:
        ask(unit, "insert", image=str(tmp_path / "b.img"), new=True)
    assert caught.value.errno == errno.EBUSY and "eject it first" in caught.value.message


def test_mt_offline_ejects_and_insert_takes_the_unloaded_cassette_out(
        unit: Unit, tmp_path: Path) -> None:
    unit.drive.open(False, os.O_RDONLY)
    unit.drive.ioctl(MTIOCTOP, mtop("MTOFFL"), 0)
    unit.drive.close()
    assert ask(unit, "volume")["loaded"] is False
    reply = ask(unit, "insert", image=str(tmp_path / "b.img"), new=True)
    assert reply["loaded"] and reply["blank"]
    Cassette.open(tmp_path / "a.img").close()  # released when taken out


def test_a_cassette_of_the_other_standard_is_refused(unit: Unit, tmp_path: Path) -> None:
    ask(unit, "eject")
    with pytest.raises(UsageError, match="PAL"):
        ask(unit, "insert", image=str(tmp_path / "p.img"), new=True, standard="pal")
    assert ask(unit, "volume")["loaded"] is False
    Cassette.open(tmp_path / "p.img").close()  # created, then closed again
    with pytest.raises(BackerError):
        ask(unit, "eject")  # nothing in the deck


def test_volume_facts_follow_the_catalog_and_sequences_are_recorded(
        unit: Unit, tmp_path: Path) -> None:
    write_file(unit, b"y" * 10240)
    first = ask(unit, "volume")
    assert first["holds_unexpired"] and first["recordings"] == 1
    assert unit.tools is not None and unit.tools.store is not None
    unit.tools.store.set_cassette(first["identity"], state="expired")
    assert ask(unit, "volume")["holds_unexpired"] is False
    ask(unit, "eject")
    ask(unit, "insert", image=str(tmp_path / "b.img"), new=True)
    reply = ask(unit, "volume", sequence={"archive": "x", "tar_volume": 2,
                                          "previous": first["identity"]})
    assert reply["sequence"]["volume"] == 2


def test_check_need_counts_cassettes_and_status_warns_when_nearly_full(unit: Unit) -> None:
    assert unit.tools is not None
    status = unit.tools.status()
    left, blank = status["capacity_left_bytes"], status["blank_capacity_bytes"]
    reply = ask(unit, "check", need=left)
    assert reply["volumes"]["cassettes"] == 1
    reply = ask(unit, "check", need=left + 2 * blank + 1)
    assert reply["volumes"]["cassettes"] == 4 and "tar -M" in reply["volumes"]["detail"]
    assert "volumes" not in ask(unit, "check")
    # fill the cassette to within a tenth of its capacity: status warns
    block = bytes(range(256)) * 40
    unit.drive.open(False, os.O_RDWR)
    for _ in range(int(blank * 0.92) // len(block)):
        unit.drive.write(block)
    unit.drive.close()
    status = unit.tools.status()
    assert status["nearly_full"] and status["capacity_left_bytes"] < blank // 10

"""Encryption across cassette changes, and units without a key, on real sim units.

A unit that encrypts seals every cassette it is given (``deck insert``, ``mt offline``
and insert) and reads its recordings back after the cassettes were swapped; a unit
without a key has no sealing layer, yet refuses an encrypted cassette's blocks. What
is on tape is read below the daemon and judged by the documented block format (the
BKE1 magic, the key fingerprint, 52 bytes of overhead), never by the sealing code.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from backerd.daemon import config as cfg
from backerd.daemon.node import Unit
from backerd.daemon.service import Service, TransportChoice, open_sim_unit
from backerd.errors import TapeError
from backerd.medium.labelled import CataloguedMedium, LabelledDeck
from backerd.tape.medium import END_OF_DATA, FILEMARK
from backerd.vcr.sim import Cassette, SimDeck
from testkit.stwire import MTIOCTOP, mtop

pytest.importorskip("cryptography")

from backerd.crypt.keys import UnitKey, save_key_file  # noqa: E402
from backerd.medium.encrypted import EncryptingMedium  # noqa: E402

MODE = "nls"
OVERHEAD = 52  # docs/encryption.md: header 36 + GCM tag 16


@pytest.fixture
def key(tmp_path: Path) -> UnitKey:
    key = UnitKey.generate()
    save_key_file(tmp_path / "unit.key", key)
    return key


def open_unit(tmp_path: Path, image: Path, *, encrypt: bool) -> Unit:
    table: dict[str, Any] = {"mode": MODE, "length": "3", "cassette": str(image)}
    if encrypt:
        table |= {"encrypt": True, "key_file": str(tmp_path / "unit.key")}
    config = cfg.parse_config({"unit": [table]},
                              environ={"BACKERD_STATE_DIR": str(tmp_path)}).units[0]
    return open_sim_unit(config)


@pytest.fixture
def opened() -> Iterator[list[Unit]]:
    """Units a test opens; each is shut down at the end (its cassette released)."""
    units: list[Unit] = []
    try:
        yield units
    finally:
        for unit in units:
            trio.run(unit.shutdown)


def ask(unit: Unit, request: str, **body: Any) -> dict[str, Any]:
    service = Service(cfg.parse_config({}, environ={}), [unit], TransportChoice("fuse", ""))

    async def go() -> dict[str, Any]:
        return await service.requests()[request]({"request": request, "unit": 0, **body})

    return trio.run(go)


def change(unit: Unit, image: Path, **options: Any) -> None:
    ask(unit, "eject")
    ask(unit, "insert", image=str(image), **options)


def label(unit: Unit, text: str) -> None:
    assert unit.tools is not None
    unit.tools.label(text, force=False, open_node=None)


def write_file(unit: Unit, blocks: list[bytes]) -> None:
    unit.drive.open(False, os.O_RDWR)
    for block in blocks:
        unit.drive.write(block)
    unit.drive.close()


def read_first_file(unit: Unit) -> list[bytes]:
    unit.drive.open(True, os.O_RDONLY)
    unit.drive.ioctl(MTIOCTOP, mtop("MTREW"), 0)
    blocks = []
    while block := unit.drive.read(1 << 20):
        blocks.append(block)
    unit.drive.close()
    return blocks


def recorded(image: Path) -> list[list[bytes]]:
    """Every st file's blocks as the cassette holds them, below any sealing layer."""
    with Cassette.open(image) as cassette:
        medium = CataloguedMedium(LabelledDeck(SimDeck(cassette)), mode=MODE,
                                  opens_sealed=True)
        files: list[list[bytes]] = [[]]
        while (item := medium.read_block(1 << 20)) is not END_OF_DATA:
            if item is FILEMARK:
                files.append([])
            else:
                assert isinstance(item, bytes)
                files[-1].append(item)
        medium.close()
    return files[:-1]


def assert_sealed(on_tape: list[bytes], plain: list[bytes], key: UnitKey) -> None:
    assert len(on_tape) == len(plain)
    for sealed, block in zip(on_tape, plain, strict=True):
        assert sealed.startswith(b"BKE1") and sealed[8:16] == key.fingerprint
        assert len(sealed) == len(block) + OVERHEAD
        assert block[:64] not in sealed


def blocks_of(seed: int, count: int = 3) -> list[bytes]:
    return [bytes([seed + i]) * 7 + os.urandom(10240 - 7) for i in range(count)]


def test_every_cassette_an_encrypting_unit_is_given_is_sealed_and_reads_back(
        tmp_path: Path, key: UnitKey, opened: list[Unit]) -> None:
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    unit = open_unit(tmp_path, a, encrypt=True)
    opened.append(unit)
    assert isinstance(unit.drive.medium, EncryptingMedium)
    label(unit, "A")
    first, second = blocks_of(1), blocks_of(11)
    write_file(unit, first)
    change(unit, b, new=True)  # backerd deck eject, then deck insert --new
    label(unit, "B")
    write_file(unit, second)
    # mt offline, then the first cassette again
    unit.drive.open(False, os.O_RDONLY)
    unit.drive.ioctl(MTIOCTOP, mtop("MTOFFL"), 0)
    unit.drive.close()
    ask(unit, "insert", image=str(a))
    assert read_first_file(unit) == first
    change(unit, b)
    assert read_first_file(unit) == second
    assert unit.tools is not None and unit.tools.status()["encryption"]["blocks_failed"] == 0
    trio.run(opened.pop().shutdown)
    [on_a], [on_b] = recorded(a), recorded(b)
    assert_sealed(on_a, first, key)
    assert_sealed(on_b, second, key)


def test_a_cut_short_recording_fails_again_after_the_cassette_came_back(
        tmp_path: Path, key: UnitKey, opened: list[Unit]) -> None:
    # what the sealing layer learnt of one cassette must not outlive it: a recording
    # whose last block lacks its flag fails one read at its end on every load
    a = tmp_path / "a.img"
    unit = open_unit(tmp_path, a, encrypt=True)
    opened.append(unit)
    label(unit, "A")
    plain = blocks_of(1, count=2)
    write_file(unit, plain)
    ask(unit, "eject")
    with Cassette.open(a) as cassette:  # keep the first sealed block alone (cut short)
        medium = CataloguedMedium(LabelledDeck(SimDeck(cassette)), mode=MODE,
                                  opens_sealed=True)
        first = medium.read_block(1 << 20)
        assert isinstance(first, bytes)
        medium.rewind()
        medium.write_block(first)
        medium.write_filemarks(1)
        medium.close()
    for _ in range(2):
        ask(unit, "insert", image=str(a))
        unit.drive.open(True, os.O_RDONLY)
        assert unit.drive.read(1 << 20) == plain[0]
        with pytest.raises(TapeError, match="cut short") as caught:
            unit.drive.read(1 << 20)
        assert caught.value.errno == errno.EIO
        assert unit.drive.read(1 << 20) == b""  # then its filemark
        unit.drive.close()
        ask(unit, "eject")


def test_a_unit_without_a_key_has_no_sealing_layer_and_refuses_encrypted_cassettes(
        tmp_path: Path, key: UnitKey, opened: list[Unit],
        caplog: pytest.LogCaptureFixture) -> None:
    plain_image, sealed_image = tmp_path / "plain.img", tmp_path / "sealed.img"
    sealer = open_unit(tmp_path, sealed_image, encrypt=True)
    label(sealer, "SEALED")
    secret = blocks_of(21)
    write_file(sealer, secret)
    trio.run(sealer.shutdown)

    unit = open_unit(tmp_path, plain_image, encrypt=False)
    opened.append(unit)
    assert isinstance(unit.drive.medium, CataloguedMedium)  # nothing between Drive and it
    assert unit.tools is not None
    assert unit.tools.status()["encryption"] == {
        "configured": False, "key_fingerprint": None, "key_missing": None,
        "blocks_failed": 0}
    label(unit, "PLAIN")
    ours = blocks_of(31)
    write_file(unit, ours)
    assert read_first_file(unit) == ours

    change(unit, sealed_image)
    caplog.set_level(logging.INFO, logger="backerd")
    caplog.clear()
    unit.drive.open(True, os.O_RDWR)
    for attempt in (lambda: unit.drive.read(1 << 20), lambda: unit.drive.write(ours[0]),
                    lambda: unit.drive.read(1 << 20)):
        with pytest.raises(TapeError, match="encrypted .* this unit has no key") as caught:
            attempt()
        assert caught.value.errno == errno.EACCES
    unit.drive.close()
    refusals = [r for r in caplog.records if "has no key" in r.getMessage()]
    assert len(refusals) == 1 and "'SEALED'" in refusals[0].getMessage()

    change(unit, plain_image)  # a plaintext cassette again: served as before
    assert read_first_file(unit) == ours
    trio.run(opened.pop().shutdown)
    [on_sealed] = recorded(sealed_image)  # nothing was written over the sealed blocks
    assert_sealed(on_sealed, secret, key)
    assert recorded(plain_image) == [ours]


def test_a_unit_with_a_key_reads_a_plaintext_cassette_and_will_not_add_to_it(
        tmp_path: Path, key: UnitKey, opened: list[Unit]) -> None:
    image = tmp_path / "plain.img"
    plain_unit = open_unit(tmp_path, image, encrypt=False)
    label(plain_unit, "PLAIN")
    ours = blocks_of(41)
    write_file(plain_unit, ours)
    trio.run(plain_unit.shutdown)
    unit = open_unit(tmp_path, tmp_path / "other.img", encrypt=True)
    opened.append(unit)
    change(unit, image)
    assert read_first_file(unit) == ours  # docs/encryption.md: plaintext, as before
    unit.drive.open(False, os.O_RDWR)
    unit.drive.ioctl(MTIOCTOP, mtop("MTEOM"), 0)
    with pytest.raises(TapeError, match="labelled without encryption") as caught:
        unit.drive.write(ours[0])
    assert caught.value.errno == errno.EACCES
    unit.drive.close()
    trio.run(opened.pop().shutdown)
    assert recorded(image) == [ours]

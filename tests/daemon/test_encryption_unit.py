"""A unit configured to encrypt: its config keys, its key, and the wiring of its medium
over the real Backer medium on a simulated cassette (the codec included)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
import trio

from backerd.daemon import config as cfg
from backerd.errors import ConfigError, TapeError

pytest.importorskip("cryptography")

from backerd.crypt.keys import UnitKey, save_key_file  # noqa: E402
from backerd.medium.encrypted import EncryptingMedium  # noqa: E402
from testkit.stwire import MTIOCTOP, mtop  # noqa: E402


def unit(table: dict[str, object], tmp_path: Path) -> cfg.UnitConfig:
    return cfg.parse_config({"unit": [table]},
                            environ={"BACKERD_STATE_DIR": str(tmp_path)}).units[0]


def test_config_keys(tmp_path: Path) -> None:
    u = unit({"encrypt": True, "key_file": "keys/unit0.key"}, tmp_path)
    assert u.encrypt and u.key_file == tmp_path / "keys/unit0.key"
    assert not unit({}, tmp_path).encrypt
    with pytest.raises(ConfigError, match=r"unit\[0\]\.encrypt: needs key_file"):
        unit({"encrypt": True}, tmp_path)
    with pytest.raises(ConfigError, match=r"key_file: set encrypt = true"):
        unit({"key_file": "/k"}, tmp_path)
    with pytest.raises(ConfigError, match=r"encrypt: supported on deck = \"sim\" only"):
        unit({"encrypt": True, "key_file": "/k", "deck": "emulated-isa"}, tmp_path)
    with pytest.raises(ConfigError, match="expected bool"):
        unit({"encrypt": "yes", "key_file": "/k"}, tmp_path)


def tar_bytes() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("secret-plans.txt")
        data = b"attack at dawn\n" * 500
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_sim_unit_seals_through_the_real_medium_and_catalogues_plaintext(
        tmp_path: Path) -> None:
    from backerd.daemon.service import open_sim_unit

    key_file = tmp_path / "unit.key"
    u = unit({"encrypt": True, "key_file": str(key_file), "mode": "nls",
              "cassette": str(tmp_path / "c.cassette")}, tmp_path)
    opened = open_sim_unit(u)
    drive, tools = opened.drive, opened.tools
    assert isinstance(drive.medium, EncryptingMedium)
    assert tools is not None and tools.status()["encryption"]["key_missing"]
    drive.open(False, os.O_RDWR)
    with pytest.raises(TapeError, match="key is missing"):
        drive.write(b"x" * 10240)
    drive.close()
    key = UnitKey.generate()
    save_key_file(key_file, key)
    tools.label("SEALED", force=False, open_node=None)
    assert tools.deck.label is not None and tools.deck.label.encrypted
    archive = tar_bytes()
    blocks = [archive[i:i + 10240].ljust(10240, b"\0") for i in range(0, len(archive), 10240)]
    drive.open(False, os.O_RDWR)
    for b in blocks:
        drive.write(b)
    drive.close()
    # below the wrapper: sealed blocks; the catalog heard the plaintext (member names)
    assert tools.cassette.recordings[-1].user_bytes == sum(len(b) + 52 for b in blocks)
    assert tools.store is not None
    assert any("secret-plans.txt" in str(hit) for hit in tools.store.find("secret*"))
    drive.open(True, os.O_RDONLY)
    drive.ioctl(MTIOCTOP, mtop("MTREW"), 0)
    assert [drive.read(1 << 20) for _ in blocks] == blocks
    drive.close()
    trio.run(opened.shutdown)

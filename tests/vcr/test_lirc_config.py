"""The ``[unit.vcr]`` table: key maps, reel parameters and their errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from backerd.daemon.config import parse_config
from backerd.errors import ConfigError
from backerd.vcr.control import Motion
from backerd.vcr.reel import ReelParams
from backerd.vcr.settings import DEFAULT_LIRC_SOCKET, VcrSettings

LIRC = """
[[unit]]
number = 0
[unit.vcr]
control = "lirc"
remote = "panasonic_vcr"
socket = "/run/lirc/lircd"
settle = 2.5
[unit.vcr.keys]
play = "KEY_PLAY"
record = ["KEY_RECORD", "KEY_PLAY"]
stop = "KEY_STOP"
fast_forward = "KEY_FASTFORWARD"
rewind = "KEY_REWIND"
index_forward = "KEY_NEXT"
index_back = "KEY_PREVIOUS"
[unit.vcr.reel]
full_wind = 170
spin_up = 1.0

[[unit]]
number = 1
[unit.vcr]
control = "manual"
ack_timeout = 60
"""


def config(text: str):
    return parse_config(tomllib.loads(text), environ={"BACKERD_STATE_DIR": "/tmp/s",
                                                     "BACKERD_RUNTIME_DIR": "/tmp/r"})


def test_lirc_and_manual_units() -> None:
    lirc, manual = config(LIRC).units
    v = lirc.vcr
    assert (v.control, v.socket, v.settle) == ("lirc", Path("/run/lirc/lircd"), 2.5)
    assert v.keymap is not None and v.keymap.remote == "panasonic_vcr"
    assert v.keymap.for_motion(Motion.RECORD) == ("KEY_RECORD", "KEY_PLAY")
    assert v.keymap.for_motion(Motion.EJECT) is None
    assert v.keymap.index_search
    assert v.reel == ReelParams(full_wind=170.0, spin_up=1.0)
    assert (manual.vcr.control, manual.vcr.ack_timeout, manual.vcr.keymap) == ("manual", 60.0,
                                                                                None)


def test_default_is_the_simulated_vcr() -> None:
    (unit,) = config("").units
    assert unit.vcr == VcrSettings()
    assert unit.vcr.control == "sim" and unit.vcr.socket == DEFAULT_LIRC_SOCKET


@pytest.mark.parametrize(("change", "message"), [
    ('control = "lirc"', "unit[0].vcr.control: expected one of"),
    ('remote = "x y"', "unit[0].vcr.remote: the lircd remote name is required"),
    ('socket = "lircd"', "unit[0].vcr.socket: expected an absolute path"),
    ("settle = -1", "unit[0].vcr.settle: expected a number >= 0"),
    ("settle = true", "unit[0].vcr.settle: expected a number >= 0"),
    ("repeats = 601", "unit[0].vcr.repeats: expected 0..600"),
    ("colour = 1", "unit[0].vcr.colour: unknown key"),
])
def test_errors_name_the_key(change: str, message: str) -> None:
    key = change.split(" ")[0]
    lines = [line for line in LIRC.split("[[unit]]\nnumber = 1")[0].splitlines()
             if not line.startswith(f"{key} ")]
    if key == "control":
        change = 'control = "infrared"'
    text = "\n".join(lines).replace("[unit.vcr]\n", f"[unit.vcr]\n{change}\n", 1)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config(text)


@pytest.mark.parametrize(("keys", "message"), [
    ('play = "KEY_PLAY"', "LIRC needs keys for stop, fast_forward, rewind"),
    ('play = "KEY PLAY"\nstop = "S"\nfast_forward = "F"\nrewind = "R"', "keys.play: expected"),
    ('play = []\nstop = "S"\nfast_forward = "F"\nrewind = "R"', "keys.play: expected"),
    ('play = "P"\nstop = "S"\nfast_forward = "F"\nrewind = "R"\njump = "J"',
     "keys.jump: unknown button"),
    ('play = "P"\nstop = "S"\nfast_forward = "F"\nrewind = "R"\nindex_forward = "N"',
     "index search needs both"),
])
def test_key_map_errors(keys: str, message: str) -> None:
    text = f'[[unit]]\n[unit.vcr]\ncontrol = "lirc"\nremote = "vcr"\n[unit.vcr.keys]\n{keys}\n'
    with pytest.raises(ConfigError, match=message):
        config(text)


def test_key_map_only_with_lirc_and_reel_errors() -> None:
    with pytest.raises(ConfigError, match="only used with control"):
        config('[[unit]]\n[unit.vcr]\ncontrol = "manual"\nremote = "vcr"\n')
    with pytest.raises(ConfigError, match="unit.0..vcr.reel: reel full_wind must be positive"):
        config("[[unit]]\n[unit.vcr.reel]\nfull_wind = 0\n")
    with pytest.raises(ConfigError, match="vcr.reel: expected a table with"):
        config("[[unit]]\n[unit.vcr.reel]\nspeed = 3\n")

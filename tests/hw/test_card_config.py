"""The unit keys of real cards (``hw.settings.RULES``) as the configuration checks them."""

from __future__ import annotations

from pathlib import Path

import pytest

from backerd.daemon.config import parse_config
from backerd.errors import ConfigError
from backerd.hw.settings import RULES, CardSettings

ENV = {"BACKERD_STATE_DIR": "/srv/backerd", "BACKERD_RUNTIME_DIR": "/run/b"}


def unit(**table) -> object:  # noqa: ANN003
    return parse_config({"unit": [table]}, environ=ENV).units[0]


def test_defaults_probe_and_use_the_documented_region() -> None:
    u = unit(deck="isa", cassette="tape1.cassette")
    assert u.card == CardSettings(None, None, 0xE00000, 65536, None, "parport0", "tape1",
                                  Path("/srv/backerd"))
    assert u.card.sidecar == Path("/srv/backerd/tape1.catalog.json")
    assert u.vcr.control == "manual"  # nobody else can press a real VCR's buttons


def test_every_key_is_taken() -> None:
    u = unit(deck="isa", port=0x304, dma=1, dma_address=0x200000, dma_size=8192,
             label="holiday")
    assert (u.card.port, u.card.dma, u.card.dma_address, u.card.dma_size) == (
        0x304, 1, 0x200000, 8192)
    p = unit(deck="parport", parport="parport1", udmabuf="udmabuf2",
             vcr={"control": "lirc", "remote": "vcr", "keys": {
                 "play": "P", "stop": "S", "fast_forward": "F", "rewind": "R"}})
    assert (p.card.parport, p.card.udmabuf, p.vcr.control) == ("parport1", "udmabuf2", "lirc")


@pytest.mark.parametrize(("table", "words"), [
    ({"deck": "sim", "port": 0x300}, ['unit[0].port: only used with deck = "isa"']),
    ({"deck": "emulated-isa", "label": "x"}, ["unit[0].label: only used with"]),
    ({"deck": "parport", "dma": 3}, ["unit[0].dma: only used with", "jumper"]),
    ({"deck": "isa", "parport": "parport0"}, ['only used with deck = "parport"']),
    ({"deck": "isa", "port": 0x340}, ["0x340 is not a Backer port", "0x300-0x33C"]),
    ({"deck": "isa", "port": "0x300"}, ["unit[0].port: expected int"]),
    ({"deck": "isa", "dma": 2}, ["channel 2", "1 or 3"]),
    ({"deck": "isa", "dma": True}, ["unit[0].dma: expected int"]),
    ({"deck": "isa", "dma_address": 0xE08000}, ["64 KiB aligned", "16 MiB"]),
    ({"deck": "isa", "dma_address": 0x1000000}, ["below 16 MiB"]),
    ({"deck": "isa", "dma_size": 65537}, ["dma_size: 65537 must be 4096..65536"]),
    ({"deck": "isa", "udmabuf": "udmabuf0", "dma_size": 4096}, ["either udmabuf or"]),
    ({"deck": "isa", "udmabuf": "/dev/udmabuf0"}, ['like "udmabuf0"']),
    ({"deck": "parport", "parport": "lp0"}, ['like "parport0"']),
    ({"deck": "isa", "label": "../etc"}, ["unit[0].label:", "a file name"]),
    ({"deck": "isa", "vcr": {"control": "sim"}}, ['"sim" is the emulator', '"manual"']),
])
def test_bad_card_keys_are_named(table: dict, words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        unit(**table)
    assert all(w in err.value.message for w in words), err.value.message


def test_every_rule_names_its_decks_and_meaning() -> None:
    for key, rule in RULES.items():
        assert rule.decks and set(rule.decks) <= {"isa", "parport"}, key
        assert rule.meaning and rule.kind in (int, str), key
        other = "parport" if rule.decks == ("isa",) else "isa"
        if other not in rule.decks:  # a key of one deck is refused on the other
            value = 3 if rule.kind is int else "x"
            with pytest.raises(ConfigError, match=f"unit\\[0\\].{key}: only used"):
                unit(deck=other, **{key: value})


def test_user_must_exist() -> None:
    assert parse_config({"user": "root"}, environ=ENV).user == "root"
    with pytest.raises(ConfigError, match="user: no user named"):
        parse_config({"user": "no-such-user-here"}, environ=ENV)

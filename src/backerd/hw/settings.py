"""Where a real card is: the unit keys of ``deck = "isa"`` and ``deck = "parport"``.

Example (ISA card; every key is optional, absent port and dma mean: probe)::

    [[unit]]
    deck = "isa"
    port = 0x300                 # the card's port jumper, 0x300-0x33C in steps of 4
    dma = 3                      # the DMA jumper, 1 or 3
    dma_address = 0xE00000       # the region reserved by memmap=64K$0xE00000
    dma_size = 65536             # at most 64 KiB, inside the first 16 MiB
    label = "holiday-1998"       # the cassette's name: <state_dir>/<label>.catalog.json

The parallel unit names its port instead (``parport = "parport0"``; base address and
DMA channel come from parport_pc). Either takes ``udmabuf = "udmabuf0"`` instead of
``dma_address`` to use the u-dma-buf module's buffer. ``RULES`` is the table: which
decks take each key, its type and what it means; ``parse_card`` checks a unit's table
against it and against the limits of the hardware, and raises one ``ConfigError`` per
problem, naming the key (``unit[0].dma: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backerd.errors import ConfigError
from backerd.hw.card import CARD_DMA_CHANNELS, PROBE_BASES
from backerd.hw.dma8237 import DMA_LIMIT, DMA_PAGE

CARD_DECKS = ("isa", "parport")
DEFAULT_DMA_ADDRESS = 0xE00000
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PARPORT = re.compile(r"parport[0-9]{1,2}")


@dataclass(frozen=True)
class Rule:
    kind: type
    decks: tuple[str, ...]
    meaning: str


RULES: dict[str, Rule] = {
    "port": Rule(int, ("isa",), "the card's I/O port (jumper); absent: probe 0x300-0x33C"),
    "dma": Rule(int, ("isa",), "the card's DMA channel (jumper 1 or 3); absent: probe"),
    "dma_address": Rule(int, CARD_DECKS, "physical address of the boot-reserved DMA region"),
    "dma_size": Rule(int, CARD_DECKS, "bytes of the DMA region (at most 65536)"),
    "udmabuf": Rule(str, CARD_DECKS, "a u-dma-buf device instead of the reserved region"),
    "parport": Rule(str, ("parport",), "the parallel port (ppdev name, parport0)"),
    "label": Rule(str, CARD_DECKS, "the cassette's name for its sidecar catalog"),
}


@dataclass(frozen=True)
class CardSettings:
    """Where the unit's hardware is; None means: find it (probe) or use the default."""

    port: int | None = None
    dma: int | None = None
    dma_address: int = DEFAULT_DMA_ADDRESS
    dma_size: int = DMA_PAGE
    udmabuf: str | None = None
    parport: str = "parport0"
    label: str = "backer0"
    state_dir: Path = Path("/var/lib/backerd")

    @property
    def sidecar(self) -> Path:
        """The cassette's recording catalog (``hw.catalog.SidecarCatalog``)."""
        return self.state_dir / f"{self.label}.catalog.json"


def card_keys_misused(table: Mapping[str, Any], deck: str, where: str) -> None:
    """Refuse card keys on a deck that does not use them (``port`` on a sim deck)."""
    for key, rule in RULES.items():
        if key in table and deck not in rule.decks:
            decks = " or ".join(f'deck = "{d}"' for d in rule.decks)
            raise ConfigError(f"{where}{key}: only used with {decks} ({rule.meaning})")


def _value(table: Mapping[str, Any], key: str, where: str) -> Any:
    value = table.get(key)
    kind = RULES[key].kind
    if value is not None and (not isinstance(value, kind)
                              or (kind is int and isinstance(value, bool))):
        raise ConfigError(f"{where}{key}: expected {kind.__name__} ({RULES[key].meaning}), "
                          f"got {value!r}")
    return value


def parse_card(table: Mapping[str, Any], deck: str, where: str, *, state_dir: Path,
               default_label: str) -> CardSettings:
    """The card keys of one ``[[unit]]`` table of a real-card deck."""
    card_keys_misused(table, deck, where)
    port, dma = _value(table, "port", where), _value(table, "dma", where)
    if port is not None and port not in PROBE_BASES:
        raise ConfigError(f"{where}port: {port:#x} is not a Backer port (0x300-0x33C in "
                          "steps of 4, as the card's jumper sets it)")
    if dma is not None and dma not in CARD_DMA_CHANNELS:
        raise ConfigError(f"{where}dma: channel {dma} is not one a Backer card uses (1 or 3)")
    address = _value(table, "dma_address", where)
    size = _value(table, "dma_size", where)
    udmabuf = _value(table, "udmabuf", where)
    if udmabuf is not None and (address is not None or size is not None):
        raise ConfigError(f"{where}udmabuf: use either udmabuf or dma_address/dma_size")
    address = DEFAULT_DMA_ADDRESS if address is None else address
    size = DMA_PAGE if size is None else size
    if address % DMA_PAGE or address <= 0 or address + DMA_PAGE > DMA_LIMIT:
        raise ConfigError(f"{where}dma_address: {address:#x} must be 64 KiB aligned and "
                          "below 16 MiB (ISA DMA's reach), e.g. 0xE00000")
    if not 4096 <= size <= DMA_PAGE:
        raise ConfigError(f"{where}dma_size: {size} must be 4096..65536")
    if udmabuf is not None and not re.fullmatch(r"udmabuf[0-9]{1,2}", udmabuf):
        raise ConfigError(f"{where}udmabuf: expected a device name like \"udmabuf0\", "
                          f"got {udmabuf!r}")
    parport = _value(table, "parport", where) or "parport0"
    if not _PARPORT.fullmatch(parport):
        raise ConfigError(f"{where}parport: expected a port name like \"parport0\", "
                          f"got {parport!r}")
    label = _value(table, "label", where) or default_label
    if not _LABEL.fullmatch(label):
        raise ConfigError(f"{where}label: expected letters, digits, '.', '_' or '-' "
                          f"(a file name), got {label!r}")
    return CardSettings(port, dma, address, size, udmabuf, parport, label, state_dir)

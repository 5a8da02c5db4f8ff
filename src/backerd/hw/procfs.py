"""Parsers for /proc/ioports, /proc/dma and /proc/iomem text (sans-IO, never raise).

The text is passed in as a string, so tests give any machine's tables and the OS
layer only reads the files.
"""

from __future__ import annotations

import re

_RANGE = re.compile(r"^\s*([0-9a-fA-F]+)-([0-9a-fA-F]+)\s*:\s*(.*?)\s*$")
_DMA = re.compile(r"^\s*(\d+)\s*:\s*(.*?)\s*$")


def ranges(text: str) -> list[tuple[int, int, str]]:
    """(first, last, owner) of every line of /proc/ioports or /proc/iomem."""
    out = []
    for line in text.splitlines():
        m = _RANGE.match(line)
        if m:
            out.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3)))
    return out


def port_owner(ioports: str, first: int, last: int) -> str | None:
    """Who claims any port of [first, last], or None."""
    for lo, hi, owner in ranges(ioports):
        if lo <= last and first <= hi and owner not in ("PCI Bus 0000:00", "PCI Bus"):
            return owner
    return None


def dma_channels(text: str) -> dict[int, str]:
    """DMA channel -> the driver using it, from /proc/dma."""
    out = {}
    for line in text.splitlines():
        m = _DMA.match(line)
        if m:
            out[int(m.group(1))] = m.group(2)
    return out


def reserved_region(iomem: str, phys: int, size: int) -> str | None:
    """The /proc/iomem entry covering [phys, phys + size), or None when nothing does."""
    for lo, hi, owner in ranges(iomem):
        if lo <= phys and phys + size - 1 <= hi:
            if lo == 0 and hi == 0:  # unprivileged readers see zeros
                continue
            return owner
    return None

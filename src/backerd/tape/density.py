"""st density codes of the Backer modes.

Theory of operation: the original driver reported its mode in ``mt_dsreg`` as the mode
bits of the device file (backer-format.md 12.1). We use those same bits as the st density
code, so ``mt setdensity 0x19`` selects nhs and ``mt status`` shows the code the original
tools expect. Code 0 means "the unit's default mode".
"""

from __future__ import annotations

NTSC, PAL, LOW, HIGH, RAW, SP, EP = 0x01, 0x02, 0x04, 0x08, 0x00, 0x10, 0x20

DEFAULT_DENSITY = 0

# density code -> mode name (spec 12.1 mode bits)
DENSITY_MODES: dict[int, str] = {}
for _std, _sbit in (("n", NTSC), ("p", PAL)):
    for _den, _dbit in (("l", LOW), ("h", HIGH)):
        for _cod, _cbit in (("s", SP), ("e", EP), ("r", RAW)):
            DENSITY_MODES[_sbit | _dbit | _cbit] = _std + _den + _cod
MODE_DENSITIES: dict[str, int] = {name: code for code, name in DENSITY_MODES.items()}


def is_valid_density(code: int) -> bool:
    """True for 0 (default mode) and the 12 Backer mode codes."""
    return code == DEFAULT_DENSITY or code in DENSITY_MODES


def mode_for_density(code: int) -> str | None:
    """Mode name for a density code; None for the default (0) or an unknown code."""
    return DENSITY_MODES.get(code)

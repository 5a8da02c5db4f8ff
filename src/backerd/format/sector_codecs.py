"""The one place that picks a sector codec: `codec_for(params)`.

3.102 sectors interleave codewords byte by byte in tape order (`sector`); 3.101 and 3.3
build them codeword-major and interleave afterwards (`legacy_sector`). Everything that
encodes or decodes sectors asks here, so a format release is told apart in one table.
"""

from __future__ import annotations

from collections.abc import Callable

from backerd.errors import UsageError
from backerd.format.legacy_sector import LegacySectorCodec
from backerd.format.params import Format, ModeParams
from backerd.format.sector import Sector3102Codec
from backerd.format.sector_types import SectorCodec

CODECS: dict[Format, Callable[[ModeParams], SectorCodec]] = {
    Format.V3102: Sector3102Codec,
    Format.V3101: LegacySectorCodec,
    Format.V33: LegacySectorCodec,
}


def codec_for(params: ModeParams) -> SectorCodec:
    """The sector codec of the mode's format release; a UsageError for raw modes."""
    if params.is_raw:
        raise UsageError(f"mode {params.name} is raw: it has no sectors")
    return CODECS[Format(params.format)](params)

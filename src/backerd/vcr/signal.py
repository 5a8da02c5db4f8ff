"""Is the deck playing a Backer signal? A decision from raw fields by key search.

Theory of operation. Nothing tells the daemon that an operator pressed PLAY, or that an
IR code reached the deck, except the video reaching the card. Blank tape, a deck still
lacing, a VCR tuned to its antenna input and snow on a worn tape all deliver fields too
(or nothing at all); a *Backer* signal is recognised by the key bytes that every field
carries at fixed offsets (``format.sync.FieldSync``, spec 9.1). The signal counts as
present when the key search finds at least ``min_fields`` fields in what was played:
one lucky match in noise is never enough, and a few fields are a fraction of a second.

Raw modes carry no key, so for them any field that is not blank counts: the weakest
test, and the only one there is.
"""

from __future__ import annotations

from collections.abc import Sequence

from backerd.format.params import ModeParams, mode
from backerd.format.sync import FieldSync
from backerd.vcr.base import Field

DEFAULT_MIN_FIELDS = 2


def backer_fields(fields: Sequence[Field], params: ModeParams) -> int:
    """How many Backer fields the key search finds in ``fields`` (None = blank)."""
    raw = [f for f in fields if f]
    if params.is_raw:
        return len(raw)
    sync = FieldSync(params)
    found = len(sync.feed(b"".join(raw)))
    return found + len(sync.finish())


def signal_present(
    fields: Sequence[Field], mode_name: str, fmt: str = "3.102",
    *, min_fields: int = DEFAULT_MIN_FIELDS,
) -> bool:
    """True when ``fields`` hold at least ``min_fields`` fields of a Backer signal."""
    return backer_fields(fields, mode(mode_name, fmt)) >= min_fields

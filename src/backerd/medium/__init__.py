"""The Backer medium: st's blocks and filemarks as Backer recordings on a deck.

``BackerMedium`` (backer.py) implements ``tape.medium.Medium`` over a ``vcr.base.Deck``
with a catalog. Its parts, each a pure core over the deck and catalog protocols (no
tasks, no fds): ``index`` (where each block of a file lies in its recording),
``reader`` (streaming reads through the Player), ``writer`` (recording, and resuming in
the middle of a recording), ``recovery`` (indexing signal left by a crash), and
``failures`` (every failure below as a ``TapeError`` with its errno).
"""

from backerd.medium.backer import BackerMedium
from backerd.medium.writer import WRITE_BATCH

__all__ = ["WRITE_BATCH", "BackerMedium"]

"""SCSI sequential-access movement, written once over two facts about a tape.

Theory of operation. Every medium (the in-memory tape, the Backer medium on a VCR)
answers two questions about its files: how many blocks file ``i`` holds
(``blocks_in``), and whether a filemark follows it (``filemark_after``). The files
before end of data all end in a filemark; the last file may not (a recording that
stopped without one), and files past end of data hold no blocks and no filemark.
From those two facts alone follow the rules st relies on (see ``tape.medium``):

* ``space_blocks(n)`` counts blocks; it crosses a filemark it meets and stops there,
  on the EOT side going forwards and on the BOT side going backwards; it stops at EOD
  and at BOT. The count it returns excludes the filemark and carries the sign of n.
* ``space_filemarks(n)`` ends just after the n-th filemark forwards, just before it
  backwards; when EOD comes first it stops at EOD, when BOT comes first at BOT.
* ``logical_block`` and ``locate`` use SCSI logical block addresses: every block and
  every filemark counts one from BOT.
* ``end_of_data`` is where blank tape begins.

The functions are pure: a position in, a position (and a count) out. The medium moves
its head there; whatever a move costs on its tape is the medium's business.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol


class TapePosition(NamedTuple):
    """Head position: before block ``block`` (0-based) of file ``file`` (0-based)."""

    file: int
    block: int


class FileLayout(Protocol):
    """The two facts about the files of a tape that movement depends on."""

    def blocks_in(self, file: int) -> int:
        """Blocks of file ``file`` (0 for files past end of data)."""
        ...

    def filemark_after(self, file: int) -> bool:
        """Whether a filemark ends file ``file`` (False past end of data)."""
        ...


def space_blocks(tape: FileLayout, at: TapePosition, count: int) -> tuple[TapePosition, int]:
    """Where spacing ``count`` blocks from ``at`` ends, and the signed blocks spaced."""
    file, block = at
    if count >= 0:
        step = min(count, max(tape.blocks_in(file) - block, 0))
        if step < count and tape.filemark_after(file):
            return TapePosition(file + 1, 0), step
        return TapePosition(file, block + step), step
    back = min(-count, max(block, 0))
    if back < -count and file > 0:
        return TapePosition(file - 1, tape.blocks_in(file - 1)), -back
    return TapePosition(file, block - back), -back


def space_filemarks(
    tape: FileLayout, at: TapePosition, count: int
) -> tuple[TapePosition, int]:
    """Where spacing ``count`` filemarks from ``at`` ends, and the signed marks crossed."""
    file, block = at
    done = 0
    if count >= 0:
        while done < count and tape.filemark_after(file):
            file += 1
            done += 1
        if done < count:
            return TapePosition(file, tape.blocks_in(file)), done  # stopped at EOD
        return TapePosition(file, 0 if done else block), done
    while done < -count and file > 0:
        file -= 1
        done += 1
    if done < -count:
        return TapePosition(file, 0), -done  # stopped at BOT
    return TapePosition(file, tape.blocks_in(file) if done else block), -done


def end_of_data(tape: FileLayout) -> TapePosition:
    """Where blank tape begins: after the last block of the first unterminated file."""
    file = 0
    while tape.filemark_after(file):
        file += 1
    return TapePosition(file, tape.blocks_in(file))


def logical_block(tape: FileLayout, at: TapePosition) -> int:
    """The SCSI logical block address of ``at`` (blocks and filemarks count one)."""
    return sum(tape.blocks_in(i) + 1 for i in range(at.file)) + at.block


def locate(tape: FileLayout, address: int) -> TapePosition | None:
    """The position of logical block ``address``; None when it lies beyond end of data."""
    remaining = address
    file = 0
    while True:
        blocks = tape.blocks_in(file)
        if remaining <= blocks:
            return TapePosition(file, remaining)
        if not tape.filemark_after(file):
            return None
        remaining -= blocks + 1
        file += 1

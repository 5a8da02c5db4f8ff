"""tape.spacing against an oracle that walks the tape one token at a time.

The oracle lays the tape out as a flat string: ``B`` for a block, ``F`` for a filemark,
blank tape after the last token. A head position is a gap between tokens (the SCSI
logical block address is that gap's index), and every rule is a walk over tokens as
st-semantics.md states it, with none of the arithmetic of the code under test.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from backerd.tape import spacing
from backerd.tape.spacing import TapePosition


class Layout:
    def __init__(self, blocks: list[int], last_filemark: bool) -> None:
        self.blocks = blocks
        self.marks = [True] * (len(blocks) - 1) + [last_filemark]

    def blocks_in(self, file: int) -> int:
        return self.blocks[file] if file < len(self.blocks) else 0

    def filemark_after(self, file: int) -> bool:
        return file < len(self.marks) and self.marks[file]

    def tokens(self) -> str:
        return "".join("B" * n + ("F" if m else "") for n, m in
                       zip(self.blocks, self.marks, strict=True))


def gap_of(tokens: str, pos: TapePosition) -> int:
    gap, file = 0, 0
    while file < pos.file:
        gap = tokens.index("F", gap) + 1
        file += 1
    return gap + pos.block


def position_of(tokens: str, gap: int) -> TapePosition:
    before = tokens[:gap]
    return TapePosition(before.count("F"), len(before) - (before.rfind("F") + 1))


def walk_blocks(tokens: str, gap: int, count: int) -> tuple[int, int]:
    done = 0
    if count >= 0:
        while done < count and gap < len(tokens):
            gap += 1
            if tokens[gap - 1] == "F":
                break  # crossed the filemark: stop on its EOT side
            done += 1
        return gap, done
    while done < -count and gap > 0:
        gap -= 1
        if tokens[gap] == "F":
            break  # crossed the filemark: stop on its BOT side
        done += 1
    return gap, -done


def walk_filemarks(tokens: str, gap: int, count: int) -> tuple[int, int]:
    done = 0
    if count >= 0:
        while done < count:
            nxt = tokens.find("F", gap)
            if nxt < 0:
                return len(tokens), done  # EOD first
            gap, done = nxt + 1, done + 1
        return gap, done
    while done < -count:
        prev = tokens.rfind("F", 0, gap)
        if prev < 0:
            return 0, -done  # BOT first
        gap, done = prev, done + 1
    return gap, -done


layouts = st.builds(Layout, st.lists(st.integers(0, 4), min_size=1, max_size=6), st.booleans())


@st.composite
def layout_and_gap(draw: st.DrawFn) -> tuple[Layout, int]:
    layout = draw(layouts)
    return layout, draw(st.integers(0, len(layout.tokens())))


@given(layout_and_gap(), st.integers(-12, 12))
def test_space_blocks(case: tuple[Layout, int], count: int) -> None:
    layout, gap = case
    tokens = layout.tokens()
    want_gap, want_done = walk_blocks(tokens, gap, count)
    got, done = spacing.space_blocks(layout, position_of(tokens, gap), count)
    assert (got, done) == (position_of(tokens, want_gap), want_done)


@given(layout_and_gap(), st.integers(-8, 8))
def test_space_filemarks(case: tuple[Layout, int], count: int) -> None:
    layout, gap = case
    tokens = layout.tokens()
    want_gap, want_done = walk_filemarks(tokens, gap, count)
    got, done = spacing.space_filemarks(layout, position_of(tokens, gap), count)
    assert (got, done) == (position_of(tokens, want_gap), want_done)


@given(layout_and_gap(), st.integers(0, 40))
def test_addresses_end_of_data_and_locate(case: tuple[Layout, int], address: int) -> None:
    layout, gap = case
    tokens = layout.tokens()
    pos = position_of(tokens, gap)
    assert gap_of(tokens, pos) == gap
    assert spacing.logical_block(layout, pos) == gap
    assert spacing.end_of_data(layout) == position_of(tokens, len(tokens))
    want = position_of(tokens, address) if address <= len(tokens) else None
    assert spacing.locate(layout, address) == want

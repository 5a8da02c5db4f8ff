"""A sector delivered in part still makes every block touching one of its lost bytes
fail with EIO, and only those: the medium reports loss at block granularity."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np

from backerd.errors import TapeError
from backerd.format.params import mode
from backerd.format.sync import FieldSync
from backerd.medium import BackerMedium
from backerd.tape.drive import Drive
from backerd.vcr.sim import Cassette, SimDeck


def test_one_failed_codeword_fails_only_the_blocks_it_touches(tmp_path: Path) -> None:
    # Blocks of 8 bytes against codeword bytes 10 apart: some blocks of the damaged
    # sector hold none of its lost bytes and must read back (the sector is partial).
    name, block = "nls", 8
    p = mode(name)
    blocks = [bytes([i % 251 + 1]) * block for i in range(300)]
    with Cassette.create(tmp_path / "t.img", "ntsc", "T-30", force=True, sync=False) as c:
        medium = BackerMedium(SimDeck(c), name)
        drive = Drive(medium)
        drive.open(True, os.O_WRONLY)  # rewinds on close
        for b in blocks:
            assert drive.write(b) == block
        drive.close()
        rec = c.recordings[0]
        # Data sector 1 holds user bytes [C, 2C): t + 1 errors in its last codeword
        # (strided over the whole sector, header codewords untouched).
        slot = rec.start + p.n_bor + 1
        field = bytearray(c.read_fields(slot, 1)[0])
        pos = FieldSync(p).payload_pos
        codeword = p.interleave - 5 - 1
        q = codeword + np.arange(p.parity_per_codeword // 2 + 1) * 7 * p.interleave
        for at in (p.leader + pos[q]).tolist():
            field[at] ^= 0x5A
        c.write_fields(slot, [bytes(field)])
        lost = set(range(p.capacity + codeword, 2 * p.capacity, p.interleave))
        bad = {o // block for o in lost}
        drive.open(False, os.O_RDONLY)
        for i, want in enumerate(blocks):
            try:
                got = drive.read(block)
            except TapeError as exc:
                assert exc.errno == errno.EIO and i in bad
                continue
            assert i not in bad and got == want
        assert medium.hard_errors == len(bad)
        sector_blocks = set(range(p.capacity // block, 2 * p.capacity // block + 1))
        assert bad < sector_blocks and len(sector_blocks - bad) > 10
        drive.close()

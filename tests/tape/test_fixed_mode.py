"""Fixed-block mode properties: reads of any size return a file's bytes in order and
stop at its filemark; writes of multiples become blocks of exactly the block size."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as s

from backerd.tape import mtio
from backerd.tape.drive import Drive
from backerd.tape.medium import MemoryMedium


@settings(max_examples=60, deadline=None)
@given(
    bs=s.sampled_from([1, 7, 512]),
    nblocks=s.lists(s.integers(min_value=0, max_value=6), min_size=1, max_size=3),
    sizes=s.lists(s.integers(min_value=1, max_value=3000), min_size=1, max_size=30),
    seed=s.integers(min_value=0, max_value=255),
)
def test_fixed_reads_return_each_file_in_order(bs, nblocks, sizes, seed) -> None:
    files = [
        [bytes((seed + f * 31 + b * 7 + i) % 256 for i in range(bs)) for b in range(n)]
        for f, n in enumerate(nblocks)
    ]
    d = Drive(MemoryMedium.from_files(files))
    d.open(False, os.O_RDONLY)
    d.mtioctop(mtio.MTSETBLK, bs)
    got: list[bytes] = [b""]
    i = 0
    while len(got) <= len(files):
        chunk = d.read(sizes[i % len(sizes)])
        i += 1
        assert len(chunk) <= sizes[(i - 1) % len(sizes)]
        if chunk:
            got[-1] += chunk
        else:
            got.append(b"")
            assert d.status()["file"] == len(got) - 1
            assert d.status()["block"] == 0
    assert got[:-1] == [b"".join(blocks) for blocks in files]
    d.close()


@settings(max_examples=40, deadline=None)
@given(bs=s.sampled_from([2, 512]),
       writes=s.lists(s.integers(min_value=0, max_value=5), min_size=1, max_size=8))
def test_fixed_writes_become_whole_blocks(bs, writes) -> None:
    m = MemoryMedium()
    d = Drive(m)
    d.open(False, os.O_RDWR)
    d.mtioctop(mtio.MTSETBLK, bs)
    stream = b""
    for k, n in enumerate(writes):
        data = bytes([k]) * (n * bs)
        assert d.write(data) == len(data)
        stream += data
    assert d.status()["block"] == len(stream) // bs
    d.close()
    blocks = m.files()[0] if stream else []
    assert all(len(b) == bs for b in blocks)
    assert b"".join(blocks) == stream

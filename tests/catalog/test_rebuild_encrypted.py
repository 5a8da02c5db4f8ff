"""Rebuild core on an encrypted cassette: members with the key, a count without it, and
a wrong key refused before any row is returned.

The sealed recordings are made here with ``crypt.blocks.Sealer`` and the expected
members come from the standard library's ``tarfile``, not from the indexer under test.
"""

from __future__ import annotations

import dataclasses
import io
import os
import tarfile
import uuid
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backerd.catalog.label import Label, encode_label, new_label
from backerd.catalog.rebuild import Rebuilt, ScannedRecording, rebuild_rows, rows_from_scan
from backerd.errors import CryptError
from backerd.vcr.base import Recording

pytest.importorskip("cryptography")

from backerd.crypt.blocks import OVERHEAD, BlockPlace, Sealer, recording_opener  # noqa: E402
from backerd.crypt.keys import UnitKey  # noqa: E402

KEY = UnitKey.from_secret(bytes(range(32)))
OTHER = UnitKey.from_secret(bytes(range(1, 33)))
RECORD = 10240


def encrypted_label() -> Label:
    return dataclasses.replace(new_label("SEALED-1", "NTSC", 1800), encrypted=True)


def tar_of(*names: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for i, name in enumerate(names):
            info = tarfile.TarInfo(name)
            info.size = 3000 * (i + 1)
            tf.addfile(info, io.BytesIO(os.urandom(info.size)))
    return out.getvalue()


def expected_members(data: bytes) -> list[tuple[str, int]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return [(m.name, m.size) for m in tf.getmembers()]


def sealed_blocks(data: bytes, cassette_uuid: str, file: int,
                  record: int = RECORD) -> list[bytes]:
    sealer = Sealer(KEY, os.urandom(16))
    blocks = [data[i:i + record] for i in range(0, len(data), record)]
    where = uuid.UUID(cassette_uuid).bytes
    return [sealer.seal(b, BlockPlace(where, file, i), last=i == len(blocks) - 1)
            for i, b in enumerate(blocks)]


def recording(start: int, blocks: list[bytes], status: str = "ok", *,
              chunk: int = 4000) -> ScannedRecording:
    data = b"".join(blocks)
    runs = tuple((len(b), 1) for b in blocks)
    rec = Recording(start, 50, "nhs", "3.102", user_bytes=len(data), blocks=runs,
                    filemark=True)
    return ScannedRecording(rec, [data[i:i + chunk] for i in range(0, len(data), chunk)],
                            status)


ARCHIVES = [tar_of("etc/hosts", "deep/" * 30 + "notes.txt"), tar_of("one")]


def cassette(label: Label, *, bound_to: str | None = None) -> list[ScannedRecording]:
    """The label, two sealed archives and an empty recording (a filemark alone)."""
    where = bound_to or label.uuid
    return [recording(0, [encode_label(label)]),
            *(recording(50 * (f + 1), sealed_blocks(data, where, f))
              for f, data in enumerate(ARCHIVES)),
            recording(150, [])]


def test_with_the_key_members_and_bytes_are_the_plaintext() -> None:
    label = encrypted_label()
    got = rebuild_rows(cassette(label), 60, unseal=partial(recording_opener, KEY))
    assert got.label == label and got.sealed == 0
    assert [r.file_number for r in got.rows] == [0, 1, 2]
    for row, data in zip(got.rows, ARCHIVES, strict=False):
        assert [(m.path, m.size) for m in row.members] == expected_members(data)
        assert (row.bytes, row.content, row.status) == (len(data), "tar", "ok")
        blocks = -(-len(data) // RECORD)
        assert (row.blocks, row.block_size) == (blocks, RECORD + OVERHEAD)
    assert (got.rows[2].bytes, got.rows[2].content, got.rows[2].status) == (0, "empty", "ok")


def test_without_the_key_recordings_are_found_and_counted() -> None:
    label = encrypted_label()
    items = cassette(label)
    sealed_sizes = [r.recording.user_bytes for r in items[1:]]
    got = rebuild_rows(cassette(label), 60)
    assert got.sealed == 2  # the empty recording holds nothing sealed
    assert [(r.bytes, r.content, r.members) for r in got.rows] == [
        (sealed_sizes[0], "opaque", []), (sealed_sizes[1], "opaque", []), (0, "empty", [])]
    assert rows_from_scan(cassette(label), 60)[1][0].members == []


def test_a_wrong_key_names_the_recording_and_returns_nothing() -> None:
    with pytest.raises(CryptError) as caught:
        rebuild_rows(cassette(encrypted_label()), 60, unseal=partial(recording_opener, OTHER))
    message = caught.value.message
    assert message.startswith("recording 1 (file 0) failed authentication: ")
    assert KEY.fingerprint_hex in message and OTHER.fingerprint_hex in message
    assert "\n" not in message


def test_blocks_bound_to_another_cassette_fail_authentication() -> None:
    items = cassette(encrypted_label(), bound_to=str(uuid.uuid4()))
    with pytest.raises(CryptError, match=r"recording 1 \(file 0\) failed authentication"):
        rebuild_rows(items, 60, unseal=partial(recording_opener, KEY))


def test_a_damaged_block_marks_its_row_and_the_rest_is_indexed() -> None:
    label = encrypted_label()
    first = sealed_blocks(ARCHIVES[0], label.uuid, 0)
    bad = bytearray(first[-1])
    bad[100] ^= 1  # the last record: the members' headers are all before it
    items = [recording(0, [encode_label(label)]), recording(50, [*first[:-1], bytes(bad)]),
             recording(100, sealed_blocks(ARCHIVES[1], label.uuid, 1))]
    rows = rebuild_rows(items, 60, unseal=partial(recording_opener, KEY)).rows
    assert [r.status for r in rows] == ["errors", "ok"]
    assert [(m.path, m.size) for m in rows[0].members] == expected_members(ARCHIVES[0])
    lost = len(bad) - OVERHEAD  # the plaintext of the damaged block, and only that
    assert rows[0].bytes == len(ARCHIVES[0]) - lost and lost > 0


def test_a_recording_lost_on_tape_is_damage_not_a_wrong_key() -> None:
    # no block opens, but the decoder lost bytes of it: the tape, not the key
    label = encrypted_label()
    sealed = sealed_blocks(ARCHIVES[1], label.uuid, 0)
    ruined = [bytes(len(b)) for b in sealed]
    items = [recording(0, [encode_label(label)]), recording(50, ruined, status="errors")]
    [row] = rebuild_rows(items, 60, unseal=partial(recording_opener, KEY)).rows
    assert (row.status, row.members, row.bytes) == ("errors", [], 0)


def test_a_plaintext_cassette_ignores_the_key() -> None:
    label = new_label("PLAIN-1", "NTSC", 1800)
    items = [recording(0, [encode_label(label)]), recording(50, [ARCHIVES[0]])]
    keyed = rebuild_rows(items, 60, unseal=partial(recording_opener, OTHER))
    plain = rebuild_rows([recording(0, [encode_label(label)]), recording(50, [ARCHIVES[0]])],
                         60)
    assert keyed == plain and isinstance(keyed, Rebuilt) and keyed.sealed == 0
    assert [(m.path, m.size) for m in keyed.rows[0].members] == expected_members(ARCHIVES[0])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=4), min_size=1,
                max_size=3),
       st.integers(1, 40).map(lambda n: n * 512), st.integers(1, 30_000))
def test_with_the_key_the_rows_are_those_of_the_same_archives_in_plaintext(
        archives: list[list[int]], record: int, chunk: int) -> None:
    """Any archives, tape-block size and decoder chunking: decrypting changes nothing
    the catalog sees but the sealed block size."""
    datas = [tar_of(*(f"dir{n}/" * (1 + n % 5) + f"f{i}" for i, n in enumerate(names)))
             for names in archives]
    sealed_label, plain_label = encrypted_label(), new_label("PLAIN-2", "NTSC", 1800)

    def scan(label: Label, seal: bool) -> list[ScannedRecording]:
        return [recording(0, [encode_label(label)]), *(
            recording(50 * (f + 1), sealed_blocks(data, label.uuid, f, record) if seal
                      else [data[i:i + record] for i in range(0, len(data), record)],
                      chunk=chunk) for f, data in enumerate(datas))]

    keyed = rebuild_rows(scan(sealed_label, True), 60, unseal=partial(recording_opener, KEY))
    plain = rebuild_rows(scan(plain_label, False), 60)

    def seen(rebuilt: Rebuilt) -> list[tuple]:
        return [(r.file_number, r.bytes, r.content, r.status, r.members, r.blocks)
                for r in rebuilt.rows]

    assert seen(keyed) == seen(plain)
    assert [r.block_size for r in keyed.rows] == [
        min(record, len(d)) + OVERHEAD for d in datas]
    assert [[(m.path, m.size) for m in r.members] for r in keyed.rows] == [
        expected_members(d) for d in datas]


@pytest.mark.parametrize("keyed", [True, False], ids=["key", "no-key"])
def test_plaintext_recorded_on_an_encrypted_cassette_is_indexed_as_it_is(keyed: bool) -> None:
    # another writer (the original driver) ignored the label: no BKE1 header, nothing lost
    label = encrypted_label()
    items = [recording(0, [encode_label(label)]), recording(50, [ARCHIVES[0]]),
             recording(100, sealed_blocks(ARCHIVES[1], label.uuid, 1))]
    got = rebuild_rows(items, 60, unseal=partial(recording_opener, KEY) if keyed else None)
    assert [(m.path, m.size) for m in got.rows[0].members] == expected_members(ARCHIVES[0])
    assert (got.rows[0].status, got.sealed) == ("ok", 0 if keyed else 1)
    assert len(got.rows[1].members) == (len(expected_members(ARCHIVES[1])) if keyed else 0)


def test_a_sealed_recording_whose_first_bytes_were_lost_is_still_opened() -> None:
    # the decoder lost the start (zeros in place): no magic up front, but it is sealed
    label = encrypted_label()
    blocks = sealed_blocks(ARCHIVES[0], label.uuid, 0, record=512)
    items = [recording(0, [encode_label(label)]),
             recording(50, [bytes(len(blocks[0])), *blocks[1:]], status="errors")]
    [row] = rebuild_rows(items, 60, unseal=partial(recording_opener, KEY)).rows
    assert row.status == "errors" and row.bytes == len(ARCHIVES[0]) - 512

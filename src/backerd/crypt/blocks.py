"""Sealing and opening one tape block (pure: bytes in, bytes or a reason out).

Theory of operation. Every block the Drive writes is sealed on its own, so a damaged
block loses only itself and a block can be read without its neighbours::

    offset  size  field
    0       4     magic  b"BKE1"
    4       1     flags  bit 0: the last block of its recording
    5       3     zero
    8       8     key fingerprint (keys.UnitKey.fingerprint)
    16      16    recording salt (random, one per recording)
    32      4     plaintext length n, big-endian
    36      n     AES-256-GCM ciphertext
    36+n    16    GCM tag

* Key: HKDF-SHA256(unit key, salt=recording salt, info=``RECORDING_INFO``), so every
  recording has its own key and a block counter can serve as the nonce.
* Nonce (12 bytes): the block number (u64, big-endian), the flags byte, three zeros.
  The last block of a recording is sealed with the last-block flag, so a recording cut
  short (its last blocks missing) is seen: the block before the filemark is not last.
* Associated data: the 36-byte header, ``AAD_LABEL``, the cassette UUID (16 bytes), the
  recording (file) number (u32) and the block number (u64). A block moved to another
  place, another recording or another cassette, or with any header byte changed, fails
  its tag.

The salt and fingerprint are repeated in every block (the 52 bytes of overhead), so
reading may start anywhere and a wrong key is named as such before any tag is tried.
The length lets ``StreamOpener`` split a recording's byte stream (from the offline
decoder, or a recording whose block boundaries were lost) back into blocks.
``open_block`` never raises on input: anything that is not a good block is a
``Rejected`` with a one-line reason.
"""

from __future__ import annotations

import struct
import uuid as uuidlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from backerd.crypt import primitives
from backerd.crypt.keys import UnitKey

MAGIC = b"BKE1"
HEADER = struct.Struct(">4sB3s8s16sI")
HEADER_SIZE = HEADER.size  # 36
TAG_SIZE = 16
OVERHEAD = HEADER_SIZE + TAG_SIZE
SALT_SIZE = 16
FLAG_LAST = 0x01
MAX_PLAIN = 1 << 24  # st's largest block is far smaller; a larger length is damage
RECORDING_INFO = b"backerd recording key v1"
AAD_LABEL = b"backerd block v1"
_PLACE = struct.Struct(">16sIQ")
_NONCE = struct.Struct(">QB3x")


@dataclass(frozen=True)
class BlockPlace:
    """Where a block belongs: cassette UUID (16 bytes), recording number, block number."""

    cassette: bytes
    file: int
    block: int


@dataclass(frozen=True)
class Opened:
    data: bytes
    last: bool


@dataclass(frozen=True)
class Rejected:
    reason: str
    wrong_key: bool = False  # sealed under another key: no block of it will open
    unsealed: bool = False  # no BKE1 header: recorded without encryption (or damaged)


def nonce(block: int, flags: int) -> bytes:
    return _NONCE.pack(block, flags)


def associated_data(header: bytes, place: BlockPlace) -> bytes:
    return header + AAD_LABEL + _PLACE.pack(place.cassette, place.file, place.block)


def recording_key(key: UnitKey, salt: bytes) -> bytes:
    return primitives.hkdf_sha256(key.secret, salt=salt, info=RECORDING_INFO)


class Sealer:
    """Seals the blocks of one recording (one salt, one derived key)."""

    def __init__(self, key: UnitKey, salt: bytes) -> None:
        if len(salt) != SALT_SIZE:
            raise ValueError("a recording salt is 16 bytes")
        self.key = key
        self.salt = salt
        self._aead = primitives.aead(recording_key(key, salt))

    def seal(self, data: bytes, place: BlockPlace, *, last: bool) -> bytes:
        flags = FLAG_LAST if last else 0
        header = HEADER.pack(MAGIC, flags, bytes(3), self.key.fingerprint, self.salt, len(data))
        sealed = self._aead.encrypt(nonce(place.block, flags), data,
                                    associated_data(header, place))
        return header + sealed


def parse_header(sealed: bytes) -> tuple[int, bytes, bytes, int] | Rejected:
    """(flags, fingerprint, salt, plaintext length) of a sealed block, or why not."""
    if len(sealed) < HEADER_SIZE or not sealed.startswith(MAGIC):
        return Rejected("not an encrypted block (no BKE1 header)", unsealed=True)
    _, flags, zero, fingerprint, salt, length = HEADER.unpack_from(sealed)
    if flags & ~FLAG_LAST or zero != bytes(3) or length > MAX_PLAIN:
        return Rejected("damaged block header")
    return flags, fingerprint, salt, length


class Opener:
    """Opens sealed blocks under one unit key, keeping the recording keys it derived."""

    def __init__(self, key: UnitKey, *, cache: int = 16) -> None:
        self.key = key
        self._cache: dict[bytes, object] = {}
        self._limit = cache
        self._invalid_tag = primitives.invalid_tag()

    def _aead(self, salt: bytes) -> object:
        aead = self._cache.get(salt)
        if aead is None:
            if len(self._cache) >= self._limit:
                self._cache.pop(next(iter(self._cache)))
            aead = self._cache[salt] = primitives.aead(recording_key(self.key, salt))
        return aead

    def open(self, sealed: bytes, place: BlockPlace) -> Opened | Rejected:
        head = parse_header(sealed)
        if isinstance(head, Rejected):
            return head
        flags, fingerprint, salt, length = head
        if fingerprint != self.key.fingerprint:
            return Rejected(f"sealed with key {fingerprint.hex()}, not with this key "
                            f"({self.key.fingerprint_hex})", wrong_key=True)
        if len(sealed) != OVERHEAD + length:
            return Rejected(f"block is {len(sealed)} bytes, its header says "
                            f"{OVERHEAD + length}")
        aad = associated_data(sealed[:HEADER_SIZE], place)
        try:
            data = self._aead(salt).decrypt(  # type: ignore[attr-defined]
                nonce(place.block, flags), sealed[HEADER_SIZE:], aad)
        except self._invalid_tag:
            return Rejected(f"block {place.block} of file {place.file} failed its "
                            "authentication check (damaged, or not from this place)")
        return Opened(data, bool(flags & FLAG_LAST))


class StreamOpener:
    """A recording's sealed blocks as one byte stream in, plaintext out (incremental).

    ``feed`` returns the plaintext of every whole block received; ``problems`` collects
    one line per block that did not open. After a damaged header the stream is searched
    for the next ``MAGIC`` and the block numbers just after the lost one are tried
    (``resync_window``). ``finish`` notes a stream whose last block lacks the flag.
    ``plaintext`` does all of it for a whole recording; ``opened`` counts the blocks
    that opened and ``wrong_key`` keeps the rejection of a block sealed under another key.
    """

    def __init__(self, key: UnitKey, cassette: bytes, file: int, *,
                 resync_window: int = 64) -> None:
        self.opener = Opener(key)
        self.cassette = cassette
        self.file = file
        self.block = 0
        self.resync_window = resync_window
        self.problems: list[str] = []
        self.last_seen = False
        self.opened = 0
        self.wrong_key: Rejected | None = None
        self._buf = bytearray()
        self._lost_sync = False

    def _place(self, block: int) -> BlockPlace:
        return BlockPlace(self.cassette, self.file, block)

    def feed(self, data: bytes, emit: Callable[[bytes], None]) -> None:
        self._buf += data
        while True:
            if len(self._buf) < HEADER_SIZE:
                return
            head = parse_header(bytes(self._buf[:HEADER_SIZE]))
            if isinstance(head, Rejected):
                skip = self._buf.find(MAGIC, 1)
                if not self._lost_sync:
                    self.problems.append(f"block {self.block}: {head.reason}; searching on")
                    self._lost_sync = True
                if skip < 0:  # keep a possible partial magic at the end
                    del self._buf[: max(len(self._buf) - len(MAGIC) + 1, 0)]
                    return
                del self._buf[:skip]
                continue
            size = OVERHEAD + head[3]
            if len(self._buf) < size:
                return
            sealed = bytes(self._buf[:size])
            del self._buf[:size]
            self._open(sealed, emit)

    def _open(self, sealed: bytes, emit: Callable[[bytes], None]) -> None:
        tries = range(self.block, self.block + (self.resync_window if self._lost_sync else 1))
        first: Rejected | None = None
        for block in tries:
            out = self.opener.open(sealed, self._place(block))
            if isinstance(out, Opened):
                if self.last_seen:
                    self.problems.append(f"block {block}: data after the last block")
                self.block, self.last_seen, self._lost_sync = block + 1, out.last, False
                self.opened += 1
                emit(out.data)
                return
            first = first or out
            if out.wrong_key:
                self.wrong_key = self.wrong_key or out
                break
        assert first is not None
        self.problems.append(first.reason)
        if not self._lost_sync:
            self.block += 1  # the frame was whole: only this block is lost

    def finish(self) -> None:
        if self._buf:
            self.problems.append(f"{len(self._buf)} bytes after the last whole block")
            self._buf.clear()
        if not self.last_seen:
            self.problems.append("the recording ends without its last block (truncated)")

    def plaintext(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The plaintext of a whole recording's sealed bytes, as its blocks open.

        ``problems`` is complete once the iterator is exhausted. A block sealed under
        another key ends it early: no other block of the recording would open either.
        """
        opened: list[bytes] = []
        for chunk in chunks:
            self.feed(chunk, opened.append)
            yield from opened
            opened.clear()
            if self.wrong_key is not None:
                return
        self.finish()

    def summary(self) -> str | None:
        """The first problem as one line (and how many more), None when there was none.
        Blocks under another key are named once: no block of theirs would open."""
        if self.wrong_key is not None and self.opened == 0:
            return self.wrong_key.reason
        if not self.problems:
            return None
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"{self.problems[0]}{more}"


def recording_opener(key: UnitKey, cassette_uuid: str, file: int) -> StreamOpener:
    """The opener of recording ``file`` (st's numbering) of the cassette whose label
    carries ``cassette_uuid``: the one way offline readers (``cassette dump``,
    ``decode``, ``catalog rebuild``) bind blocks to their place. ValueError: not a UUID."""
    return StreamOpener(key, uuidlib.UUID(cassette_uuid).bytes, file)

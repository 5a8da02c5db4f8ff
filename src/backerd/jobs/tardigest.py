"""SHA-256 of every member of a tar stream, and the directory state it records (sans-IO).

Theory of operation: verify must compare content, not a listing. A backup pipes GNU
tar's output through a ``TarDigester`` on its way to the tape, so the digests are of
exactly the bytes tar read from disk and put in the archive; verify feeds the recording
read back from tape through a second digester and compares the two member lists (path,
type, size, SHA-256 of the data). The stream walk is the tar block structure: a header
block (valid checksum) describes one member, its data follows padded to 512 bytes,
zero blocks end the archive. GNU ``L``/``K`` and pax ``x``/``g`` metadata members
supply long names for the next member; a GNU old-style sparse header's extension blocks
are skipped. The data of every member is hashed as archived, so a member tar stored
sparse or a GNU dumpdir (``D``: the names a directory held) is compared byte for byte
too. ``feed`` takes any chunking and never raises: a stream that stops being tar yields
one ``Broken`` event.

For skip-when-unchanged, each directory member of a ``--listed-incremental`` archive
carries its mode, owner, mtime and dumpdir; ``tree_digest`` hashes them with the
dumpdir's dumped/not-dumped flags folded together, so two runs over an unchanged tree
give the same digest whichever level they ran at.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from backerd.catalog.tarindex import TYPES, header_ok, parse_pax
from backerd.jobs.records import MemberDigest

BLOCK = 512
META_LIMIT = 1 << 20


@dataclass(frozen=True)
class DirState:
    """A directory member's metadata and dumpdir (``None`` outside incremental archives)."""

    path: str
    mode: int
    uid: int
    gid: int
    mtime: int
    dumpdir: tuple[str, ...] | None


@dataclass(frozen=True)
class End:
    offset: int


@dataclass(frozen=True)
class Broken:
    offset: int
    reason: str


DigestEvent = MemberDigest | DirState | End | Broken


def _octal(field: bytes) -> int:
    if field and field[0] & 0x80:
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        return -1


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def parse_dumpdir(data: bytes) -> tuple[str, ...]:
    """GNU dumpdir entries (``Yname``, ``Nname``, ``Dname``...), Y and N folded to ``F``."""
    out = []
    for entry in data.split(b"\0"):
        if not entry:
            continue
        flag, name = chr(entry[0]), entry[1:].decode("utf-8", "surrogateescape")
        out.append(("F" if flag in "YN" else flag) + name)
    return tuple(out)


class TarDigester:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._offset = 0  # stream offset of _buf[0]
        self._ended = False
        self._long: dict[bytes, str] = {}  # pending L/K names, pax path/linkpath
        self._global: dict[str, str] = {}
        # the member whose data is passing
        self._member: tuple[str, bytes, int, bytes] | None = None  # path, flag, size, header
        self._left = 0
        self._pad = 0
        self._hash = hashlib.sha256()
        self._meta: bytearray | None = None  # metadata member being collected
        self._dumpdir: bytearray | None = None  # a GNU dumpdir being hashed and kept
        self._extension_blocks = False

    @property
    def ended(self) -> bool:
        return self._ended

    def feed(self, data: bytes) -> list[DigestEvent]:
        if self._ended:
            return []
        self._buf += data
        events: list[DigestEvent] = []
        while not self._ended:
            if self._left:
                take = min(self._left, len(self._buf))
                if not take:
                    break
                chunk = bytes(self._buf[:take])
                if self._meta is not None:
                    if len(self._meta) < META_LIMIT:
                        self._meta += chunk[: META_LIMIT - len(self._meta)]
                else:
                    self._hash.update(chunk)
                    if self._dumpdir is not None:
                        self._dumpdir += chunk
                del self._buf[:take]
                self._offset += take
                self._left -= take
                if self._left:
                    break
            if self._member is not None and not self._left:
                events += self._finish_member()
            if self._pad:
                take = min(self._pad, len(self._buf))
                del self._buf[:take]
                self._offset += take
                self._pad -= take
                if self._pad:
                    break
            if len(self._buf) < BLOCK:
                break
            block = bytes(self._buf[:BLOCK])
            del self._buf[:BLOCK]
            self._offset += BLOCK
            if self._extension_blocks:
                self._extension_blocks = block[504] != 0
                continue
            events += self._header(block)
        return events

    def finish(self) -> list[DigestEvent]:
        """The stream ended: an archive without its end is broken."""
        if self._ended:
            return []
        self._ended = True
        return [Broken(self._offset, "the archive ends without its end-of-archive blocks")]

    def _header(self, block: bytes) -> list[DigestEvent]:
        start = self._offset - BLOCK
        if block == bytes(BLOCK):
            self._ended = True
            return [End(start)]
        if not header_ok(block):
            self._ended = True
            return [Broken(start, "not a tar header (bad checksum)")]
        flag = block[156:157]
        size = _octal(block[124:136])
        if size < 0:
            self._ended = True
            return [Broken(start, "a tar header with an unreadable size")]
        prefix = _text(block[345:500]) if block[257:262] == b"ustar" and block[262] == 0 else ""
        name = _text(block[0:100])
        path = f"{prefix}/{name}" if prefix else name
        if flag in (b"L", b"K", b"x", b"g"):
            self._meta = bytearray()
        else:
            path = self._long.pop(b"L", None) or self._global.get("path", path)
            self._long.pop(b"K", None)
            if flag == b"S" and block[482]:
                self._extension_blocks = True  # old GNU sparse: more map blocks follow
            self._hash = hashlib.sha256()
            self._dumpdir = bytearray() if flag == b"D" else None
        self._member = (path, flag, size, block)
        self._left = size
        self._pad = (-size) % BLOCK
        return [] if size else self._finish_member()

    def _finish_member(self) -> list[DigestEvent]:
        assert self._member is not None
        path, flag, size, block = self._member
        self._member = None
        if self._meta is not None:
            data = bytes(self._meta)
            self._meta = None
            if flag in (b"L", b"K"):
                self._long[flag] = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            else:
                records = parse_pax(data)
                target = self._global if flag == b"g" else {}
                target.update(records)
                if flag == b"x" and "path" in records:
                    self._long[b"L"] = records["path"]
            return []
        kind = TYPES.get(flag, "other")
        events: list[DigestEvent] = [MemberDigest(path, kind, size, self._hash.hexdigest())]
        if kind == "dir":
            dumpdir = None if self._dumpdir is None else parse_dumpdir(bytes(self._dumpdir))
            self._dumpdir = None
            events.insert(0, DirState(path, _octal(block[100:108]), _octal(block[108:116]),
                                      _octal(block[116:124]), _octal(block[136:148]),
                                      dumpdir))
        return events


def tree_digest(dirs: Iterable[DirState]) -> str:
    """One hash of the directory states an archive recorded (order-independent)."""
    h = hashlib.sha256()
    for d in sorted(dirs, key=lambda d: d.path):
        entries = "\0".join(sorted(d.dumpdir)) if d.dumpdir is not None else "-"
        h.update(f"{d.path}\n{d.mode:o} {d.uid} {d.gid} {d.mtime}\n{entries}\n\n"
                 .encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def digest_stream(chunks: Iterable[bytes]) -> list[DigestEvent]:
    """Every event of a whole stream (tests and small archives)."""
    digester = TarDigester()
    events: list[DigestEvent] = []
    for chunk in chunks:
        events += digester.feed(chunk)
    return events + digester.finish()

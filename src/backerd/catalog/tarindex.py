"""Index the members of a tar archive from a tape file's byte stream (sans-IO).

Theory of operation: tar is a sequence of 512-byte blocks. A header block (checksum
over its own bytes with the checksum field read as spaces) describes one member and is
followed by the member's data padded to whole blocks; two zero blocks end the archive.
Metadata members come before the member they describe: GNU ``L``/``K`` carry a long
path/link name, pax ``x`` carries records for the next member and ``g`` records for all
later ones. The indexer keeps only header blocks and metadata contents (bounded by
``META_LIMIT``); member data is skipped by counting, so any chunking of the stream costs
the same. A stream whose first block is not a tar header is reported as opaque; a broken
header later in the stream ends indexing with one event. ``feed`` never raises.
"""

from __future__ import annotations

from dataclasses import dataclass

BLOCK = 512
META_LIMIT = 1 << 20  # largest L/K/x/g content kept; beyond it the override is dropped

# typeflag -> member type; metadata flags are handled separately
TYPES: dict[bytes, str] = {
    b"0": "file", b"\0": "file", b"7": "file", b"S": "file",
    b"1": "hardlink", b"2": "symlink", b"3": "char", b"4": "block",
    b"5": "dir", b"D": "dir", b"6": "fifo",
}
META_FLAGS = (b"L", b"K", b"x", b"g", b"X")
SKIPPED_FLAGS = (b"V", b"M", b"N")  # volume label, continuation, old long names: not members


@dataclass(frozen=True)
class Member:
    """One archive member: where its header starts in the tape file, and what it is."""

    path: str
    size: int
    mtime: float
    type: str
    offset: int
    linkname: str = ""


@dataclass(frozen=True)
class Opaque:
    """The stream does not start with a tar header."""

    reason: str


@dataclass(frozen=True)
class Broken:
    """The archive stopped being tar at ``offset`` (bad header or truncated)."""

    offset: int
    reason: str


@dataclass(frozen=True)
class End:
    """The end-of-archive zero block at ``offset``."""

    offset: int


TarEvent = Member | Opaque | Broken | End


def _number(field: bytes) -> int | None:
    """An octal field (NUL/space padded) or GNU base-256 (high bit set); None if invalid."""
    if field and field[0] & 0x80:
        value = int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        if field[0] & 0x40:  # negative, two's complement over the field width
            value -= 1 << (8 * len(field) - 1)
        return value
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        return None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def header_ok(block: bytes) -> bool:
    """True when ``block`` is a tar header with a valid checksum (signed or unsigned)."""
    stored = _number(block[148:156])
    if stored is None:
        return False
    spaced = block[:148] + b" " * 8 + block[156:]
    unsigned = sum(spaced)
    signed = sum(b - 256 if b > 127 else b for b in spaced)
    return stored in (unsigned, signed)


def parse_pax(data: bytes) -> dict[str, str]:
    """Pax extended header records ``"%d %s=%s\\n"``; malformed tails are ignored."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            break
        if length <= space - pos or pos + length > len(data):
            break
        record = data[space + 1 : pos + length]
        if record.endswith(b"\n"):
            record = record[:-1]
        key, eq, value = record.partition(b"=")
        if eq:
            records[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


class TarIndexer:
    """Feed a tape file's bytes in any chunks; collect member events."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._offset = 0  # stream offset of _buf[0]
        self._skip = 0  # data bytes (with padding) still to pass over
        self._meta: tuple[bytes, int] | None = None  # (flag, content size) being collected
        self._long: dict[bytes, bytes] = {}  # L/K contents for the next member
        self._pax: dict[str, str] = {}  # x records for the next member
        self._global: dict[str, str] = {}  # g records for all later members
        self.kind = "empty"  # "empty" until the first block; then "tar" or "opaque"
        self.done = False
        self.members = 0

    def feed(self, data: bytes) -> list[TarEvent]:
        if self.done:
            self._offset += len(data)
            return []
        events: list[TarEvent] = []
        view = memoryview(data)
        if self._skip and not self._buf:
            step = min(self._skip, len(view))
            self._skip -= step
            self._offset += step
            view = view[step:]
        self._buf += view
        self._run(events)
        return events

    def finish(self) -> list[TarEvent]:
        """The tape file ended: report a truncated archive (never an error otherwise)."""
        if self.done or self.kind == "empty":
            self.done = True
            return []
        self.done = True
        if self._skip or self._buf or self._meta:
            return [Broken(self._offset, "archive truncated inside a member")]
        return [Broken(self._offset, "archive has no end-of-archive block")]

    def _run(self, events: list[TarEvent]) -> None:
        while not self.done:
            if self._skip:
                step = min(self._skip, len(self._buf))
                if not step:
                    return
                del self._buf[:step]
                self._skip -= step
                self._offset += step
                continue
            if self._meta is not None:
                flag, size = self._meta
                padded = -(-size // BLOCK) * BLOCK
                self._meta = None
                self._skip = padded
                if size > META_LIMIT:  # not kept: the member keeps its header's name
                    continue
                if len(self._buf) < size:
                    self._meta = (flag, size)
                    self._skip = 0
                    return
                self._apply_meta(flag, bytes(self._buf[:size]))
                continue
            if len(self._buf) < BLOCK:
                return
            block = bytes(self._buf[:BLOCK])
            del self._buf[:BLOCK]
            offset = self._offset
            self._offset += BLOCK
            self._header(block, offset, events)

    def _stop(self, event: TarEvent, events: list[TarEvent]) -> None:
        events.append(event)
        self.done = True
        self._offset += len(self._buf)
        self._buf.clear()

    def _header(self, block: bytes, offset: int, events: list[TarEvent]) -> None:
        if not any(block):
            if self.kind == "empty":
                self.kind = "tar"
            self._stop(End(offset), events)
            return
        if not header_ok(block):
            if self.kind == "empty":
                self.kind = "opaque"
                self._stop(Opaque("the first block is not a tar header"), events)
            else:
                self._stop(Broken(offset, "bad tar header checksum"), events)
            return
        self.kind = "tar"
        flag = block[156:157]
        size = _number(block[124:136])
        if size is None or size < 0:
            self._stop(Broken(offset, "bad size field in a tar header"), events)
            return
        if flag in META_FLAGS:
            self._meta = (flag, size)
            return
        pax = {**self._global, **self._pax}
        long_name, long_link = self._long.get(b"L"), self._long.get(b"K")
        self._pax, self._long = {}, {}
        if "size" in pax:
            size = _decimal(pax["size"], size)
        self._skip = -(-size // BLOCK) * BLOCK
        if flag in SKIPPED_FLAGS:
            return
        path = pax.get("path") or (_text(long_name) if long_name is not None else None)
        if path is None:
            name = _text(block[0:100])
            prefix = _text(block[345:500]) if block[257:263] == b"ustar\0" else ""
            path = f"{prefix}/{name}" if prefix else name
        link = pax.get("linkpath") or (
            _text(long_link) if long_link is not None else _text(block[157:257]))
        mtime: float = _number(block[136:148]) or 0
        if "mtime" in pax:
            mtime = _decimal_float(pax["mtime"], mtime)
        real = pax.get("GNU.sparse.realsize") or pax.get("GNU.sparse.size")
        shown = _decimal(real, size) if real else size
        kind = TYPES.get(flag, "other")
        self.members += 1
        events.append(Member(path, shown, mtime, kind, offset, link))

    def _apply_meta(self, flag: bytes, content: bytes) -> None:
        if flag in (b"L", b"K"):
            self._long[flag] = content
        elif flag in (b"x", b"X"):
            self._pax.update(parse_pax(content))
        else:
            self._global.update(parse_pax(content))


def _decimal(text: str, default: int) -> int:
    try:
        value = int(text)
    except ValueError:
        return default
    return value if value >= 0 else default


def _decimal_float(text: str, default: float) -> float:
    try:
        return float(text)
    except ValueError:
        return default


def index_bytes(data: bytes) -> tuple[str, list[Member], list[TarEvent]]:
    """Index a whole tape file: (kind, members, every event)."""
    indexer = TarIndexer()
    events = indexer.feed(data) + indexer.finish()
    return indexer.kind, [e for e in events if isinstance(e, Member)], events

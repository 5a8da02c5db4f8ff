"""The cassette image file format: layout, superblock, index copies, and their validation.

Theory of operation. An image is one sparse file:

* a superblock (``SUPERBLOCK_SIZE``, written once): ``MAGIC``, then one line of JSON
  with the standard, the length and the slot geometry;
* two index copies (``INDEX_SIZE`` each), written alternately: a header (magic,
  generation, payload length, CRC-32) and the zlib-compressed JSON index (committed
  recordings, the journal entry of the open recording, write-protect tab, wear);
* the tape: ``slots`` slots of ``SLOT_SIZE`` bytes from ``DATA_OFFSET``.

Everything here is pure: bytes and parsed JSON in, typed values or a ``Damage`` out.
Nothing read from an image is trusted: every field is checked for its JSON type and its
range (against the tape length and the file size) by the rule tables below, so a
damaged or forged image gives a one-line ``Damage`` and never an exception, a huge
allocation or a loop bounded only by a number from the file. The parsers never raise
on input; the I/O edge (``vcr.sim.Cassette``) turns a ``Damage`` into an error.

What is wrong with an image that still opens (recordings lying past the end of a
truncated file) is not ``Damage`` but a finding: ``recordings_past_end``.
"""

from __future__ import annotations

import json
import stat
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from backerd.errors import UsageError
from backerd.format.params import FORMATS, MODES
from backerd.vcr.base import CASSETTE_LENGTHS, STANDARDS, OpenRecording, Recording

MAGIC = b"BACKERD-CASSETTE 1\n"
INDEX_MAGIC = b"BKIX"
SUPERBLOCK_SIZE = 4096
INDEX_SIZE = 4 << 20
DATA_OFFSET = SUPERBLOCK_SIZE + 2 * INDEX_SIZE
SLOT_SIZE = 3072
SLOT_HEADER = struct.Struct("<HH")
MAX_FIELD = SLOT_SIZE - SLOT_HEADER.size
SLOT_PARTS_PER_WRITE = 3 * 341  # whole slots' parts in one gathered write (IOV_MAX: 1024)
INDEX_HEADER = struct.Struct("<4sQII")  # magic, generation, payload length, crc32
MAX_INDEX_PAYLOAD = INDEX_SIZE - INDEX_HEADER.size
# The JSON an index may inflate to: far above any real index (a few MB for ten thousand
# recordings with varied block sizes), far below what would exhaust memory.
MAX_INDEX_JSON = 16 * INDEX_SIZE

# The longest tape: an E-300 (5 hours at SP) run at LP. Cassette lengths are minutes
# of field time; nothing longer exists, so a longer image is a typo (or damage).
MAX_MINUTES = 600
MAX_SLOTS = MAX_MINUTES * 60 * max(STANDARDS.values())
RECORDING_FORMATS = (*FORMATS, "auto")  # "auto": a foreign stream, release unknown
ORIGINS = ("medium", "record", "recovered")
WEAR_KEYS = ("passes", "fields")
_MAX_COUNTER = 1 << 62  # wear counters: any real count, never a bignum
_MAX_SHOWN = 40  # characters of a bad value quoted in a message


def parse_length(text: str) -> tuple[str, int]:
    """``"E-180"`` -> ("E-180", 180); ``"95"`` or ``"95min"`` -> ("95 min", 95)."""
    name = text.strip().upper()
    if name in CASSETTE_LENGTHS:
        return name, CASSETTE_LENGTHS[name]
    digits = name.removesuffix("MIN").strip()
    if digits.isdigit() and len(digits) <= 6:
        minutes = int(digits)
        if 0 < minutes <= MAX_MINUTES:
            return f"{minutes} min", minutes
        raise UsageError(
            f"cassette length {text!r} is out of range: 1..{MAX_MINUTES} minutes "
            f"(the longest cassette, an E-300, holds {MAX_MINUTES} minutes at LP)"
        )
    raise UsageError(
        f"unknown cassette length {text!r}; use minutes or one of {', '.join(CASSETTE_LENGTHS)}"
    )


# What may stand where a new image goes, by ``stat.S_IFMT`` of its ``lstat``: only a
# regular file is ever replaced (with ``--force``). A symlink is refused as itself, so
# neither the link nor the device node, FIFO or socket it might point at is touched.
_NOT_REPLACEABLE: dict[int, str] = {
    stat.S_IFDIR: "a directory",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFCHR: "a device node",
    stat.S_IFBLK: "a device node",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


def replace_refusal(mode: int | None, force: bool) -> str | None:
    """Why a new image may not go where a file of ``mode`` is (None: nothing there)."""
    if mode is None:
        return None
    if stat.S_IFMT(mode) != stat.S_IFREG:
        kind = _NOT_REPLACEABLE.get(stat.S_IFMT(mode), "not a regular file")
        return f"is {kind}: refusing to replace it with a cassette image"
    return None if force else "already exists (use --force to replace it)"


@dataclass(frozen=True)
class Damage:
    """Why bytes read from an image are not a valid image (one line for people)."""

    message: str


# -- rule tables ---------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One key of a JSON object: its JSON type, its valid values, its default if absent.

    ``kinds`` are exact types (``bool`` is not an ``int`` here); ``valid`` gets the value
    and the tape length in slots; ``expect`` says what ``valid`` accepts, for messages
    (``{slots}`` and ``{last}`` stand for the tape length and the last slot).
    A rule without a default is required.
    """

    key: str
    kinds: tuple[type, ...]
    valid: Callable[[Any, int], bool]
    expect: str
    default: Any = ...

    @property
    def required(self) -> bool:
        return self.default is ...


def _any(value: Any, slots: int) -> bool:
    return True  # the JSON type is all there is to check (contents: checked one level down)


def _slot(value: int, slots: int) -> bool:
    return 0 <= value <= slots


_SUPERBLOCK_RULES: tuple[Rule, ...] = (
    Rule("standard", (str,), lambda v, _: v in STANDARDS, " or ".join(STANDARDS)),
    Rule("length_name", (str,), lambda v, _: 0 < len(v) <= 16 and v.isprintable(),
         "a length name like E-180"),
    Rule("minutes", (int,), lambda v, _: 0 < v <= MAX_MINUTES, f"1..{MAX_MINUTES}"),
    Rule("slots", (int,), lambda v, _: 0 < v <= MAX_SLOTS, f"1..{MAX_SLOTS}"),
    Rule("slot_size", (int,), lambda v, _: v == SLOT_SIZE, f"{SLOT_SIZE}"),
    Rule("data_offset", (int,), lambda v, _: v == DATA_OFFSET, f"{DATA_OFFSET}"),
    Rule("index_size", (int,), lambda v, _: v == INDEX_SIZE, f"{INDEX_SIZE}", INDEX_SIZE),
)

# Checks across keys, on values that passed the rules: (what must hold, check).
_SUPERBLOCK_CHECKS: tuple[tuple[str, Callable[[Mapping[str, Any], int], bool]], ...] = (
    ("slots must be minutes x 60 x the fields per second of the standard",
     lambda m, _: m["slots"] == m["minutes"] * 60 * STANDARDS[m["standard"]]),
    ("the file must hold the superblock and both index copies",
     lambda _, size: size >= DATA_OFFSET),
    ("the file is longer than the tape its superblock declares",
     lambda m, size: size <= DATA_OFFSET + m["slots"] * SLOT_SIZE),
)

_INDEX_RULES: tuple[Rule, ...] = (
    Rule("recordings", (list,), _any, "a list", []),
    Rule("open", (dict, type(None)), _any, "an object or null", None),
    Rule("write_protected", (bool,), _any, "true or false", False),
    Rule("wear", (dict,), _any, "an object", {}),
)

_RECORDING_RULES: tuple[Rule, ...] = (
    Rule("start", (int,), _slot, "0..{slots}"),
    Rule("fields", (int,), _slot, "0..{slots}"),
    Rule("mode", (str,), lambda v, _: v in MODES, " ".join(MODES)),
    Rule("fmt", (str,), lambda v, _: v in RECORDING_FORMATS, " ".join(RECORDING_FORMATS),
         "3.102"),
    Rule("user_bytes", (int, type(None)),
         lambda v, slots: v is None or 0 <= v <= slots * MAX_FIELD, "null or a byte count",
         None),
    Rule("blocks", (list, type(None)), _any, "null or a list of [size, count]", None),
    Rule("filemark", (bool,), _any, "true or false", True),
    Rule("origin", (str,), lambda v, _: v in ORIGINS, " ".join(ORIGINS), "medium"),
)

_RECORDING_CHECKS: tuple[tuple[str, Callable[[Mapping[str, Any], int], bool]], ...] = (
    ("it ends past the end of the tape", lambda r, slots: r["start"] + r["fields"] <= slots),
    ("it holds more user bytes than its fields can carry",
     lambda r, _: r["user_bytes"] is None or r["user_bytes"] <= r["fields"] * MAX_FIELD),
)

_OPEN_RULES: tuple[Rule, ...] = (
    Rule("start", (int,), lambda v, slots: 0 <= v < slots, "0..{last}"),
    Rule("mode", (str,), lambda v, _: v in MODES, " ".join(MODES)),
    Rule("fmt", (str,), lambda v, _: v in RECORDING_FORMATS, " ".join(RECORDING_FORMATS),
         "3.102"),
)

_WEAR_RULES: tuple[Rule, ...] = tuple(
    Rule(key, (int,), lambda v, _: 0 <= v <= _MAX_COUNTER, f"0..{_MAX_COUNTER}", 0)
    for key in WEAR_KEYS
)


def _shown(value: Any) -> str:
    """A bad value for a message: short, and safe for the deepest nesting JSON allows."""
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object of {len(value)} keys"
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _type_name(kinds: tuple[type, ...]) -> str:
    names = {bool: "boolean", int: "integer", str: "string", list: "list", dict: "object",
             type(None): "null"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def apply_rules(
    doc: object, rules: Sequence[Rule], where: str, slots: int = 0
) -> dict[str, Any] | Damage:
    """The values of ``rules`` in ``doc`` (defaults filled in), or what is wrong with it."""
    if not isinstance(doc, dict):
        return Damage(f"{where}: expected an object, got {_shown(doc)}")
    out: dict[str, Any] = {}
    for rule in rules:
        if rule.key not in doc:
            if rule.required:
                return Damage(f"{where}: {rule.key} is missing")
            out[rule.key] = rule.default
            continue
        value = doc[rule.key]
        if type(value) not in rule.kinds:
            return Damage(f"{where}: {rule.key} is {_shown(value)}, "
                          f"expected {_type_name(rule.kinds)}")
        if not rule.valid(value, slots):
            expect = rule.expect.format(slots=slots, last=slots - 1)
            return Damage(f"{where}: {rule.key} is {_shown(value)}, expected {expect}")
        out[rule.key] = value
    return out


def _apply_checks(
    values: Mapping[str, Any],
    checks: Sequence[tuple[str, Callable[[Mapping[str, Any], int], bool]]],
    where: str, arg: int,
) -> Damage | None:
    for message, holds in checks:
        if not holds(values, arg):
            return Damage(f"{where}: {message}")
    return None


# -- the superblock ------------------------------------------------------------------


@dataclass(frozen=True)
class Superblock:
    """What the superblock says about the cassette."""

    standard: str
    length_name: str
    minutes: int
    slots: int

    @property
    def fps(self) -> int:
        return STANDARDS[self.standard]

    @property
    def image_size(self) -> int:
        """Bytes of a complete image of this cassette."""
        return DATA_OFFSET + self.slots * SLOT_SIZE

    @classmethod
    def new(cls, standard: str, length: str) -> Superblock:
        """The superblock of a blank cassette (raises ``UsageError`` on bad arguments)."""
        standard = standard.lower()
        if standard not in STANDARDS:
            raise UsageError(f"unknown video standard {standard!r}; use ntsc or pal")
        length_name, minutes = parse_length(length)
        return cls(standard, length_name, minutes, minutes * 60 * STANDARDS[standard])

    def to_bytes(self) -> bytes:
        meta = {"standard": self.standard, "length_name": self.length_name,
                "minutes": self.minutes, "slots": self.slots, "slot_size": SLOT_SIZE,
                "data_offset": DATA_OFFSET, "index_size": INDEX_SIZE}
        return (MAGIC + json.dumps(meta).encode() + b"\n").ljust(SUPERBLOCK_SIZE, b"\0")


@lru_cache(maxsize=64)
def _slot_frame(length: int) -> tuple[bytes, bytes]:
    """The header and the zero padding around a field of ``length`` bytes in its slot."""
    return SLOT_HEADER.pack(length, 0), bytes(MAX_FIELD - length)


def slot_parts(fields: Sequence[bytes]) -> list[bytes]:
    """The slots of ``fields``, each as three parts (header, field, zero padding): a
    gathered write (``os.pwritev``) stores them without a joined copy."""
    parts: list[bytes] = []
    for f in fields:
        n = len(f)
        if not 0 < n <= MAX_FIELD:
            raise ValueError(f"field of {n} bytes does not fit a slot")
        header, padding = _slot_frame(n)
        parts += (header, f, padding)
    return parts


def has_magic(raw: bytes) -> bool:
    """Whether ``raw`` (the first bytes of a file) begins like a cassette image."""
    return raw.startswith(MAGIC)


def parse_superblock(raw: bytes, file_size: int) -> Superblock | Damage:
    """The superblock of an image from its first ``SUPERBLOCK_SIZE`` bytes."""
    if not has_magic(raw):
        return Damage("not a backerd cassette image")
    line = raw[len(MAGIC):SUPERBLOCK_SIZE].split(b"\n", 1)[0]
    try:
        meta = json.loads(line)
    except (ValueError, RecursionError):
        return Damage("damaged cassette header: not valid JSON")
    return validate_superblock(meta, file_size)


def validate_superblock(meta: object, file_size: int) -> Superblock | Damage:
    """Check the parsed superblock JSON against the rules and the file size."""
    where = "damaged cassette header"
    values = apply_rules(meta, _SUPERBLOCK_RULES, where)
    if isinstance(values, Damage):
        return values
    damage = _apply_checks(values, _SUPERBLOCK_CHECKS, where, file_size)
    if damage is not None:
        return damage
    return Superblock(values["standard"], values["length_name"], values["minutes"],
                      values["slots"])


# -- the index -----------------------------------------------------------------------


@dataclass(frozen=True)
class IndexState:
    """What an index copy records."""

    recordings: tuple[Recording, ...] = ()
    open: OpenRecording | None = None
    write_protected: bool = False
    wear: tuple[tuple[str, int], ...] = tuple((k, 0) for k in WEAR_KEYS)

    def to_json(self) -> dict:
        return {
            "recordings": [r.to_json() for r in self.recordings],
            "open": None if self.open is None else {
                "start": self.open.start, "mode": self.open.mode, "fmt": self.open.fmt},
            "write_protected": self.write_protected,
            "wear": dict(self.wear),
        }


def encode_index(state: IndexState, generation: int) -> bytes:
    """An index copy: header and compressed JSON (may exceed ``INDEX_SIZE``: check)."""
    payload = zlib.compress(json.dumps(state.to_json(), separators=(",", ":")).encode(), 6)
    return INDEX_HEADER.pack(INDEX_MAGIC, generation, len(payload), zlib.crc32(payload)) + payload


def index_payload_size(header: bytes) -> int | None:
    """Payload length an index copy header announces, None if it is no index header."""
    if len(header) < INDEX_HEADER.size:
        return None
    magic, _, size, _ = INDEX_HEADER.unpack_from(header)
    if magic != INDEX_MAGIC or size > MAX_INDEX_PAYLOAD:
        return None
    return size


def decode_index_copy(raw: bytes) -> tuple[int, object] | Damage:
    """``(generation, parsed JSON)`` of an index copy (header + payload), or Damage.

    A copy torn by a crash fails here (its CRC), and loading uses the other one.
    """
    size = index_payload_size(raw)
    if size is None:
        return Damage("no index header")
    _, generation, _, crc = INDEX_HEADER.unpack_from(raw)
    payload = raw[INDEX_HEADER.size : INDEX_HEADER.size + size]
    if len(payload) != size or zlib.crc32(payload) != crc:
        return Damage("index checksum mismatch")
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(payload, MAX_INDEX_JSON)
    except zlib.error:
        return Damage("index does not decompress")
    if inflater.unconsumed_tail or not inflater.eof:
        return Damage("index does not decompress to a complete document of bounded size")
    try:
        return generation, json.loads(text)
    except (ValueError, RecursionError):
        return Damage("index is not valid JSON")


def _blocks(
    value: list | None, fields: int, where: str
) -> tuple[tuple[int, int], ...] | None | Damage:
    if value is None:
        return None
    room = max(fields, 1) * MAX_FIELD  # bytes (and blocks) a recording can carry
    runs: list[tuple[int, int]] = []
    total = count_total = 0
    for i, run in enumerate(value):
        if (type(run) is not list or len(run) != 2
                or any(type(x) is not int for x in run)):
            return Damage(f"{where}.blocks[{i}] is {_shown(run)}, expected [size, count]")
        size, count = run
        if not (0 <= size <= room and 0 < count <= room):
            return Damage(f"{where}.blocks[{i}] is [{size}, {count}], expected size 0..{room} "
                          f"and count 1..{room}")
        total += size * count
        count_total += count
        if total > room or count_total > room:
            return Damage(f"{where}: its blocks hold more than its fields can carry")
        runs.append((size, count))
    return tuple(runs)


def validate_index(doc: object, slots: int) -> IndexState | Damage:
    """Check a parsed index document against the rules and the tape length."""
    where = "cassette index"
    top = apply_rules(doc, _INDEX_RULES, where, slots)
    if isinstance(top, Damage):
        return top
    recordings: list[Recording] = []
    end = 0
    for i, item in enumerate(top["recordings"]):
        at = f"{where}: recordings[{i}]"
        r = apply_rules(item, _RECORDING_RULES, at, slots)
        if isinstance(r, Damage):
            return r
        damage = _apply_checks(r, _RECORDING_CHECKS, at, slots)
        if damage is not None:
            return damage
        if r["start"] < end:
            return Damage(f"{at}: it starts at {r['start']}, inside the recording before it")
        blocks = _blocks(r["blocks"], r["fields"], at)
        if isinstance(blocks, Damage):
            return blocks
        recordings.append(Recording(r["start"], r["fields"], r["mode"], r["fmt"],
                                    r["user_bytes"], blocks, r["filemark"], r["origin"]))
        end = r["start"] + r["fields"]
    open_recording = None
    if top["open"] is not None:
        o = apply_rules(top["open"], _OPEN_RULES, f"{where}: open", slots)
        if isinstance(o, Damage):
            return o
        open_recording = OpenRecording(o["start"], o["mode"], o["fmt"])
    wear = apply_rules(top["wear"], _WEAR_RULES, f"{where}: wear")
    if isinstance(wear, Damage):
        return wear
    return IndexState(tuple(recordings), open_recording, top["write_protected"],
                      tuple((k, wear[k]) for k in WEAR_KEYS))


def pick_index(copies: Sequence[bytes], slots: int) -> tuple[int, IndexState] | Damage:
    """The newest index copy that is intact, validated; Damage if none is usable.

    A copy that fails its checksum was torn by a crash and is passed over. A copy that
    passes it but breaks the rules is not a torn write: it is reported, not skipped, so
    a damaged index never silently loses the recordings it lists.
    """
    best: tuple[int, object] | None = None
    for raw in copies:
        decoded = decode_index_copy(raw)
        if isinstance(decoded, Damage):
            continue
        if best is None or decoded[0] > best[0]:
            best = decoded
    if best is None:
        return Damage("cassette index is damaged (both copies)")
    state = validate_index(best[1], slots)
    if isinstance(state, Damage):
        return Damage(f"{state.message} (index generation {best[0]})")
    return best[0], state


def recordings_past_end(
    recordings: Sequence[Recording], file_size: int
) -> tuple[int, ...]:
    """Numbers of the recordings that do not lie wholly inside a file of ``file_size``.

    A complete image holds every slot of the tape; a truncated one lost the recordings
    past its end (they play as blank tape).
    """
    whole_slots = max(file_size - DATA_OFFSET, 0) // SLOT_SIZE
    return tuple(i for i, r in enumerate(recordings) if r.fields and r.end > whole_slots)


def describe_past_end(
    recordings: Sequence[Recording], lost: Sequence[int], file_size: int, slots: int
) -> str | None:
    """One line on the recordings a truncated image lost, None if it lost none."""
    if not lost:
        return None
    whole_slots = max(file_size - DATA_OFFSET, 0) // SLOT_SIZE
    if len(lost) == 1:
        which = f"recording {lost[0]} lies"
    elif list(lost) == list(range(lost[0], lost[-1] + 1)):
        which = f"recordings {lost[0]}..{lost[-1]} lie"
    else:
        which = "recordings " + ", ".join(map(str, lost)) + " lie"
    return (f"the image is truncated at field {whole_slots} of {slots}: {which} past its "
            f"end ({len(recordings)} recordings in the index)")

"""Mode geometry and code parameters of the Backer tape formats 3.102, 3.101 and 3.3.

Theory of operation: a mode name (``nls`` ... ``phr``) selects the video standard,
the bit density and the codec; a format release selects the key spacing, the key
placement, the inner Reed-Solomon code and the header layout. Everything else is
derived here once, so codecs never repeat the arithmetic of the specification
(backer-format.md sections 2, 3, 10, 11).

The vocabulary is typed: `Standard`, `Density`, `Codec` and `Format` are string enums
(they compare equal to, and serialise as, the plain strings stored in cassette images
and configuration), parsed from user text with one clear UsageError each. The rule
that a mode records only on a cassette of its own video standard is
`check_standard`, with the one message that names the fix; every caller uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from backerd.errors import UsageError


class Standard(StrEnum):
    """Video standard of a mode and of a cassette."""

    NTSC = "ntsc"
    PAL = "pal"

    @classmethod
    def parse(cls, text: str) -> Standard:
        try:
            return cls(str(text).strip().lower())
        except ValueError:
            raise UsageError(f"unknown video standard {text!r}; use ntsc or pal") from None

    @property
    def label(self) -> str:
        """NTSC / PAL, as people write it."""
        return self.value.upper()

    @property
    def article(self) -> str:
        """The indefinite article before `label` ("an NTSC", "a PAL")."""
        return "an" if self is Standard.NTSC else "a"

    @property
    def modes(self) -> tuple[str, ...]:
        """The formatted modes of this standard, in FORMATTED_MODES order."""
        return tuple(m for m in FORMATTED_MODES if m[0] == self.value[0])

    @property
    def default_mode(self) -> str:
        """The mode a cassette of this standard gets when none is asked for."""
        return STANDARD_DEFAULT_MODE[self]


class Density(StrEnum):
    LOW = "low"
    HIGH = "high"


class Codec(StrEnum):
    """How a mode carries user bytes: plain sectors, 8/9 GCR sectors, or raw fields."""

    SP = "sp"
    EP = "ep"
    RAW = "raw"


class Format(StrEnum):
    """A release of the Backer tape format (spec 10, 11)."""

    V3102 = "3.102"
    V3101 = "3.101"
    V33 = "3.3"

    @classmethod
    def parse(cls, text: str) -> Format:
        try:
            return cls(str(text).strip())
        except ValueError:
            raise UsageError(
                f"unknown format {text!r}; choose one of {', '.join(FORMATS)}") from None

    @property
    def is_legacy(self) -> bool:
        """3.101 and 3.3: key byte last in each group, codeword-major sectors."""
        return self is not Format.V3102


FORMATS = tuple(f.value for f in Format)
LEGACY_FORMATS = tuple(f.value for f in Format if f.is_legacy)
# What a reader accepts: a format, or "auto" to detect it from the stream.
AUTO = "auto"
FORMAT_CHOICES = (AUTO, *FORMATS)


def parse_format_choice(text: str) -> Format | None:
    """A reader's --format: a Format, or None for "auto" (detect from the stream)."""
    if str(text).strip() == AUTO:
        return None
    try:
        return Format(str(text).strip())
    except ValueError:
        raise UsageError(
            f"unknown format {text!r}; choose one of {', '.join(FORMAT_CHOICES)}") from None


FORMATTED_MODES = ("nls", "nhs", "pls", "phs", "nle", "nhe", "ple", "phe")
RAW_MODES = ("nlr", "nhr", "plr", "phr")
MODES = FORMATTED_MODES + RAW_MODES

KEY = bytes.fromhex(
    "D47CB19366656AB563E456596CBEC5CAF49CA3AC6DB3D27E74A6E1A95C9A4B5D"
)
LEADER_FILL = 0xE2
FILL = 0x33

# Mode bits as reported in mtget.mt_dsreg by the original driver (spec 12.1).
BIT_NTSC, BIT_PAL, BIT_LOW, BIT_HIGH, BIT_SP, BIT_EP = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


@dataclass(frozen=True)
class Geometry:
    """What the card transfers per field and frame for one standard and density."""

    standard: Standard
    density: Density
    bytes_per_line: int
    field_size: int  # even field
    interlace: int  # extra bytes of the odd field (NTSC half line)
    fps: int  # nominal fields per second

    @property
    def frame_size(self) -> int:
        return 2 * self.field_size + self.interlace

    def field_length(self, index: int) -> int:
        """Bytes of field ``index`` of a recording (field 0 is an odd field)."""
        return self.field_size + (self.interlace if index % 2 == 0 else 0)


GEOMETRIES = {
    ("n", "l"): Geometry(Standard.NTSC, Density.LOW, 4, 1012, 4, 60),
    ("n", "h"): Geometry(Standard.NTSC, Density.HIGH, 10, 2530, 10, 60),
    ("p", "l"): Geometry(Standard.PAL, Density.LOW, 4, 1220, 0, 50),
    ("p", "h"): Geometry(Standard.PAL, Density.HIGH, 10, 3050, 0, 50),
}
# High density SP: the most user bytes per field that the inner code still guards well.
STANDARD_DEFAULT_MODE = {Standard.NTSC: "nhs", Standard.PAL: "phs"}

# The EP outer code (spec 7): RS(255, 235) across the sectors of a group, in 3.102
# (ecc2) and in the 3.101/3.3 bkrenhanced utility alike.
GROUP_SECTORS = 255
GROUP_DATA_SECTORS = 235
GROUP_PARITY_SECTORS = GROUP_SECTORS - GROUP_DATA_SECTORS  # 20: erasures one group survives


def group_capacity(capacity: int) -> int:
    """Cg: user bytes of a full EP outer-code group of sectors of `capacity` bytes (the
    235 data sectors less the 4-byte length field)."""
    return GROUP_DATA_SECTORS * capacity - 4

# 3.102 table (spec section 3): L, T, ki, K, I, n, k
_T3102 = {
    "nls": (32, 28, 45, 22, 10, 93, 83),
    "nhs": (80, 70, 125, 20, 20, 118, 108),
    "pls": (40, 36, 49, 24, 14, 80, 70),
    "phs": (100, 90, 136, 22, 22, 129, 119),
    "nle": (40, 32, 44, 22, 12, 68, 60),
    "nhe": (100, 70, 84, 29, 28, 74, 66),
    "ple": (48, 36, 40, 29, 12, 82, 74),
    "phe": (120, 90, 91, 32, 26, 96, 88),
}
# 3.101 / 3.3 key spacing (spec 11.1): ki, K
_OLD_KEYS = {
    "nls": (45, 21), "nhs": (119, 20), "pls": (47, 24), "phs": (130, 22),
    "nle": (42, 22), "nhe": (81, 29), "ple": (39, 29), "phe": (88, 32),
}
# Inner RS of the SP modes in 3.101 and 3.3 (I, n, k); EP is as 3.102 in all releases.
_OLD_SP_RS = {
    "3.101": {"nls": (7, 133, 123), "pls": (8, 140, 130), "nhs": (20, 118, 108),
              "phs": (22, 129, 119)},
    "3.3": {"nls": (7, 133, 125), "pls": (8, 140, 132), "nhs": (20, 118, 110),
            "phs": (22, 129, 121)},
}


@dataclass(frozen=True)
class ModeParams:
    """Everything a codec needs to know about one mode of one format release."""

    name: str
    format: Format
    geometry: Geometry
    codec: Codec
    leader: int
    trailer: int
    active: int
    key_interval: int
    key_length: int
    key_first: bool  # 3.102: key byte first in each group; 3.101/3.3: last
    threshold: int  # minimum matching key bytes to accept a field
    payload: int  # Pay: active bytes that are not key bytes
    gcr_pad: int  # G: bytes added by 8/9 modulation (EP)
    sector_size: int  # S
    interleave: int  # I: codewords per sector
    rs_n: int
    rs_k: int
    n_bor: int  # sectors of the beginning-of-record marker
    n_eor: int  # sectors of the end-of-record marker

    @property
    def is_raw(self) -> bool:
        return self.codec is Codec.RAW

    @property
    def parity_per_codeword(self) -> int:
        return self.rs_n - self.rs_k

    @property
    def data_size(self) -> int:  # D
        return self.interleave * self.rs_k

    @property
    def parity_size(self) -> int:  # P
        return self.interleave * (self.rs_n - self.rs_k)

    @property
    def capacity(self) -> int:  # C: user bytes of a full sector
        return self.data_size - 4

    @property
    def group_capacity(self) -> int:  # Cg: user bytes of a full EP outer-code group
        return group_capacity(self.capacity)

    @property
    def fps(self) -> int:
        return self.geometry.fps

    @property
    def mode_bits(self) -> int:
        g = self.geometry
        bits = BIT_NTSC if g.standard is Standard.NTSC else BIT_PAL
        bits |= BIT_LOW if g.density is Density.LOW else BIT_HIGH
        bits |= {Codec.SP: BIT_SP, Codec.EP: BIT_EP, Codec.RAW: 0}[self.codec]
        return bits

    @property
    def key(self) -> bytes:
        return KEY[: self.key_length]


def _formatted(name: str, fmt: Format) -> ModeParams:
    geometry = GEOMETRIES[(name[0], name[1])]
    leader, trailer, ki, klen, inter, n, k = _T3102[name]
    active = geometry.field_size - leader - trailer
    codec = Codec.EP if name[2] == "e" else Codec.SP
    if fmt is Format.V3102:
        key_first = True
        threshold = (21 * klen) // 64
    else:
        ki, klen = _OLD_KEYS[name]
        key_first = False
        # 3.101: weight floor(64m/K) >= 21; 3.3: 100m/K >= 30
        threshold = -(-21 * klen // 64) if fmt is Format.V3101 else -(-3 * klen // 10)
        if codec is Codec.SP:
            inter, n, k = _OLD_SP_RS[fmt][name]
    payload = active - klen
    gcr_pad = payload // 9 if codec is Codec.EP else 0
    sector_size = payload - gcr_pad
    if sector_size != inter * n:
        raise AssertionError(f"inconsistent geometry for {fmt} {name}")
    n_bor = (4 if fmt is Format.V33 else 5) * geometry.fps
    return ModeParams(
        name=name, format=fmt, geometry=geometry, codec=codec, leader=leader,
        trailer=trailer, active=active, key_interval=ki, key_length=klen,
        key_first=key_first, threshold=threshold, payload=payload, gcr_pad=gcr_pad,
        sector_size=sector_size, interleave=inter, rs_n=n, rs_k=k, n_bor=n_bor,
        n_eor=geometry.fps,
    )


def _raw(name: str, fmt: Format) -> ModeParams:
    geometry = GEOMETRIES[(name[0], name[1])]
    return ModeParams(
        name=name, format=fmt, geometry=geometry, codec=Codec.RAW, leader=0, trailer=0,
        active=geometry.frame_size, key_interval=0, key_length=0, key_first=True,
        threshold=0, payload=0, gcr_pad=0, sector_size=0, interleave=1, rs_n=0, rs_k=4,
        n_bor=0, n_eor=0,
    )


@cache
def mode(name: str, fmt: str = Format.V3102) -> ModeParams:
    """Parameters of mode ``name`` in format release ``fmt``; clear error if unknown."""
    if name not in MODES:
        raise UsageError(f"unknown mode {name!r}; choose one of {', '.join(MODES)}")
    release = Format.parse(fmt)
    return _raw(name, release) if name in RAW_MODES else _formatted(name, release)


def standard_mismatch(mode_name: str, standard: str) -> str | None:
    """Why mode `mode_name` cannot record on a cassette of `standard`, or None if it can.

    The one PAL/NTSC rule: a mode's fields have its standard's line count and rate, so
    a cassette recorded in one standard is unreadable by the other's modes.
    """
    have = mode(mode_name).geometry.standard
    want = Standard.parse(standard)
    if have is want:
        return None
    return (f"mode {mode_name} is {have.label} but the cassette is {want.label}: use "
            f"{want.article} {want.label} mode ({', '.join(want.modes)}) or "
            f"{have.article} {have.label} cassette")


def check_standard(mode_name: str, standard: str) -> None:
    """UsageError (EINVAL) unless mode `mode_name` can record on a `standard` cassette."""
    problem = standard_mismatch(mode_name, standard)
    if problem is not None:
        raise UsageError(problem)


def mode_from_bits(bits: int) -> str:
    """Mode name for the original driver's mode bits (mt_dsreg density byte)."""
    for name in MODES:
        if mode(name).mode_bits == bits:
            return name
    raise UsageError(f"no Backer mode has mode bits {bits:#04x}")

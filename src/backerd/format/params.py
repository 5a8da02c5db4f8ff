"""Mode geometry and code parameters of the Backer tape formats 3.102, 3.101 and 3.3.

Theory of operation: a mode name (``nls`` ... ``phr``) selects the video standard,
the bit density and the codec; a format release selects the key spacing, the key
placement, the inner Reed-Solomon code and the header layout. Everything else is
derived here once, so codecs never repeat the arithmetic of the specification
(backer-format.md sections 2, 3, 10, 11).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from backerd.errors import UsageError

FORMATS = ("3.102", "3.101", "3.3")
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

    standard: str  # "ntsc" | "pal"
    density: str  # "low" | "high"
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
    ("n", "l"): Geometry("ntsc", "low", 4, 1012, 4, 60),
    ("n", "h"): Geometry("ntsc", "high", 10, 2530, 10, 60),
    ("p", "l"): Geometry("pal", "low", 4, 1220, 0, 50),
    ("p", "h"): Geometry("pal", "high", 10, 3050, 0, 50),
}

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
    format: str
    geometry: Geometry
    codec: str  # "sp" | "ep" | "raw"
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
        return self.codec == "raw"

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
        return 235 * self.capacity - 4

    @property
    def fps(self) -> int:
        return self.geometry.fps

    @property
    def mode_bits(self) -> int:
        g = self.geometry
        bits = (BIT_NTSC if g.standard == "ntsc" else BIT_PAL)
        bits |= BIT_LOW if g.density == "low" else BIT_HIGH
        bits |= {"sp": BIT_SP, "ep": BIT_EP, "raw": 0}[self.codec]
        return bits

    @property
    def key(self) -> bytes:
        return KEY[: self.key_length]


def _formatted(name: str, fmt: str) -> ModeParams:
    geometry = GEOMETRIES[(name[0], name[1])]
    leader, trailer, ki, klen, inter, n, k = _T3102[name]
    active = geometry.field_size - leader - trailer
    codec = "ep" if name[2] == "e" else "sp"
    if fmt == "3.102":
        key_first = True
        threshold = (21 * klen) // 64
    else:
        ki, klen = _OLD_KEYS[name]
        key_first = False
        # 3.101: weight floor(64m/K) >= 21; 3.3: 100m/K >= 30
        threshold = -(-21 * klen // 64) if fmt == "3.101" else -(-3 * klen // 10)
        if codec == "sp":
            inter, n, k = _OLD_SP_RS[fmt][name]
    payload = active - klen
    gcr_pad = payload // 9 if codec == "ep" else 0
    sector_size = payload - gcr_pad
    if sector_size != inter * n:
        raise AssertionError(f"inconsistent geometry for {fmt} {name}")
    n_bor = (4 if fmt == "3.3" else 5) * geometry.fps
    return ModeParams(
        name=name, format=fmt, geometry=geometry, codec=codec, leader=leader,
        trailer=trailer, active=active, key_interval=ki, key_length=klen,
        key_first=key_first, threshold=threshold, payload=payload, gcr_pad=gcr_pad,
        sector_size=sector_size, interleave=inter, rs_n=n, rs_k=k, n_bor=n_bor,
        n_eor=geometry.fps,
    )


def _raw(name: str, fmt: str) -> ModeParams:
    geometry = GEOMETRIES[(name[0], name[1])]
    return ModeParams(
        name=name, format=fmt, geometry=geometry, codec="raw", leader=0, trailer=0,
        active=geometry.frame_size, key_interval=0, key_length=0, key_first=True,
        threshold=0, payload=0, gcr_pad=0, sector_size=0, interleave=1, rs_n=0, rs_k=4,
        n_bor=0, n_eor=0,
    )


@cache
def mode(name: str, fmt: str = "3.102") -> ModeParams:
    """Parameters of mode ``name`` in format release ``fmt``; clear error if unknown."""
    if name not in MODES:
        raise UsageError(f"unknown mode {name!r}; choose one of {', '.join(MODES)}")
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return _raw(name, fmt) if name in RAW_MODES else _formatted(name, fmt)


def mode_from_bits(bits: int) -> str:
    """Mode name for the original driver's mode bits (mt_dsreg density byte)."""
    for name in MODES:
        if mode(name).mode_bits == bits:
            return name
    raise UsageError(f"no Backer mode has mode bits {bits:#04x}")

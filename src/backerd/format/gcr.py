"""EP 8/9 GCR modulation (spec section 5), vectorised over whole sectors.

Each byte becomes a 9-bit word from a fixed code book; a word is inverted when the
previous *transmitted* word ends in a 1 bit. The inversion of word i is therefore the
XOR of the low bits of all earlier code-book words, a running parity along the row.
Eight 9-bit words pack into 9 bytes. Packing is an XOR of per-slot patterns, and the
inversions of a group are one 72-bit XOR mask chosen by the group's inversion pattern,
so modulation is a handful of 256-entry table lookups per group of 8 bytes.
"""

from __future__ import annotations

import numpy as np

_ROWS = (
    "089 08A 08B 08C 08D 08E 091 092 093 094 095 096 099 09A 09B 09C "
    "09D 09E 0A2 0A3 0A4 0A5 0A6 0A9 0AA 0AB 0AC 0AD 0AE 0B1 0B2 0B3 "
    "0B4 0B5 0B6 0B9 0BA 0BB 0BC 0BD 0BE 0C2 0C3 0C4 0C5 0C6 0C9 0CA "
    "0CB 0CC 0CD 0CE 0D1 0D2 0D3 0D4 0D5 0D6 0D9 0DA 0DB 0DC 0DD 0DE "
    "0E1 0E2 0E3 0E4 0E5 0E6 0E9 0EA 0EB 0EC 0ED 0EE 0F1 0F2 0F3 0F4 "
    "0F5 0F6 0F9 0FA 0FB 0FC 0FD 109 10A 10B 10C 10D 10E 111 112 113 "
    "114 115 116 119 11A 11B 11C 11D 11E 121 122 123 124 125 126 129 "
    "12A 12B 12C 12D 12E 131 132 133 134 135 136 139 13A 13B 13C 13D "
    "13E 142 143 144 145 146 149 14A 14B 14C 14D 14E 151 152 153 154 "
    "155 156 159 15A 15B 15C 15D 15E 161 162 163 164 165 166 169 16A "
    "16B 16C 16D 16E 171 172 173 174 175 176 179 17A 17B 17C 17D 17E "
    "184 185 186 189 18A 18B 18C 18D 18E 191 192 193 194 195 196 199 "
    "19A 19B 19C 19D 19E 1A1 1A2 1A3 1A4 1A5 1A6 1A9 1AA 1AB 1AC 1AD "
    "1AE 1B1 1B2 1B3 1B4 1B5 1B6 1B9 1BA 1BB 1BC 1BD 1BE 1C2 1C3 1C4 "
    "1C5 1C6 1C9 1CA 1CB 1CC 1CD 1CE 1D1 1D2 1D3 1D4 1D5 1D6 1D9 1DA "
    "1DB 1DC 1DD 1DE 1E1 1E2 1E3 1E4 1E5 1E6 1E9 1EA 1EB 1EC 1ED 1EE"
)
#: Code book W[v]: the 9-bit word of byte value v.
CODEBOOK = np.array([int(w, 16) for w in _ROWS.split()], dtype=np.uint16)
#: Inverse code book over all 512 words; words outside the book decode to 0xFF.
INVERSE = np.full(512, 0xFF, dtype=np.uint8)
INVERSE[CODEBOOK] = np.arange(256, dtype=np.uint8)
#: True for the 512 - 256 words that are not in the code book.
INVALID = np.ones(512, dtype=bool)
INVALID[CODEBOOK] = False


# Demodulation table over (previous word's low bit) << 9 | received word: the byte of
# the word with its inversion undone, plus 0x100 if that word is not in the code book.
_KEYS = np.arange(1024)
_UNINVERTED = np.where(_KEYS >> 9, (_KEYS & 0x1FF) ^ 0x1FF, _KEYS & 0x1FF)
_DECODE = INVERSE[_UNINVERTED].astype(np.uint16) | (INVALID[_UNINVERTED].astype(np.uint16) << 8)
del _KEYS, _UNINVERTED
# Words demodulated per block (bounds the temporaries to a few hundred KiB).
_DEMOD_WORDS = 1 << 17


def _build_tables() -> tuple[np.ndarray, ...]:
    """Per-group tables: a group of 8 words is a 72-bit string, bytes 0-7 + byte 8.
    Bytes 0-7 are handled as one 64-bit "head" value, first byte most significant
    (stored big-endian at the end), so shifts and masks see the bit string in order.

    _WORD_AT[m, v]: the head with code word W[v] at word slot m (byte 8 only ever
    holds the low 8 bits of slot 7). _FLIP_HEAD/_FLIP_LO[p]: the XOR that inverts the
    slots whose bit (7 - m) is set in p. _PREFIX[b]: for low-bit pattern b of a group,
    bit (7 - m) = parity of the low bits of slots before m; _TOTAL[b]: parity of b.
    """
    word_at = np.array(
        [[(int(w) << (63 - 9 * m)) >> 8 for w in CODEBOOK] for m in range(8)], dtype=np.uint64
    )
    flips, prefix, total = [], np.zeros(256, np.uint8), np.zeros(256, np.uint8)
    for p in range(256):
        flips.append(sum(0x1FF << (63 - 9 * m) for m in range(8) if p >> (7 - m) & 1))
        acc = 0
        for m in range(8):
            prefix[p] |= acc << (7 - m)
            acc ^= p >> (7 - m) & 1
        total[p] = acc
    flip_head = np.array([f >> 8 for f in flips], dtype=np.uint64)
    flip_lo = np.array([f & 0xFF for f in flips], dtype=np.uint8)
    return word_at, flip_head, flip_lo, prefix, total


_WORD_AT, _FLIP_HEAD, _FLIP_LO, _PREFIX, _TOTAL = _build_tables()

# The same per-slot tables over byte pairs (slots 2i, 2i+1 as one little-endian uint16
# index), which halves the lookups: _PAIR_HEAD[i] -> head value; _TAIL[p] -> byte 8
# (slot 7 is the high byte of pair 3).
_PAIR_INDEX = np.arange(1 << 16)
_PAIR_HEAD = np.stack([
    _WORD_AT[2 * i][_PAIR_INDEX & 0xFF] ^ _WORD_AT[2 * i + 1][_PAIR_INDEX >> 8]
    for i in range(4)
])
_TAIL = (CODEBOOK[_PAIR_INDEX >> 8] & 0xFF).astype(np.uint8)
del _PAIR_INDEX
# The low bits of code words 0..6 sit at bits 55 - 9m of the head value, nine apart.
# Masked and multiplied by 1 + 2^8 + ... + 2^48, word m's lands at bit 55 - m; no two
# partial products share a bit (9j + 8k never repeats), so there are no carries.
_LOW_MASK = np.uint64(sum(1 << (9 * j + 1) for j in range(7)))
_LOW_GATHER = np.uint64(sum(1 << (8 * k) for k in range(7)))


def modulated_size(sector_size: int) -> int:
    return sector_size // 8 * 9


def modulate(sectors: np.ndarray) -> np.ndarray:
    """(N, S) bytes -> (N, 9S/8) GCR stream bytes; the inversion state resets per row."""
    sectors = np.ascontiguousarray(sectors, dtype=np.uint8)
    rows, size = sectors.shape
    if size % 8:
        raise ValueError(f"GCR input rows must be a multiple of 8 bytes, got {size}")
    groups = size // 8
    count = rows * groups
    pairs = np.ascontiguousarray(sectors.reshape(count, 8).view("<u2").T)  # (4, count)
    head = _PAIR_HEAD[0].take(pairs[0])  # code words, not yet inverted
    for i in range(1, 4):
        head ^= _PAIR_HEAD[i].take(pairs[i])
    tail = _TAIL.take(pairs[3])
    # Word i is inverted iff the XOR of the low bits of code words 0..i-1 is 1: within
    # a group from a table of its 8 low bits (bit 7 - m = word m's), across groups by a
    # running parity.
    gathered = head & _LOW_MASK
    gathered *= _LOW_GATHER
    gathered >>= np.uint64(48)
    low = gathered.astype(np.uint8)
    low &= np.uint8(0xFE)
    low |= tail & np.uint8(1)
    low = low.reshape(rows, groups)
    carry = np.bitwise_xor.accumulate(_TOTAL.take(low), axis=1)
    invert = _PREFIX.take(low)
    invert[:, 1:] ^= carry[:, :-1] * np.uint8(0xFF)
    invert = invert.reshape(-1)
    head ^= _FLIP_HEAD.take(invert)
    out = np.empty((count, 9), dtype=np.uint8)
    # Bytes 0-7 of every group in one pass through an unaligned big-endian strided view.
    np.ndarray((count,), dtype=">u8", buffer=out, strides=(9,))[:] = head
    out[:, 8] = tail ^ _FLIP_LO.take(invert)
    return out.reshape(rows, groups * 9)


def demodulate(payloads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, Pay) GCR bytes -> ((N, 8 Pay/9) bytes, (N, 8 Pay/9) invalid-word mask).

    The inversion of each word follows the *received* previous word, so one bad bit
    corrupts at most two bytes. Words outside the code book decode to 0xFF and are
    flagged (erasure candidates for the Reed-Solomon decoder).
    """
    payloads = np.ascontiguousarray(payloads, dtype=np.uint8)
    rows, size = payloads.shape
    if size % 9:
        raise ValueError(f"GCR stream rows must be a multiple of 9 bytes, got {size}")
    width = size // 9 * 8
    out = np.empty((rows, width), dtype=np.uint8)
    invalid = np.empty((rows, width), dtype=bool)
    if not width:
        return out, invalid
    # Blocks of rows whose temporaries stay in cache.
    step = max(1, _DEMOD_WORDS // width)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        _demodulate_rows(payloads[start:stop], out[start:stop], invalid[start:stop])
    return out, invalid


def _demodulate_rows(payloads: np.ndarray, out: np.ndarray, invalid: np.ndarray) -> None:
    rows, size = payloads.shape
    count = rows * (size // 9)
    words = np.empty((count, 8), dtype=np.uint16)
    # Word m = low 8-m bits of byte m, then the top m+1 bits of byte m+1: bits of the
    # big-endian pair at m, read through an unaligned strided view (one per slot).
    for m in range(8):
        pair = np.ndarray((count,), dtype=">u2", buffer=payloads, offset=m, strides=(9,))
        np.right_shift(pair, 7 - m, out=words[:, m])
    words &= 0x1FF
    # Key = (previous received word's low bit) << 9 | word; the table undoes the inversion.
    keys = words.reshape(rows, size // 9 * 8)
    keys[:, 1:] |= (keys[:, :-1] & 1) << 9
    decoded = _DECODE.take(keys)
    np.copyto(out, decoded, casting="unsafe")
    np.greater(decoded, 0xFF, out=invalid)

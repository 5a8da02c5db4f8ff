"""EP 8/9 GCR modulation (spec section 5), vectorised over whole sectors.

Each byte becomes a 9-bit word from a fixed code book; a word is inverted when the
previous *transmitted* word ends in a 1 bit. The inversion of word i is therefore the
XOR of the low bits of all earlier code-book words, a running parity along the row.
Eight 9-bit words pack into 9 bytes; byte m of a group is made of the tail of word m-1
and the head of word m, computed for all groups at once from contiguous word rows.
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

_LOW_BIT = (CODEBOOK & 1).astype(np.uint8)


def modulated_size(sector_size: int) -> int:
    return sector_size // 8 * 9


def modulate(sectors: np.ndarray) -> np.ndarray:
    """(N, S) bytes -> (N, 9S/8) GCR stream bytes; the inversion state resets per row."""
    sectors = np.asarray(sectors, dtype=np.uint8)
    rows, size = sectors.shape
    if size % 8:
        raise ValueError(f"GCR input rows must be a multiple of 8 bytes, got {size}")
    words = CODEBOOK[sectors]
    # Word i is inverted iff the XOR of the low bits of code words 0..i-1 is 1.
    parity = np.bitwise_xor.accumulate(_LOW_BIT[sectors], axis=1)
    words[:, 1:] ^= parity[:, :-1] * np.uint16(0x1FF)
    # Word m of each group of 8 as a contiguous row: w[m] (M,).
    w = np.ascontiguousarray(words.reshape(-1, 8).T)
    groups = w.shape[1]
    out = np.empty((groups, 9), dtype=np.uint8)
    # Byte m (0 < m < 8) = low m bits of word m-1, then the top 8-m bits of word m.
    out[:, 0] = w[0] >> 1
    for m in range(1, 8):
        out[:, m] = (w[m - 1] << (8 - m)) | (w[m] >> (m + 1))
    out[:, 8] = w[7]
    return out.reshape(rows, modulated_size(size))


def demodulate(payloads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, Pay) GCR bytes -> ((N, 8 Pay/9) bytes, (N, 8 Pay/9) invalid-word mask).

    The inversion of each word follows the *received* previous word, so one bad bit
    corrupts at most two bytes. Words outside the code book decode to 0xFF and are
    flagged (erasure candidates for the Reed-Solomon decoder).
    """
    payloads = np.asarray(payloads, dtype=np.uint8)
    rows, size = payloads.shape
    if size % 9:
        raise ValueError(f"GCR stream rows must be a multiple of 9 bytes, got {size}")
    b = np.ascontiguousarray(payloads.reshape(-1, 9).T).astype(np.uint16)
    groups = b.shape[1]
    t = np.empty((groups, 8), dtype=np.uint16)
    # Word m = low 8-m bits of byte m, then the top m+1 bits of byte m+1.
    for m in range(8):
        t[:, m] = ((b[m] << (m + 1)) | (b[m + 1] >> (7 - m))) & 0x1FF
    t = t.reshape(rows, size // 9 * 8)
    t[:, 1:] ^= (t[:, :-1] & 1) * np.uint16(0x1FF)
    return INVERSE[t], INVALID[t]

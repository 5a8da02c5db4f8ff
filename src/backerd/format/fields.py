"""Field geometry of a recording: cutting a raw stream into fields, and counting them.

Theory of operation. A raw Backer stream is a sequence of video fields whose lengths
alternate with the field parity (``geometry.field_length(i)``: odd and even fields of
a frame differ by a line). Decks record and play whole fields, so everything that hands
a raw stream to a deck cuts it with a ``FieldCutter``, and everything that plans tape
use asks ``fields_needed`` how many fields a recording of so many user bytes takes
(spec 6.6: BOR, data sectors or EP groups, EOR, and a pad field to an even count), and
``bytes_within`` the other way: how many user bytes fit in so many fields.
``fields_of_raw`` goes the other way: how many fields a prefix of a raw stream spans.
All are pure functions of the mode's parameters.
"""

from __future__ import annotations

from backerd.format.params import ModeParams


class FieldCutter:
    """Cuts a raw stream into fields (field i has ``geometry.field_length(i)`` bytes)."""

    def __init__(self, params: ModeParams) -> None:
        self.geometry = params.geometry
        self.index = 0
        self.buf = bytearray()

    def cut(self, raw: bytes) -> list[bytes]:
        """The whole fields the stream holds so far; the rest waits for the next call."""
        if self.buf:
            self.buf += raw
            data = bytes(self.buf)
        else:  # a stream of whole fields (every 3.102 one) is sliced as it came
            data = bytes(raw)
        # Fields alternate between two lengths: take them a frame (a pair) at a time.
        first = self.geometry.field_length(self.index)
        pair = first + self.geometry.field_length(self.index + 1)
        end = len(data) // pair * pair
        out: list[bytes] = []
        for at in range(0, end, pair):
            out += (data[at : at + first], data[at + first : at + pair])
        if len(data) - end >= first:
            out.append(data[end : end + first])
            end += first
        self.index += len(out)
        self.buf = bytearray(data[end:])
        return out

    def rest(self) -> list[bytes]:
        """The last, partial field (raw modes only)."""
        if not self.buf:
            return []
        out = [bytes(self.buf)]
        self.buf.clear()
        self.index += 1
        return out


def fields_needed(params: ModeParams, user_bytes: int) -> int:
    """Fields of a recording of ``user_bytes`` (spec 6.6), pad field included."""
    if params.is_raw:
        g = params.geometry
        frames, rest = divmod(user_bytes, g.frame_size)
        return 2 * frames + (0 if not rest else 1 if rest <= g.field_length(0) else 2)
    if params.codec == "ep":
        data = 255 * -(-user_bytes // params.group_capacity)
    else:
        data = -(-user_bytes // params.capacity)
    total = params.n_bor + data + params.n_eor
    return total + total % 2


def bytes_within(params: ModeParams, fields: int) -> int:
    """Most user bytes of a recording of at most ``fields`` fields (-1: not even an
    empty one fits). ``fields_needed`` never decreases as bytes grow, so this is the
    bound ``fields_needed(params, n) <= fields`` for exactly ``n <= bytes_within``."""
    if fields_needed(params, 0) > fields:
        return -1
    lo, hi = 0, 1
    while fields_needed(params, hi) <= fields:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fields_needed(params, mid) <= fields:
            lo = mid
        else:
            hi = mid
    return lo


def fields_of_raw(params: ModeParams, raw_bytes: int, limit: int) -> int:
    """Fields (at most ``limit``) holding the first ``raw_bytes`` bytes of a raw stream."""
    g = params.geometry
    frames = min(raw_bytes // g.frame_size, limit // 2)
    n = 2 * frames
    total = frames * g.frame_size
    while total < raw_bytes and n < limit:
        total += g.field_length(n)
        n += 1
    return n

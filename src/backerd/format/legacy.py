"""Formats 3.101 and 3.3: recording writer and format scoring.

Theory of operation: the sector layer lives in `legacy_sector` and the bkrenhanced
outer code in `bkrenhanced`; this module wires them into what the rest of the product
calls. `LegacyRecorder` writes one recording the way the 3.101/3.3 `bkrencode` utility
did (spec 11.1, 11.2, 16): BOR, data sectors, one extra empty data sector when the input
ends on a sector boundary (including an empty input), EOR, and no pair padding — the
field stream starts with an odd field and simply stops. It exists so tests can check
the legacy codecs byte for byte against the original's streams, and so old-format
tapes can be produced for readers.

`score_formats` tells 3.101 from 3.3 for the reader: both share the key table, so only
the sector layer can decide (see docs/internals.md, format section).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backerd.errors import UsageError
from backerd.format import frame, gcr
from backerd.format.bkrenhanced import BkrEnhancedEncoder
from backerd.format.legacy_sector import LegacySectorCodec
from backerd.format.params import LEGACY_FORMATS, Codec, Format, ModeParams, mode
from backerd.format.sector_types import SectorKind

# Sectors encoded per batch: bounds memory and keeps numpy batches large.
_BATCH_SECTORS = 512


def _params(mode_or_name: ModeParams | str, fmt: str) -> ModeParams:
    params = mode_or_name if isinstance(mode_or_name, ModeParams) else mode(mode_or_name, fmt)
    if params.format not in LEGACY_FORMATS:
        raise UsageError(f"format {params.format} is not a legacy format (3.101, 3.3)")
    if params.is_raw:
        raise UsageError(f"mode {params.name} is raw: it has no sector format")
    return params


class LegacyRecorder:
    """Incremental writer of one 3.101/3.3 recording, as the original `bkrencode`.

    `write(data) -> bytes` returns the raw stream of the fields that became complete;
    `close() -> bytes` the rest (last data sector, EOR). Between calls it keeps less
    than one sector of input (one group with bkrenhanced). With `bkrenhanced=True` (EP
    modes) the user bytes first pass through the bkrenhanced outer code, as
    `bkrenhanced | bkrencode` did.
    """

    def __init__(
        self, mode_or_name: ModeParams | str, fmt: str = Format.V3101, *,
        bkrenhanced: bool = False
    ) -> None:
        self.params = _params(mode_or_name, fmt)
        if bkrenhanced and self.params.codec is not Codec.EP:
            raise UsageError("bkrenhanced applies to EP modes only")
        self.codec = LegacySectorCodec(self.params)
        self.fields_emitted = 0
        self._outer = BkrEnhancedEncoder(self.params.capacity) if bkrenhanced else None
        self._pending = bytearray()
        self._started = False
        self._closed = False
        self._number = 0
        self._stale: np.ndarray | None = None  # 3.3: data area of the last sector built

    # -------------------------------------------------------------- public API
    def write(self, data: bytes) -> bytes:
        if self._closed:
            raise UsageError("recording already closed")
        out = [self._begin()]
        if self._outer is not None:
            data = self._outer.write(data)
        out.append(self._push(data))
        return b"".join(out)

    def _push(self, data: bytes) -> bytes:
        """Encode every whole sector of pending bytes; keep the remainder."""
        out = []
        self._pending += data
        cap = self.params.capacity
        n_full = len(self._pending) // cap
        for start in range(0, n_full, _BATCH_SECTORS):
            count = min(_BATCH_SECTORS, n_full - start)
            chunk = bytes(self._pending[start * cap : (start + count) * cap])
            out.append(self._data_sectors(chunk, count))
        del self._pending[: n_full * cap]
        return b"".join(out)

    def close(self) -> bytes:
        if self._closed:
            return b""
        out = [self._begin()]
        # Whole sectors, then the remainder: an input ending on a sector boundary
        # (or empty) gets one extra empty data sector, as bkrencode wrote it.
        out.append(self._push(self._outer.close() if self._outer is not None else b""))
        out.append(self._data_sectors(bytes(self._pending), 1))
        self._pending.clear()
        out.append(self._marker_sectors(SectorKind.EOR, self.params.n_eor))
        self._closed = True
        return b"".join(out)

    # -------------------------------------------------------------- internals
    def _begin(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        n_bor = self.params.n_bor
        # 3.101 numbers the BOR -N..-1 and data from 0; 3.3 numbers everything from 0.
        self._number = -n_bor if self.params.format is Format.V3101 else 0
        return self._marker_sectors(SectorKind.BOR, n_bor)

    def _marker_sectors(self, kind: SectorKind, count: int) -> bytes:
        cap = self.params.capacity
        out = []
        for start in range(0, count, _BATCH_SECTORS):
            n = min(_BATCH_SECTORS, count - start)
            data = np.zeros((n, cap), np.uint8)
            out.append(self._emit(data, np.zeros(n, np.int64), np.full(n, int(kind))))
        return b"".join(out)

    def _data_sectors(self, chunk: bytes, count: int) -> bytes:
        cap = self.params.capacity
        data = np.zeros((count, cap), np.uint8)
        flat = np.frombuffer(chunk, np.uint8)
        data.reshape(-1)[: flat.size] = flat
        lengths = np.full(count, cap, np.int64)
        lengths[-1] = flat.size - (count - 1) * cap
        return self._emit(data, lengths, np.full(count, int(SectorKind.DATA)))

    def _emit(self, data: np.ndarray, lengths: np.ndarray, kinds: np.ndarray) -> bytes:
        count = data.shape[0]
        numbers = self._number + np.arange(count, dtype=np.int64)
        self._number += count
        if self.params.format is Format.V3101:
            # 3.101 markers are plain empty sectors; only the number tells BOR from EOR.
            lengths = np.where(kinds == int(SectorKind.DATA), lengths, 0)
            sectors = self.codec.encode_sectors(data, lengths, numbers)
        else:
            sectors = self.codec.encode_sectors(
                data, lengths, numbers, kinds, stale=self._stale
            )
            self._stale = self.codec.stale_area(sectors[-1])
        payloads = gcr.modulate(sectors) if self.params.codec is Codec.EP else sectors
        raw = frame.assemble_fields(self.params, payloads, self.fields_emitted)
        self.fields_emitted += count
        return raw


def encode_recording(
    data: bytes, mode_or_name: ModeParams | str, fmt: str = Format.V3101, *,
    bkrenhanced: bool = False
) -> bytes:
    """Raw stream of one 3.101/3.3 recording of `data`, byte-exact with `bkrencode`."""
    recorder = LegacyRecorder(mode_or_name, fmt, bkrenhanced=bkrenhanced)
    return recorder.write(data) + recorder.close()


@dataclass(frozen=True)
class FormatScore:
    """How well a batch of sectors fits one legacy format (see `score_formats`)."""

    fmt: Format
    decoded: int  # sectors whose codewords decoded and whose header is valid
    plausible: int  # decoded sectors this format could have written
    consistent: int  # sectors with a shape only this format writes (markers, filler)
    contradictory: int  # sectors whose codewords decoded but this format cannot have written

    @property
    def score(self) -> int:
        return self.plausible + self.consistent - self.contradictory


def score_formats(
    name: str, sectors: np.ndarray, erasures: np.ndarray | None = None
) -> dict[str, FormatScore]:
    """Score sectors (N, S) (tape order, after GCR) under 3.101 and under 3.3.

    Both formats share the key table, so the reader finds fields alike and must ask
    the sector layer. In SP modes the RS codes differ and the wrong format decodes
    almost nothing; in EP modes the codes are equal and the headers decide: 3.101
    markers are empty sectors with 0x33 filler and a low nibble of 1, 3.3 markers are
    typed, low nibble 0, all 0x33; each format's data sectors contradict the other's
    header rules (3.3 markers alone look like full 3.101 data sectors, hence the
    bonus for format-specific shapes). A dozen consecutive fields are plenty.
    """
    scores = {}
    for fmt in (Format.V3101, Format.V33):
        codec = LegacySectorCodec(mode(name, fmt))
        decoded, consistent, contradictory = codec.decode_with_evidence(sectors, erasures)
        scores[fmt] = FormatScore(
            fmt,
            decoded=int(decoded.ok.sum()),
            plausible=int((decoded.ok & ~contradictory).sum()),
            consistent=int(consistent.sum()),
            contradictory=int(contradictory.sum()),
        )
    return scores


def detect_format(
    name: str, sectors: np.ndarray, erasures: np.ndarray | None = None
) -> Format | None:
    """3.101 or 3.3 when the sectors clearly favour one, else None (need more)."""
    scores = score_formats(name, sectors, erasures)
    a, b = scores[Format.V3101].score, scores[Format.V33].score
    if a == b or max(a, b) <= 0:
        return None
    return Format.V3101 if a > b else Format.V33

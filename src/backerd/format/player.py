"""The reader: a raw Backer stream in, user bytes, events and statistics out.

Theory of operation. `Player.feed(raw)` finds the fields of the stream by their key
bytes (`sync.FieldSync`: payloads, erasure marks of re-aligned line slips, suspect
marks near key bytes that did not match), then hands them to the `RecordDecoder` of
the stream's format (`record_decoder`: GCR, inner RS with erasure tiers, sequencing,
EP outer codes). Large feeds are cut into slices so the arrays of one step stay small.

Lost user bytes are never skipped: the output keeps their place and a
`SectorLost(sector, offset, length)` event names the range. Only `strict=True` stops,
with a MediumError at the first unrecoverable range (its `output` holds what came
before).

The format is detected from the stream unless forced: 3.102 puts the key byte first in
each group, 3.101 and 3.3 last; the layout whose sector codec decodes sectors wins, and
3.101 vs 3.3 is settled by `legacy.detect_format`. The raw bytes seen while detecting
are kept (bounded) and replayed into the chosen decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backerd.errors import MediumError, UsageError
from backerd.format import legacy
from backerd.format.decode_options import DEFAULT, DecoderOptions
from backerd.format.inner_decode import decode_fields, demodulate, payload_to_sector_mask
from backerd.format.params import (
    FORMATTED_MODES,
    LEGACY_FORMATS,
    Codec,
    Format,
    ModeParams,
    mode,
    parse_format_choice,
)
from backerd.format.record_decoder import (
    DecodeResult,
    EndOfRecord,
    RecordDecoder,
    SectorLost,
)
from backerd.format.sector_codecs import codec_for
from backerd.format.stats import Statistics
from backerd.format.sync import FieldBatch, FieldSync

__all__ = ["EndOfRecord", "FormatDetected", "Player", "PlayerOutput", "SectorLost",
           "identify"]

# Raw bytes decoded per internal step: bounds the arrays of one step.
_SLICE = 1 << 20
# Raw bytes kept while the format is still unknown (older bytes are dropped).
_DETECT_HOLD = 8 << 20
# Decoded sectors that settle the format.
_DETECT_SECTORS = 3


# ---------------------------------------------------------------------------- events
@dataclass(frozen=True)
class FormatDetected:
    fmt: str


@dataclass
class PlayerOutput:
    data: bytes = b""
    events: list = field(default_factory=list)
    end_of_record: bool = False


# ---------------------------------------------------------------------------- player
class UnrecoverableData(MediumError):
    """Strict playback met lost user data; ``output`` holds what was recovered before it."""

    def __init__(self, message: str, output: PlayerOutput) -> None:
        super().__init__(message)
        self.output = output


class Player:
    """Incremental reader of one recording (see the module docstring)."""

    def __init__(
        self, mode_name: str, fmt: str = "auto", *, strict: bool = False,
        bkrenhanced: bool = False, options: DecoderOptions = DEFAULT,
    ) -> None:
        forced = parse_format_choice(fmt)
        self.options = options
        base = mode(mode_name)  # validates the name
        self.mode = mode_name
        self.strict = strict
        self.bkrenhanced = bkrenhanced
        if bkrenhanced and base.codec is not Codec.EP:
            raise UsageError("--bkrenhanced applies to EP modes only")
        self.stats = Statistics()
        self.raw_consumed = 0
        self.fmt: str | None = None
        self.ended = False
        self._raw = base.is_raw
        self._decoder: RecordDecoder | None = None
        self._detector: _Detector | None = None
        if self._raw:
            self.fmt = "raw"
        elif forced is None:
            self._detector = _Detector(mode_name, options)
        else:
            self._start(forced, origin=0)

    @property
    def fields_found(self) -> int:
        return self.stats.fields

    def feed(self, raw: bytes) -> PlayerOutput:
        if self.ended:
            return PlayerOutput(end_of_record=True)
        if self._raw:
            self.raw_consumed += len(raw)
            return PlayerOutput(bytes(raw))
        out = PlayerOutput()
        view = memoryview(raw)
        pieces: list[bytes] = []
        try:
            for start in range(0, len(view), _SLICE):
                self._step(view[start : start + _SLICE], out, pieces, final=False)
                if self.ended:
                    break
        finally:
            out.data = b"".join(pieces)
        return out

    def finish(self) -> PlayerOutput:
        """Decode what is left; without an EOR sector the record stays open."""
        out = PlayerOutput()
        if self.ended or self._raw:
            out.end_of_record = self.ended
            return out
        pieces: list[bytes] = []
        try:
            self._step(memoryview(b""), out, pieces, final=True)
        finally:
            out.data = b"".join(pieces)
        return out

    # ------------------------------------------------------------------ internals
    def _start(self, fmt: str, origin: int) -> None:
        params = mode(self.mode, fmt)
        self.fmt = fmt
        self.stats.start_stream(params.parity_per_codeword, params.key_length,
                                params.geometry.frame_size)
        self._decoder = RecordDecoder(params, bkrenhanced=self.bkrenhanced, origin=origin,
                                      options=self.options)

    def _step(
        self, raw: memoryview, out: PlayerOutput, pieces: list[bytes], *, final: bool
    ) -> None:
        if self._decoder is None:
            det = self._detector
            fmt = det.feed(raw, final=final)
            if fmt is None:
                self.stats.note_format_search(det.fields, det.closest_non_key)
                if not final:
                    self.raw_consumed += len(raw)
                return
            held, origin = det.held()
            self._detector = None
            self._start(fmt, origin)
            out.events.append(FormatDetected(fmt))
            self.raw_consumed = origin
            raw = memoryview(held)
        dec = self._decoder
        result = dec.feed(raw, final=final)
        self.stats.apply(result.stats)
        self._emit(result, out, pieces)
        self.raw_consumed = dec.consumed if dec.ended else self.raw_consumed + len(raw)

    def _emit(self, result: DecodeResult, out: PlayerOutput, pieces: list[bytes]) -> None:
        if self.strict and result.lost:
            first = result.lost[0]
            pieces.append(result.data[: max(first.offset - result.offset, 0)])
            upto = result.events.index(first)
            out.events.extend(result.events[: upto + 1])
            out.data = b"".join(pieces)
            self.ended = True
            raise UnrecoverableData(
                f"unrecoverable data: user bytes {first.offset}..{first.offset + first.length}"
                f" (sector {first.sector})", out)
        pieces.append(result.data)
        out.events.extend(result.events)
        if result.ended:
            out.end_of_record = True
            self.ended = True


# ---------------------------------------------------------------------------- detection
class _Detector:
    """Tells 3.102 from 3.101/3.3 by which sector codec decodes the stream's fields."""

    def __init__(self, mode_name: str, options: DecoderOptions = DEFAULT) -> None:
        self.mode = mode_name
        # The two key layouts: 3.102 (key byte first), 3.101/3.3 (key byte last).
        new, old = mode(mode_name, Format.V3102), mode(mode_name, Format.V3101)
        self._new = _Probe(new, options)
        self._old = _Probe(old)
        self._held: list[bytes] = []
        self._held_len = 0
        self._origin = 0

    def feed(self, raw: memoryview, *, final: bool) -> str | None:
        self._held.append(bytes(raw))
        self._held_len += len(raw)
        ok_new = self._new.feed(raw, final=final)
        if ok_new >= _DETECT_SECTORS:
            return Format.V3102
        self._old.feed(raw, final=final)
        if self._old.sectors is not None and self._old.decoded >= 1:
            got = legacy.detect_format(self.mode, self._old.sectors, self._old.erasures)
            if got is not None and self._old.decoded >= _DETECT_SECTORS:
                return got
            if final and got is not None:
                return got
        if final and ok_new:
            return Format.V3102
        while self._held_len > _DETECT_HOLD and len(self._held) > 1:
            dropped = self._held.pop(0)
            self._held_len -= len(dropped)
            self._origin += len(dropped)
        return None

    def held(self) -> tuple[bytes, int]:
        return b"".join(self._held), self._origin

    @property
    def fields(self) -> int:
        """The most fields either key layout has found so far."""
        return max(self._new.fields, self._old.fields)

    @property
    def closest_non_key(self) -> int:
        return max(self._new.closest_non_key, self._old.closest_non_key)


class _Probe:
    """Key search and sector decode of one key layout, counting decodable sectors."""

    _KEEP = 24  # sectors kept for the 3.101/3.3 vote

    def __init__(self, params: ModeParams, options: DecoderOptions = DEFAULT) -> None:
        self.params = params
        self.options = options
        self.sync = FieldSync(params)
        self.decoded = 0
        self.fields = 0  # fields found by this layout's key search
        self.closest_non_key = 0
        self.sectors: np.ndarray | None = None
        self.erasures: np.ndarray | None = None
        # The 3.102 layout has one codec; the legacy layout is voted on by both.
        self._codec = None if params.format.is_legacy else codec_for(params)

    def feed(self, raw: memoryview, *, final: bool) -> int:
        fields = self.sync.feed(raw)
        if final:
            fields = FieldBatch.concat([fields, self.sync.finish()], self.sync.payload_size)
        self.fields += len(fields)
        self.closest_non_key = max(self.closest_non_key, fields.closest_non_key)
        if len(fields) == 0:
            return self.decoded
        if self._codec is not None:
            dec, _ = decode_fields(self._codec, self.sync, fields, self.options)
            self.decoded += int(dec.ok.sum())
        else:
            # Both legacy codecs are tried on the widest erasures (the vote needs no
            # retries: a dozen decodable sectors settle it).
            sectors, erasures = demodulate(self.params, fields)
            rows = np.flatnonzero(fields.missing.any(axis=1))
            if rows.size:
                around = self.sync.segments_around(fields.missing[rows])
                if self.params.codec is Codec.EP:
                    around = payload_to_sector_mask(around, sectors.shape[1])
                erasures[rows] |= around
            keep = slice(-self._KEEP, None)
            if self.sectors is None:
                self.sectors, self.erasures = sectors[keep], erasures[keep]
            else:
                self.sectors = np.concatenate([self.sectors, sectors])[keep]
                self.erasures = np.concatenate([self.erasures, erasures])[keep]
            best = 0
            for fmt in LEGACY_FORMATS:
                dec = codec_for(mode(self.params.name, fmt)).decode_sectors(
                    self.sectors, self.erasures)
                best = max(best, int(dec.ok.sum()))
            self.decoded = best
        return self.decoded


# ---------------------------------------------------------------------------- diagnosis
def identify(raw: bytes, *, limit: int = 1 << 20) -> list[tuple[str, str, int]]:
    """Which (mode, format) decode sectors from the start of `raw`, best first.

    For error messages ("this stream is in another mode"): each formatted mode and key
    layout is searched on at most `limit` bytes and its sectors decoded.
    """
    raw = bytes(raw[:limit])
    found = []
    for name in FORMATTED_MODES:
        for layout in (Format.V3102, Format.V3101):
            sync = FieldSync(mode(name, layout))
            fields = FieldBatch.concat([sync.feed(raw), sync.finish()], sync.payload_size)
            if len(fields) == 0:
                continue
            fmts = LEGACY_FORMATS if layout.is_legacy else (Format.V3102,)
            for fmt in fmts:
                params = mode(name, fmt)
                sectors, erasures = demodulate(params, fields)
                dec = codec_for(params).decode_sectors(sectors, erasures)
                if dec.ok.any():
                    found.append((name, fmt, int(dec.ok.sum())))
    return sorted(found, key=lambda f: -f[2])

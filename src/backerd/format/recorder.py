"""Incremental writer of one 3.102 recording (spec 6.6, 7, 8, 16).

Recording = BOR (N_bor empty sectors numbered -N_bor..-1), data sectors numbered from 0,
EOR (fps empty sectors numbered onward), and one pad field of 0x33 payload if the field
count is odd. One sector per field. In EP modes the user bytes pass through the ecc2
outer code first; since a group's data area is the user bytes themselves, its data
sectors 0..233 are emitted as soon as their bytes arrive, and only the sector holding
the length field and the 20 parity sectors wait for the end of the group. Memory is
bounded by one group of user bytes whatever the recording length.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from backerd.errors import UsageError
from backerd.format import ecc2, frame, gcr
from backerd.format.params import (
    GROUP_DATA_SECTORS,
    Codec,
    Format,
    ModeParams,
    group_capacity,
    mode,
)
from backerd.format.sector import Sector3102Codec

# Sectors encoded per numpy batch: large enough to amortise, small enough for the cache.
_BATCH_SECTORS = 2048


def _join(parts: list[bytes]) -> bytes:
    """Concatenation that returns a lone non-empty part itself instead of copying it."""
    parts = [part for part in parts if part]
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _params(mode_or_name: ModeParams | str, fmt: str) -> ModeParams:
    params = mode_or_name if isinstance(mode_or_name, ModeParams) else mode(mode_or_name, fmt)
    if params.format.is_legacy:
        raise UsageError(
            f"format {params.format} cannot be written; only 3.102 is written"
        )
    return params


class _FieldWriter:
    """Sectors -> raw fields, counting fields so odd/even alternate correctly."""

    def __init__(self, params: ModeParams) -> None:
        self.params = params
        self.codec = Sector3102Codec(params)
        self.fields = 0

    def sectors(self, data: np.ndarray, lengths: np.ndarray, numbers: np.ndarray) -> bytes:
        out = []
        for start in range(0, data.shape[0], _BATCH_SECTORS):
            stop = min(data.shape[0], start + _BATCH_SECTORS)
            sectors = self.codec.encode_sectors(
                data[start:stop], lengths[start:stop], numbers[start:stop]
            )
            out.append(self.payloads(gcr.modulate(sectors) if self.params.codec is Codec.EP
                                     else sectors))
        return _join(out)

    def payloads(self, payloads: np.ndarray) -> bytes:
        raw = frame.assemble_fields(self.params, payloads, self.fields)
        self.fields += payloads.shape[0]
        return raw

    def empty_sectors(self, first_number: int, count: int) -> bytes:
        cap = self.params.capacity
        return self.sectors(
            np.zeros((count, cap), np.uint8), np.zeros(count, np.int64),
            first_number + np.arange(count, dtype=np.int64),
        )


@cache
def _bor(params: ModeParams) -> bytes:
    """The BOR fields of every recording of this mode (always fields 0..N_bor-1)."""
    writer = _FieldWriter(params)
    return writer.empty_sectors(-params.n_bor, params.n_bor)


class Recorder:
    """Incremental writer of one 3.102 recording; see docs/internals.md (format)."""

    def __init__(
        self, mode_or_name: ModeParams | str, fmt: str = Format.V3102, *, batch_bytes: int = 0
    ) -> None:
        """``batch_bytes`` > 0 gathers writes until that many user bytes are held, so
        many small writes cost what one large one does (numpy work is per call); the
        default 0 encodes every sector as soon as its bytes arrive."""
        self.params = _params(mode_or_name, fmt)
        self._closed = False
        self._started = False
        if batch_bytes < 0:
            raise ValueError("batch_bytes must not be negative")
        self._batch_bytes = batch_bytes
        self._inbox = bytearray()  # user bytes gathered for the next batch
        if self.params.is_raw:
            return
        self._writer = _FieldWriter(self.params)
        self._cap = self.params.capacity
        self._pending = bytearray()  # SP: < C bytes; EP: the current group's user bytes
        self._number = 0  # next data sector number
        self._group_sent = 0  # EP: data sectors of the current group already emitted

    @property
    def fields_emitted(self) -> int:
        if self.params.is_raw:
            return 0
        return self._writer.fields

    def write(self, data: bytes | bytearray) -> bytes:
        if self._closed:
            raise ValueError("write to a closed Recorder")
        if self.params.is_raw:
            return bytes(data)
        out = [self._begin()]
        if self._batch_bytes:
            self._inbox += data
            if len(self._inbox) < self._batch_bytes:
                return out[0]
            data, self._inbox = self._inbox, bytearray()
        if data:
            out.append(self._encode(data))
        return _join(out)

    def _encode(self, data: bytes | bytearray | memoryview) -> bytes:
        if self.params.codec is Codec.EP:
            return self._write_ep(memoryview(data).cast("B"))
        return self._write_sp(data)

    def close(self) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        if self.params.is_raw:
            return b""
        out = [self._begin()]
        if self._inbox:
            out.append(self._encode(self._inbox))
            self._inbox = bytearray()
        if self.params.codec is Codec.EP:
            if self._pending:
                out.append(self._finish_group())
        elif self._pending:
            n = len(self._pending)
            data = np.zeros((1, self._cap), np.uint8)
            data[0, :n] = np.frombuffer(bytes(self._pending), np.uint8)
            out.append(self._data(data, np.array([n], np.int64)))
            self._pending.clear()
        out.append(self._writer.empty_sectors(self._number, self.params.n_eor))
        self._number += self.params.n_eor
        if self._writer.fields % 2:
            out.append(self._writer.payloads(frame.pad_payloads(self.params, 1)))
        return b"".join(out)

    # ------------------------------------------------------------------ helpers
    def _begin(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        bor = _bor(self.params)
        self._writer.fields += self.params.n_bor
        return bor

    def _data(self, data: np.ndarray, lengths: np.ndarray) -> bytes:
        count = data.shape[0]
        numbers = self._number + np.arange(count, dtype=np.int64)
        self._number += count
        return self._writer.sectors(data, lengths, numbers)

    def _full_sectors(self, chunk: bytes | memoryview) -> bytes:
        data = np.frombuffer(chunk, np.uint8).reshape(-1, self._cap)
        return self._data(data, np.full(data.shape[0], self._cap, np.int64))

    def _write_sp(self, data: bytes) -> bytes:
        cap = self._cap
        view = memoryview(data).cast("B")
        held = len(self._pending)
        whole = (held + len(view)) // cap * cap
        if not whole:
            self._pending += view
            return b""
        # One batch for the held bytes and every whole sector of this write.
        chunk = self._pending + view[: whole - held] if held else view[:whole]
        rest = view[whole - held :]
        out = self._full_sectors(chunk)
        self._pending = bytearray(rest)
        return out

    def _write_ep(self, view: memoryview) -> bytes:
        cap = self._cap
        cg = group_capacity(cap)
        # Sectors that became ready in this write, encoded in one batch at the end.
        ready_rows: list[np.ndarray] = []
        while len(view):
            take = min(cg - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) == cg:
                ready_rows.append(self._group_rest())
                continue
            # Data sectors before the one holding the length field only carry user bytes.
            ready = min(len(self._pending) // cap, GROUP_DATA_SECTORS - 1)
            if ready > self._group_sent:
                # A copy: a buffer export would stop the bytearray from growing.
                chunk = self._pending[self._group_sent * cap : ready * cap]
                ready_rows.append(np.frombuffer(chunk, np.uint8).reshape(-1, cap))
                self._group_sent = ready
        if not ready_rows:
            return b""
        rows = np.concatenate(ready_rows) if len(ready_rows) > 1 else ready_rows[0]
        return self._data(rows, np.full(rows.shape[0], cap, np.int64))

    def _group_rest(self) -> np.ndarray:
        """Encode the current group; its sectors not yet emitted; start a new group."""
        group = ecc2.encode_group(bytes(self._pending), self._cap)
        rest = group[self._group_sent :]
        self._pending.clear()
        self._group_sent = 0
        return rest

    def _finish_group(self) -> bytes:
        rest = self._group_rest()
        return self._data(rest, np.full(rest.shape[0], self._cap, np.int64))


def encode_recording(data: bytes, mode_or_name: ModeParams | str, fmt: str = Format.V3102) -> bytes:
    """Raw stream of one whole recording of ``data``."""
    recorder = Recorder(mode_or_name, fmt)
    return recorder.write(data) + recorder.close()

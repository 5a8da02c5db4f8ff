"""Seeded playback noise for the simulated VCR (off by default).

Theory of operation: a worn tape played on a tired deck damages fields in a few typical
ways, each modelled per field with its own probability:

* byte errors: isolated bytes changed (noise, tape grain);
* dropouts: a burst of consecutive bytes lost (oxide shed) and read as 0x00;
* line slips: the PLL drops a line or repeats one, so the rest of the field moves by one
  line (``bytes_per_line``) and the field gets shorter or longer;
* blank gaps: whole fields with no signal (crease, splice, head clog).

Noise is a pure function of (seed, slot, pass, field bytes): the same cassette played
the same way gives the same damage, and playing a slot again (a new pass) gives new
damage, as re-reading a real tape does. Nothing is written back to the cassette.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from backerd.errors import UsageError

_SALT_ERRORS, _SALT_DROPOUT, _SALT_SLIP, _SALT_GAP = 1, 2, 3, 4


def bytes_per_line(field_length: int) -> int:
    """Backer line width for a field of this many bytes (low density 4, high 10)."""
    return 10 if field_length > 2000 else 4


@dataclass(frozen=True)
class NoiseModel:
    seed: int = 0
    errors: float = 0.0  # mean byte errors per field (Poisson)
    dropout: float = 0.0  # probability that a field has a dropout burst
    dropout_length: int = 40  # mean burst length, bytes (geometric)
    slip: float = 0.0  # probability that a field has a line slip
    gap: float = 0.0  # probability that a blank gap starts at a field
    gap_length: int = 1  # fields per blank gap

    def __post_init__(self) -> None:
        for name in ("errors", "dropout", "slip", "gap"):
            value = getattr(self, name)
            if value < 0 or (name != "errors" and value > 1):
                raise UsageError(f"noise {name}={value} is out of range")
        if self.dropout_length < 1 or self.gap_length < 1:
            raise UsageError("noise dropout_length and gap_length must be at least 1")

    @property
    def enabled(self) -> bool:
        return bool(self.errors or self.dropout or self.slip or self.gap)

    @classmethod
    def parse(cls, text: str) -> NoiseModel:
        """``"seed=3,errors=2,dropout=0.01,slip=0.001,gap=0.0005"`` -> NoiseModel."""
        known = {f.name: f.type for f in fields(cls)}
        values: dict[str, float | int] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in known:
                raise UsageError(
                    f"bad noise setting {item!r}; use key=value with keys {', '.join(known)}"
                )
            try:
                is_int = key in ("seed", "dropout_length", "gap_length")
                values[key] = int(value) if is_int else float(value)
            except ValueError:
                raise UsageError(f"bad noise value {item!r}") from None
        return cls(**values)  # type: ignore[arg-type]

    def _rng(self, slot: int, pass_no: int, salt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed & 0xFFFFFFFF, slot, pass_no, salt])

    def in_gap(self, slot: int, pass_no: int) -> bool:
        if not self.gap:
            return False
        for back in range(self.gap_length):
            if slot - back >= 0 and self._rng(slot - back, pass_no, _SALT_GAP).random() < self.gap:
                return True
        return False

    def apply(self, slot: int, pass_no: int, field: bytes | None) -> bytes | None:
        """The field as played back on pass ``pass_no``."""
        if field is None or not self.enabled:
            return field
        if self.in_gap(slot, pass_no):
            return None
        buf = np.frombuffer(field, dtype=np.uint8).copy()
        n = len(buf)
        if self.errors and n:
            rng = self._rng(slot, pass_no, _SALT_ERRORS)
            count = min(int(rng.poisson(self.errors)), n)
            if count:
                where = rng.choice(n, size=count, replace=False)
                buf[where] ^= rng.integers(1, 256, size=count, dtype=np.uint8)
        if self.dropout and n:
            rng = self._rng(slot, pass_no, _SALT_DROPOUT)
            if rng.random() < self.dropout:
                length = min(int(rng.geometric(1 / self.dropout_length)), n)
                start = int(rng.integers(0, n - length + 1))
                buf[start : start + length] = 0
        if self.slip and n:
            rng = self._rng(slot, pass_no, _SALT_SLIP)
            if rng.random() < self.slip:
                bpl = bytes_per_line(n)
                lines = n // bpl
                if lines > 1:
                    line = int(rng.integers(0, lines))
                    a, b = line * bpl, (line + 1) * bpl
                    if rng.random() < 0.5:
                        buf = np.concatenate([buf[:a], buf[b:]])  # dropped line
                    else:
                        buf = np.concatenate([buf[:b], buf[a:]])  # repeated line
        return buf.tobytes()

"""A one-line progress display on a terminal's stderr, shared by the stream commands."""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Callable

# Show progress only for inputs that take a noticeable time (or of unknown size, once
# that much has been read).
PROGRESS_FROM = 8 << 20


class Progress:
    """At most 5 updates a second; nothing at all unless stderr is a terminal."""

    def __init__(self, label: str, total: int | None, enabled: bool = True) -> None:
        self.label = label
        self.total = total
        self.enabled = enabled and sys.stderr.isatty()
        self._last = 0.0
        self._shown = False

    def update(self, done: int, written: int) -> None:
        if not self.enabled or done < PROGRESS_FROM:
            return
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        text = f"{self.label}: {done / 1e6:.1f} MB in, {written / 1e6:.1f} MB out"
        if self.total:
            text += f" ({100 * done // self.total}%)"
        sys.stderr.write("\r" + text + "\x1b[K")
        sys.stderr.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def input_size(stream: object) -> int | None:
    """Size of a regular file behind ``stream``; None for pipes, terminals, sockets."""
    try:
        st = os.fstat(stream.fileno())  # type: ignore[attr-defined]
    except (OSError, AttributeError, ValueError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Bar:
    """A progress bar with rate and ETA for counted work (fields, bytes, recordings).

    Like ``Progress``: at most 5 updates a second and nothing unless stderr is a terminal.
    """

    WIDTH = 30

    def __init__(self, label: str, total: int, unit: str = "", enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.total = max(total, 0)
        self.unit = unit
        self.enabled = enabled and sys.stderr.isatty()
        self._clock = clock
        self._start = clock()
        self._last = -1.0
        self._shown = False

    def text(self, done: int, now: float) -> str:
        elapsed = max(now - self._start, 1e-9)
        rate = done / elapsed
        fraction = min(done / self.total, 1.0) if self.total else 0.0
        filled = int(fraction * self.WIDTH)
        eta = _duration((self.total - done) / rate) if rate > 0 and self.total else "?"
        return (f"{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                f"{100 * fraction:3.0f}% {rate:,.0f} {self.unit}/s ETA {eta}")

    def update(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        if not self.enabled:
            return
        now = self._clock()
        if now - self._last < 0.2:
            return
        self._last = now
        sys.stderr.write("\r" + self.text(done, now) + "\x1b[K")
        sys.stderr.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()

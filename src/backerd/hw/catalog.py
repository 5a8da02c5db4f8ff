"""The recording catalog of a real VCR's cassette: a sidecar file in the state directory.

Theory of operation: on real tape only the signal is recorded, so what the medium knows
about the recordings (start, length, mode, block sizes) is kept beside the daemon's
state, one JSON file per cassette (``<state_dir>/<label>.catalog.json``). A cassette has
no identity a card can read, so the operator names it (the label); the default label is
the unit's cassette name. Every change is written to a temporary file, fsync'ed and
renamed over the old one, so a crash leaves the old or the new catalog, never a torn one.

A recording being written is journaled like in the cassette image. Unlike the image, the
sidecar cannot look at the tape: a journal entry found at load (the daemon died while
recording) is reported as an ``Interrupted`` recording of unknown length, which the
medium can only overwrite; its user data is not recovered (on the emulated setup the
cassette image carries the catalog and recovery works).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from backerd.errors import UsageError
from backerd.vcr.base import Interrupted, Recording

VERSION = 1


class SidecarCatalog:
    """``RecordingCatalog`` in a JSON file; durable on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._recordings: list[Recording] = []
        self._open: dict | None = None
        if path.exists():
            try:
                data = json.loads(path.read_text())
                if data.get("version") != VERSION:
                    raise ValueError("version")
                self._recordings = [Recording.from_json(r) for r in data["recordings"]]
                self._open = data.get("open")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise UsageError(f"{path}: damaged catalog ({exc}); move it away to start "
                                 "a new one (the tape is not changed)") from None

    @property
    def recordings(self) -> tuple[Recording, ...]:
        return tuple(self._recordings)

    @property
    def interrupted(self) -> Interrupted | None:
        o = self._open
        return None if o is None else Interrupted(int(o["start"]), 0, o["mode"], o["fmt"])

    def flush(self) -> None:
        """Every change is saved as it is made; only a new cassette's empty catalog is
        written here, so that its name is known from now on."""
        if not self.path.exists():
            self._save()

    def _save(self) -> None:
        data = {"version": VERSION, "recordings": [r.to_json() for r in self._recordings],
                "open": self._open}
        tmp = self.path.with_name(f".{self.path.name}.new")
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        with contextlib.suppress(OSError):
            dfd = os.open(self.path.parent, os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)

    def _kept(self, slot: int, index: int | None) -> list[Recording]:
        keep = [r for r in self._recordings if r.end <= slot]
        return keep if index is None else keep[:index]

    def begin_recording(self, start: int, mode: str, fmt: str = "3.102", *, keep: int = 0,
                        index: int | None = None) -> None:
        self._recordings = self._kept(start, index)
        self._open = {"start": start, "mode": mode, "fmt": fmt}
        self._save()

    def commit_recording(self, recording: Recording) -> None:
        if self._recordings and recording.start < self._recordings[-1].end:
            raise ValueError(f"recording {recording} overlaps the committed ones")
        self._recordings.append(recording)
        self._open = None
        self._save()

    def replace_recording(self, index: int, recording: Recording) -> None:
        old = self._recordings[index]
        if (recording.start, recording.fields) != (old.start, old.fields):
            raise ValueError("replace_recording may not move a recording")
        self._recordings[index] = recording
        self._save()

    def forget_interrupted(self) -> None:
        if self._open is not None:
            self._open = None
            self._save()

    def discard_from(self, slot: int, *, index: int | None = None) -> None:
        keep = self._kept(slot, index)
        if len(keep) != len(self._recordings) or self._open is not None:
            self._recordings = keep
            self._open = None
            self._save()

    def signal_end(self) -> int:
        """End of the last committed recording (all a sidecar knows of the signal)."""
        return self._recordings[-1].end if self._recordings else 0

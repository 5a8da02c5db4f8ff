"""Archives that span cassettes: changing the cassette in the middle of a job's archive.

Theory of operation. A job pipes one tar stream to the tape in 10 KiB blocks. At the
early-warning point the node refuses a block with ENOSPC (as st does, nothing of that
block is on tape); the job then closes the node (the filemark ends the piece), has the
daemon's cassette changer eject the cassette and load the next one, and writes the
refused block and the rest of the stream at end of data of the new cassette. Each
cassette holds one tape file of the archive (a ``Piece``, in volume order); the pieces
read back one after the other are the archive exactly as tar wrote it, so a restore
feeds them in order to one ``tar --extract`` (by hand: ``cat`` the tape files into
tar). The changer is the one ``backerd next-volume`` drives, through the same control
requests (``eject``, ``insert``, ``volume``):

* with the job's ``next_cassette`` pattern, it inserts the image it names for the volume
  (``$TAR_VOLUME`` replaced by the volume number, as tar does for ``-F``), creating a
  missing one like the cassette before (simulated VCR; a real deck prompts the operator);
* without it, it waits (``change_timeout``) until an operator inserts one
  (``backerd deck insert``).

The new cassette is judged by ``catalog.volumes.volume_refusal``: it must be another
cassette and writable. The archive goes after whatever the cassette holds, so backups
still inside their retention on it are never overwritten and do not refuse it.

``backerd jobs`` says how many cassettes the next run takes: ``size_estimate`` (the
last run at the same level) against what the loaded cassette and blank ones hold.

``volume_image``, ``size_estimate`` and ``run_cassettes`` are pure; ``ControlChanger``
is the thin edge.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from backerd.catalog.volumes import VolumeFacts, cassettes_needed, volume_refusal
from backerd.daemon.control import ask
from backerd.errors import PreflightFailed
from backerd.jobs.records import BackupRecord, order_key

VOLUME_VARIABLE = "$TAR_VOLUME"
POLL = 0.5  # s between looks at the deck while waiting for a cassette


def volume_image(pattern: str, volume: int) -> str:
    """The cassette ``next_cassette`` names for volume ``volume`` (from 1)."""
    return pattern.replace("${TAR_VOLUME}", str(volume)).replace(VOLUME_VARIABLE, str(volume))


def size_estimate(records: Iterable[BackupRecord], job: str, level: int) -> int | None:
    """What a run of ``job`` at ``level`` will write: the bytes of the last run written
    at that level (None: there was none)."""
    sizes = [r.bytes for r in sorted(records, key=order_key)
             if r.job == job and r.level == level and r.result == "written" and r.bytes]
    return sizes[-1] if sizes else None


def run_cassettes(estimate: int | None, left: int | None, blank: int | None) -> int | None:
    """Cassettes a run of ``estimate`` bytes takes, starting on the loaded cassette with
    ``left`` bytes before its early-warning point, then blank ones of ``blank`` bytes;
    None when something is not known."""
    if estimate is None or left is None or blank is None:
        return None
    return cassettes_needed(estimate, left, blank)


@runtime_checkable
class Changer(Protocol):
    """Puts the next cassette in the unit while the node is closed; its facts."""

    def change(self, volume: int, previous: str | None) -> VolumeFacts: ...


class ControlChanger:
    """``Changer`` through the daemon's control socket (``eject``/``insert``/``volume``)."""

    def __init__(self, socket: Path, unit: int, pattern: str, timeout: float,
                 say: Callable[[str], None] | None = None) -> None:
        self.socket = socket
        self.unit = unit
        self.pattern = pattern
        self.timeout = timeout
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))

    def facts(self) -> VolumeFacts:
        return VolumeFacts.from_json(ask(self.socket, {"request": "volume",
                                                       "unit": self.unit}))

    def eject(self) -> None:
        if self.facts().loaded:
            ask(self.socket, {"request": "eject", "unit": self.unit}, timeout=self.timeout)

    def wait_loaded(self, why: str) -> VolumeFacts:
        self.say(why)
        deadline = time.monotonic() + self.timeout
        while not (facts := self.facts()).loaded:
            if time.monotonic() > deadline:
                raise PreflightFailed(f"no cassette was inserted into unit {self.unit} "
                                      f"within {self.timeout:g} s")
            time.sleep(POLL)
        return facts

    def change(self, volume: int, previous: str | None) -> VolumeFacts:
        self.eject()
        if self.pattern:
            image = volume_image(self.pattern, volume)
            ask(self.socket, {"request": "insert", "unit": self.unit, "new": True,
                              "prompt": True, "image": image}, timeout=self.timeout)
            facts = self.facts()
        else:
            facts = self.wait_loaded(
                f"backerd backup: the cassette in unit {self.unit} is full: insert the next "
                f"cassette (volume {volume}) with: backerd deck insert --unit {self.unit} "
                "IMAGE (a real deck: the cassette's NAME)")
        refusal = volume_refusal(previous, facts, writing=True, force=True)
        if refusal is not None:
            raise PreflightFailed(f"unit {self.unit}: volume {volume}: {refusal}")
        self.say(f"backerd backup: unit {self.unit}: volume {volume} is {facts.describe()}")
        return facts

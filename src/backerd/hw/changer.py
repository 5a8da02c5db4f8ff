"""Changing cassettes on a deck driven through a Backer card (real or emulated).

Theory of operation. Ejecting rewinds and presses EJECT through the unit's VCR control,
as ``mt offline`` does: an operator is prompted and acknowledges (manual control), lircd
sends the EJECT key (LIRC), the emulated VCR flushes its image. Inserting is always a
person's job on a real deck: either the operator says a cassette is in (``backerd deck
insert --unit N NAME``), or the daemon asks for one (``next-volume --insert NAME``):
the operator is prompted ("insert cassette NAME into the VCR of unit N") and the
insert waits for ``backerd deck ready``. Under LIRC the prompts come from a manual
control kept for that purpose (``prompter``), which the ``deck ready|cancel`` requests
reach like any manual control.

A card cannot tell one cassette from another, so the cassette is *named* on insert
and its recording catalog follows the name: on a real card the sidecar file
``<state_dir>/<NAME>.catalog.json`` (``SidecarSlot``); on the emulated card the
cassette image itself (``ImageSlot``, which takes an image path like the simulated
VCR, ``--new`` creating it). A slot turns the name into the ``TapeInfo`` the
``CardDeck`` records with, and into the cassette's identity for ``next-volume``.
"""

from __future__ import annotations

import errno
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from backerd.catalog.store import unlabelled_uuid
from backerd.catalog.volumes import VolumeFacts, holds_unexpired
from backerd.daemon.changer import MediaChangeAware, facts_reply
from backerd.errors import BackerError, TapeError, UsageError
from backerd.hw.catalog import SidecarCatalog
from backerd.hw.deck import CardDeck, TapeInfo
from backerd.medium.backer import BackerMedium
from backerd.vcr.manual import ManualControl
from backerd.vcr.sim import Cassette

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class CassetteSlot(Protocol):
    """Where a named cassette's recording catalog lives."""

    def identity(self) -> str: ...

    def swap(self, name: str, *, new: bool, standard: str | None,
             length: str | None) -> TapeInfo: ...

    def describe(self) -> str: ...


class SidecarSlot:
    """A real cassette: its catalog is ``<state_dir>/<name>.catalog.json``."""

    def __init__(self, state_dir: Path, name: str, info: TapeInfo) -> None:
        self.state_dir = state_dir
        self.name = name
        self.info = info

    @property
    def path(self) -> Path:
        return self.state_dir / f"{self.name}.catalog.json"

    def identity(self) -> str:
        return unlabelled_uuid(f"sidecar:{self.path}")

    def describe(self) -> str:
        return f"cassette {self.name!r}"

    def swap(self, name: str, *, new: bool, standard: str | None,
             length: str | None) -> TapeInfo:
        if not _NAME.fullmatch(name):
            raise UsageError(f"name the cassette with letters, digits, '.', '_' or '-' (it "
                             f"names its catalog file), not {name!r}")
        path = self.state_dir / f"{name}.catalog.json"
        if not path.exists() and not new:
            raise UsageError(f"no catalog of a cassette {name!r} in {self.state_dir} (use "
                             "--new for a cassette used here for the first time)")
        catalog = SidecarCatalog(path)
        catalog.flush()  # a new cassette's name is known from now on
        self.name = name
        old = self.info
        self.info = TapeInfo(old.standard, old.fps, old.length, catalog, lambda: False,
                             catalog.signal_end)
        return self.info


class ImageSlot:
    """The emulated card's cassette: an image in the emulated VCR."""

    def __init__(self, vcr: Any, lock: threading.RLock) -> None:
        self.vcr = vcr  # hw.emu.vcr.EmuVcr (its cassette is swapped under the lock)
        self.lock = lock

    def identity(self) -> str:
        return unlabelled_uuid(str(Path(self.vcr.cassette.path).resolve()))

    def describe(self) -> str:
        return f"cassette {self.vcr.cassette.path}"

    def swap(self, name: str, *, new: bool, standard: str | None,
             length: str | None) -> TapeInfo:
        from backerd.hw.emu.setup import tape_info

        image = Path(name)
        old: Cassette = self.vcr.cassette
        if not image.exists():
            if not new:
                raise UsageError(f"no cassette image at {image} (use --new to create it)")
            Cassette.create(image, standard=standard or old.standard,
                            length=length or old.length_name).close()
        cassette = Cassette.open(image) if Path(old.path).resolve() != image.resolve() else old
        if cassette.fps != old.fps:
            if cassette is not old:
                cassette.close()
            raise UsageError(f"{image} is {cassette.standard.upper()}, the unit's card runs "
                             f"{old.standard.upper()}")
        with self.lock:
            self.vcr.cassette = cassette
            self.vcr.position = 0
        if cassette is not old:
            old.close()
        return tape_info(cassette, self.lock)


class CardChanger:
    """``daemon.changer.CassetteChanger`` of a card unit."""

    def __init__(self, unit: int, deck: CardDeck, medium: BackerMedium,
                 drive: MediaChangeAware, slot: CassetteSlot, *,
                 prompter: ManualControl | None, log: Callable[[str], None]) -> None:
        self.unit = unit
        self.deck = deck
        self.medium = medium
        self.drive = drive
        self.slot = slot
        self.prompter = prompter  # None: the VCR's buttons press themselves (emulator)
        self.log = log

    def stop_waiting(self) -> None:
        if self.prompter is not None:
            self.prompter.stopping()

    def facts(self) -> VolumeFacts:
        if not self.deck.loaded:
            return VolumeFacts(loaded=False)
        recordings = len(self.deck.catalog.recordings)
        return VolumeFacts(loaded=True, identity=self.slot.identity(),
                           recordings=recordings,
                           holds_unexpired=holds_unexpired(None, None, recordings),
                           write_protected=self.deck.write_protected)

    def eject(self) -> dict[str, Any]:
        if not self.deck.loaded:
            raise TapeError(f"unit {self.unit}: no cassette to eject", errno=errno.ENOMEDIUM)
        what = self.slot.describe()
        try:
            self.medium.rewind()
            self.medium.unload()  # presses EJECT through the VCR control
        finally:
            self.drive.media_changed()
        self.log(f"ejected {what}")
        return {"ejected": what, "message": f"unit {self.unit}: ejected {what}"}

    def insert(self, image: Path | None, *, new: bool = False, standard: str | None = None,
               length: str | None = None, prompt: bool = False) -> dict[str, Any]:
        if self.deck.loaded:
            raise TapeError(f"unit {self.unit} holds {self.slot.describe()}: eject it first",
                            errno=errno.EBUSY)
        if image is None:
            raise UsageError("name the cassette to insert (it names its catalog)")
        name = str(image) if isinstance(self.slot, ImageSlot) else image.name
        if prompt and self.prompter is not None:
            self.prompter.request(f"insert cassette {image.name} (rewound) into the VCR of "
                                  f"unit {self.unit}")
        try:
            self.deck.info = self.slot.swap(name, new=new, standard=standard, length=length)
            self.medium.load()
        except BackerError:
            self.drive.media_changed()
            raise
        self.drive.media_changed()
        facts = self.facts()
        message = f"unit {self.unit}: inserted {self.slot.describe()}: {facts.describe()}"
        self.log(message.split(": ", 1)[1])
        return facts_reply(facts, message)

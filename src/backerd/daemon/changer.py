"""Changing cassettes while the daemon runs: eject, insert, and what the new one holds.

Theory of operation. A unit's cassette changes under the unit lock, in its worker
thread, and only while neither node is open (EBUSY otherwise: a program in the middle
of an archive must not lose its tape). Ejecting rewinds, then unloads, as ``mt
offline`` does; inserting loads the new cassette and reads its label (the log and the
reply say whether it is labelled, unlabelled with recordings, or blank). The Drive is
told of the change (``Drive.media_changed``), so the next open starts a new session at
BOT, and opening a node with no cassette fails with ENOMEDIUM, as st does.

``CassetteChanger`` is the contract the control socket's ``eject``, ``insert`` and
``volume`` requests use; ``SimChanger`` implements it for the simulated VCR, where a
cassette is an image file: inserting names the image (``--new`` creates a missing one,
by default with the standard and length of the cassette ejected last), ejecting closes
it and releases its lock. Real decks have their own changer (``hw.changer``).
``volume_facts`` is what ``backerd next-volume`` judges a new volume by (rules in
``catalog.volumes``).
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from backerd.catalog.store import Catalog, unlabelled_uuid
from backerd.catalog.volumes import VolumeFacts, holds_unexpired
from backerd.errors import BackerError, TapeError, UsageError
from backerd.format.params import standard_mismatch
from backerd.jobs import history
from backerd.medium.labelled import CataloguedMedium, LabelledDeck
from backerd.tape.medium import Medium
from backerd.vcr.sim import Cassette, SimDeck


@runtime_checkable
class MediaChangeAware(Protocol):
    """A Drive told when the cassette changed between its calls (tape.drive.Drive)."""

    def media_changed(self) -> None: ...


@runtime_checkable
class CassetteChanger(Protocol):
    """Eject and insert for one unit; every call runs under the unit lock."""

    def eject(self) -> dict[str, Any]: ...

    def insert(self, image: Path | None, *, new: bool = False, standard: str | None = None,
               length: str | None = None, prompt: bool = False) -> dict[str, Any]:
        """Load ``image`` (a name on a real deck); ``prompt``: ask the operator to insert
        it first (the daemon asks for it), else they say it is in already."""
        ...

    def facts(self) -> VolumeFacts: ...


def refuse_while_open(unit: int, open_node: str | None, drive_open: bool, what: str) -> None:
    """EBUSY when a node holds the drive open (a program is using the tape)."""
    if open_node is not None or drive_open:
        where = f" on {open_node}" if open_node else ""
        raise TapeError(f"unit {unit}: the drive is open{where} (device busy): {what} "
                        "when it is closed",
                        errno=errno.EBUSY)


def facts_reply(facts: VolumeFacts, message: str) -> dict[str, Any]:
    return {**asdict(facts), "blank": facts.blank, "message": message}


@dataclass
class Ejected:
    """What is remembered of the cassette ejected last (for --new and next-volume)."""

    path: Path
    standard: str
    length: str
    identity: str


class SimChanger:
    """``CassetteChanger`` of the simulated VCR: cassettes are image files.

    ``tape`` is the medium the Drive uses (the sealing layer over ``medium`` on a unit
    that encrypts): the tape is rewound, unloaded and loaded through it, so every layer
    settles what it holds for the cassette leaving and starts afresh on the new one.
    ``medium`` answers the recording mode the new cassette's standard must match.
    """

    def __init__(self, unit: int, sim: SimDeck, deck: LabelledDeck, medium: CataloguedMedium,
                 drive: MediaChangeAware, *, tape: Medium,
                 catalog: Callable[[], Catalog | None], default_standard: str,
                 default_length: str, log: Callable[[str], None]) -> None:
        self.unit = unit
        self.sim = sim
        self.deck = deck
        self.medium = medium
        self.tape = tape
        self.drive = drive
        self._catalog = catalog
        self.default_standard = default_standard
        self.default_length = default_length
        self.log = log
        self.ejected: Ejected | None = None
        # job -> full cycles kept, for the jobs retention rule (the service sets it from
        # the configuration's [[job]] tables)
        self.job_keep: Mapping[str, int] = {}

    def _identity(self, cassette: Cassette) -> str:
        label = self.deck.label
        return label.uuid if label is not None else unlabelled_uuid(
            str(Path(cassette.path).resolve()))

    def facts(self) -> VolumeFacts:
        cassette = self.sim.cassette
        if cassette is None or not self.deck.loaded:
            return VolumeFacts(loaded=False)
        catalog = self.deck.catalog
        recordings = len(catalog.recordings) if catalog is not None else 0
        identity = self._identity(cassette)
        state, statuses, jobs_kept = None, None, None
        store = self._catalog()
        if store is not None:
            try:
                row = store.cassette(identity)
                state = row.state
                statuses = [r.status for r in store.recordings(identity, members=False)]
            except UsageError:  # not in the catalog: judged by the tape alone
                pass
            else:
                judged = history.retention_on(store, identity, self.job_keep)
                if judged is not None:
                    jobs_kept, statuses = judged
        label = self.deck.label
        return VolumeFacts(loaded=True, identity=identity,
                           label=label.text if label is not None else None,
                           recordings=recordings,
                           holds_unexpired=holds_unexpired(state, statuses, recordings,
                                                           jobs_kept),
                           write_protected=self.deck.write_protected)

    def eject(self) -> dict[str, Any]:
        cassette = self.sim.cassette
        if cassette is None:
            raise TapeError(f"unit {self.unit}: no cassette to eject", errno=errno.ENOMEDIUM)
        if self.deck.loaded:
            identity = self._identity(cassette)
            self.tape.rewind()
        else:  # unloaded already (mt offline): take it out
            identity = unlabelled_uuid(str(Path(cassette.path).resolve()))
        self.ejected = Ejected(Path(cassette.path), cassette.standard, cassette.length_name,
                               identity)
        try:
            self.tape.unload()
        finally:
            self.sim.remove()
            cassette.close()
            self.drive.media_changed()
            self.deck.refresh(quiet=True)  # no cassette: no label, status follows
        self.log(f"ejected cassette {cassette.path}")
        return {"ejected": str(cassette.path), "identity": identity,
                "message": f"unit {self.unit}: ejected {cassette.path}"}

    def _open(self, image: Path, *, new: bool, standard: str | None,
              length: str | None) -> Cassette:
        if not image.exists() and not image.is_symlink():
            if not new:
                raise UsageError(f"no cassette image at {image} (use --new to create it)")
            last = self.ejected
            standard = standard or (last.standard if last else self.default_standard)
            length = length or (last.length if last else self.default_length)
            Cassette.create(image, standard=standard, length=length).close()
            self.log(f"created cassette {image} ({standard.upper()} {length})")
        return Cassette.open(image)

    def insert(self, image: Path | None, *, new: bool = False, standard: str | None = None,
               length: str | None = None, prompt: bool = False) -> dict[str, Any]:
        if image is None:
            raise UsageError("the simulated VCR needs the IMAGE of the cassette to insert")
        present = self.sim.cassette
        if present is not None:
            if self.deck.loaded:
                raise TapeError(f"unit {self.unit} holds cassette {present.path}: eject it "
                                "first", errno=errno.EBUSY)
            self.sim.remove()  # unloaded by mt offline: taken out now
            present.close()
        cassette = self._open(image, new=new, standard=standard, length=length)
        problem = standard_mismatch(self.medium.mode, cassette.standard)
        if problem is not None:
            cassette.close()
            raise UsageError(f"{image}: {problem}")
        try:
            self.sim.insert(cassette)
            self.tape.load()  # reads the label; recovers an interrupted recording
        except BackerError:
            self.sim.remove()
            cassette.close()
            self.deck.refresh(quiet=True)
            raise
        finally:
            self.drive.media_changed()
        if cassette.past_end:
            self.log(f"cassette {image}: {cassette.past_end}")
        facts = self.facts()
        self.log(f"inserted {image}: {facts.describe()}")
        return facts_reply(facts, f"unit {self.unit}: inserted {image}: {facts.describe()}")

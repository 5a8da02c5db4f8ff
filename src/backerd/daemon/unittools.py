"""What the daemon tells and does about a unit's cassette: label, catalog, counters.

Wiring only: the label view, the catalogued medium and the live catalog come from
``medium.labelled`` and ``catalog``; the rules from ``observe``. Every method that
touches the deck runs in the unit's worker thread under the unit lock (``Unit.run``);
``status`` only reads values the last request left behind.
"""

from __future__ import annotations

import dataclasses
import errno
import sqlite3
from pathlib import Path
from typing import Any

from backerd.catalog.label import new_label
from backerd.catalog.live import LiveCatalog
from backerd.catalog.store import Catalog
from backerd.catalog.volumes import cassettes_needed
from backerd.daemon.config import UnitConfig
from backerd.errors import BackerError, TapeError, UsageError
from backerd.format.params import mode as mode_params
from backerd.medium.encrypted import EncryptingMedium, crypt_label_fields, not_encrypting
from backerd.medium.labelled import CataloguedMedium, LabelledDeck
from backerd.observe.counters import driver_counters
from backerd.observe.preflight import Facts, answer, capacity_bytes
from backerd.vcr.sim import Cassette, SimDeck

# status warns when the user bytes left before the early-warning point fall below this
# share of what the whole cassette holds in the unit's mode
NEARLY_FULL = 0.10


class UnitTools:
    def __init__(self, config: UnitConfig, sim: SimDeck, deck: LabelledDeck,
                 medium: CataloguedMedium, live: LiveCatalog | None, *,
                 sealing: EncryptingMedium | None = None) -> None:
        self.config = config
        self.sim = sim  # the VCR: the cassette in it changes at run time
        self.sealing = sealing
        self.deck = deck
        self.medium = medium
        self.live = live
        self.cassette_uuid: str | None = None
        self._status_store: Catalog | None = None
        deck.on_refresh = self._registered
        self._registered()

    @property
    def cassette(self) -> Cassette:
        cassette = self.sim.cassette
        if cassette is None or not self.sim.loaded:
            raise TapeError(f"no cassette in unit {self.config.number}", errno=errno.ENOMEDIUM)
        return cassette

    @property
    def store(self) -> Catalog | None:
        return self.live.store if self.live is not None else None

    def _registered(self) -> None:
        if not self.deck.loaded:
            self.cassette_uuid = None
            return
        if self.live is None:
            return
        self.cassette_uuid = self.live.cassette_loaded(
            self.deck.label, fallback_name=str(Path(self.cassette.path).resolve()),
            standard=self.deck.standard, length_seconds=self.cassette.slots // self.deck.fps,
            passes=self.cassette.wear.get("passes", 0),
            full_at=self.cassette.slots - int(self.medium.early_warning_seconds * self.deck.fps))

    # -- reading the state (no lock needed: values only) ---------------------------------

    def _free_fields(self) -> int:
        recs = self.cassette.recordings
        return max(self.cassette.slots - (recs[-1].end if recs else 0), 0)

    def _warning_zone(self) -> int:
        return int(self.medium.early_warning_seconds * self.deck.fps)

    def capacity(self) -> dict[str, Any]:
        """User bytes left before the early-warning point, in the unit's mode, and
        what a blank cassette of the same length holds (``next-volume``, ``check``)."""
        params = mode_params(self.medium.mode)
        cassette = self.cassette
        zone = self._warning_zone()
        left = capacity_bytes(params, self._free_fields() - zone)
        whole = capacity_bytes(params, cassette.slots - zone)
        return {"capacity_left_bytes": left, "blank_capacity_bytes": whole,
                "nearly_full": left <= whole * NEARLY_FULL}

    def status(self) -> dict[str, Any]:
        if self.sim.cassette is None or not self.deck.loaded:
            return {"loaded": False, "cassette": None, "cassette_label": None,
                    "labelled": False, "cassette_uuid": None, "capacity_left_bytes": None,
                    "nearly_full": False}
        label = self.deck.status()["label"]
        wear = self.cassette.wear
        limit = 500
        state = ""
        if self.config.catalog is not None and self.cassette_uuid is not None:
            try:
                # its own connection: status runs beside a request using the unit's one
                if self._status_store is None:
                    self._status_store = Catalog(self.config.catalog)
                row = self._status_store.cassette(self.cassette_uuid)
                limit, state = row.wear_limit, row.state
            except (BackerError, sqlite3.Error):  # informative only: never break status
                pass
        medium = self.medium
        mode = medium.mode
        transfer = medium.transfer_state()
        current = driver_counters(state=transfer, mode=mode, stats=medium.last_stats)
        last = driver_counters(state="STOPPED", mode=mode, stats=medium.previous_stats)
        free = self._free_fields()
        fps = self.deck.fps
        used = sum(r.user_bytes or 0 for r in self.cassette.recordings[self.deck.skip:])
        return {
            "loaded": True,
            "cassette": str(self.cassette.path),
            **self.capacity(),
            "cassette_label": label,
            "labelled": label is not None,
            "cassette_uuid": self.cassette_uuid,
            "inventory_state": state,
            "wear": {"passes": wear.get("passes", 0), "fields": wear.get("fields", 0),
                     "limit": limit, "worn": wear.get("passes", 0) >= limit},
            "counters": {"current": current, "last": last},
            "totals": medium.totals.as_dict(),
            "cassette_capacity_bytes": used + capacity_bytes(mode_params(mode), free),
            "cassette_used_bytes": used,
            "cassette_passes": wear.get("passes", 0),
            "time_left_seconds": free // fps,
            "counter": self.deck.counter() if self.deck.loaded else None,
            "encryption": (self.sealing.describe() if self.sealing is not None
                           else not_encrypting()),
        }

    # -- requests (run under the unit lock, in a worker thread) --------------------------

    def label(self, text: str, *, force: bool, open_node: str | None) -> dict[str, Any]:
        if open_node is not None:
            raise TapeError(f"the drive is open on {open_node}: label it when it is free",
                            errno=errno.EBUSY)
        if force and not self.medium.at_bot():
            raise UsageError("--force labels only with the tape at BOT (mt rewind first)")
        old = self.cassette_uuid
        length = self.cassette.slots // self.deck.fps
        label = new_label(text, self.deck.standard.upper(), length)
        sealing = self.sealing
        if sealing is not None and sealing.configured:
            key = sealing.current_key()
            if key is None:
                raise TapeError(f"encryption is configured but the key is missing "
                                f"({sealing.missing}): not labelling", errno=errno.EACCES)
            label = dataclasses.replace(label, encrypted=True, extra=crypt_label_fields(key))
        self.deck.write_label(label, self.medium.mode, force=force)
        # every layer starts again on the (now empty) user tape
        (self.sealing if self.sealing is not None else self.medium).load()
        if self.store is not None and old is not None and old != self.cassette_uuid:
            self.store.forget_from(old, 0)
            self.store.set_cassette(old, state="retired", location=f"relabelled {text}")
        return {"label": dataclasses.asdict(label)}

    def check(self, need: int | None, expected: str | None) -> dict[str, Any]:
        status = self.status()
        if not status["loaded"]:
            raise TapeError(f"no cassette in unit {self.config.number}", errno=errno.ENOMEDIUM)
        label = status["cassette_label"]
        facts = Facts(
            loaded=self.deck.loaded, label=label["text"] if label else None,
            expected_label=expected, write_protected=self.deck.write_protected,
            free_fields=self._free_fields(),
            free_bytes=status["cassette_capacity_bytes"] - status["cassette_used_bytes"],
            need_bytes=need, passes=status["wear"]["passes"],
            wear_limit=status["wear"]["limit"], state=status["inventory_state"],
            fps=self.deck.fps)
        answers = [dataclasses.asdict(a) for a in answer(facts)]
        reply: dict[str, Any] = {"answers": answers, "ok": all(a["ok"] for a in answers)}
        if need is not None:
            reply["volumes"] = volumes_answer(need, status["capacity_left_bytes"],
                                              status["blank_capacity_bytes"],
                                              self.cassette.length_name, self.medium.mode)
        return reply

    def trace(self) -> dict[str, Any]:
        from backerd.medium.reader import PLAY_CHUNK

        trace = self.medium.trace
        if not trace:
            raise UsageError("nothing has been read on this unit yet")
        # each sample covers one batch of played fields: spread it over them
        out: dict[str, Any] = {"start": self.medium.trace_start, "file": self.medium.trace_file,
                               "fields_per_sample": PLAY_CHUNK}
        for i, name in enumerate(("corrected", "lost", "slips", "margin")):
            out[name] = [s[i] for s in trace]
        return out

    def record_volume(self, sequence: dict[str, Any], identity: str) -> dict[str, Any] | None:
        """tar went on to the cassette now loaded: note it in its volume set."""
        from backerd.catalog.volumes import VolumeLog

        previous, volume = sequence.get("previous"), sequence.get("tar_volume")
        if self.store is None or not isinstance(previous, str) or not isinstance(volume, int):
            return None
        earlier = sequence.get("previous_file")
        set_uuid, k = VolumeLog(self.store).continue_tar(
            self.config.number, str(sequence.get("archive", "")), previous, identity, volume,
            previous_file=earlier if isinstance(earlier, int) else 0)
        return {"set": set_uuid, "volume": k}

    def close(self) -> None:
        if self._status_store is not None:
            self._status_store.close()
            self._status_store = None

    def rebuild(self) -> dict[str, Any]:
        """Scan the cassette into the catalog; an encrypting unit's key (when its file is
        there) opens the sealed recordings, so their members are indexed too."""
        from backerd.catalog.rebuild import rebuild_rows, scan_cassette

        if self.store is None or self.cassette_uuid is None:
            raise UsageError("this daemon keeps no catalog")
        unseal = None
        if self.config.encrypt and self.config.key_file is not None \
                and self.config.key_file.exists():
            from functools import partial

            from backerd.crypt.blocks import recording_opener
            from backerd.crypt.keys import load_key_file

            unseal = partial(recording_opener, load_key_file(self.config.key_file))
        rebuilt = rebuild_rows(scan_cassette(self.cassette), self.cassette.fps, unseal=unseal)
        label, rows = rebuilt.label, rebuilt.rows
        self.store.replace_recordings(self.cassette_uuid, rows)
        return {"uuid": self.cassette_uuid, "label": label.text if label else None,
                "labelled": label is not None, "files": len(rows),
                "members": sum(len(r.members) for r in rows),
                "bytes": sum(r.bytes for r in rows), "encrypted_unindexed": rebuilt.sealed}


def volumes_answer(need: int, left: int, blank: int, length: str, mode: str) -> dict[str, Any]:
    """How many cassettes ``need`` bytes take: this one, then blank ones like it."""
    count = cassettes_needed(need, left, blank)
    if count is None:
        detail = f"a blank {length} cassette holds nothing in mode {mode}"
    elif count == 1:
        detail = f"fits on this cassette ({left:,} bytes left before the early warning)"
    else:
        first = "this one" if left > 0 else "none on this one"
        detail = (f"{count} cassettes: {first} ({left:,} bytes left), then blank {length} "
                  f"cassettes of {blank:,} bytes each in mode {mode} (tar -M)")
    return {"cassettes": count, "capacity_left_bytes": left, "blank_capacity_bytes": blank,
            "detail": detail}

"""EncryptingMedium: a Medium whose blocks are sealed on the way down (opt-in).

Theory of operation. The wrapper sits between the Drive and the Backer medium, so tar,
mt and the recordings below are unchanged: each block the Drive writes is sealed
(``crypt.blocks``) and written as one slightly longer block; each block read is opened
and handed up as it was written. Filemarks, spacing and positions pass through, since
blocks stay one for one.

The last-block flag needs to know which block is last before it is sealed, so the
wrapper holds the newest block back (``_held``) and seals it when the next block comes
(not last) or when anything else happens: a filemark, a move, a read, an unload, or
``close`` (last). ``position``/``tell`` count the held block as written. Continuing a
recording in its middle (writing at block b > 0) first reads block b-1 back and seals
it again as not last, under a fresh salt: a (salt, block) pair never seals twice. A
filemark or an erase that cuts a recording at block b > 0 seals block b-1 again as
the last.

What it refuses, as ``TapeError(EACCES)`` and before the tape moves (rules as data in
``_refusal``): writing on a unit configured to encrypt whose key is missing, on an
unlabelled cassette, on a cassette labelled without encryption, or with a key other
than the label's; reading or writing an encrypted cassette without its key. Nothing is
ever written in plaintext once encryption is configured. A block that does not open
is ``DamagedBlock`` (EIO) for that block alone; the next read goes on. A block without
the BKE1 header (a plaintext recording on a cassette labelled as encrypted) or sealed
under another key fails alike, but its reason is logged once per file, not per block.
A recording whose last block lacks the flag (cut short) fails one read at its end with
EIO, then reads its filemark.

Only a unit that encrypts has this layer: a unit without a key gets no wrapper, and
its ``CataloguedMedium`` refuses an encrypted cassette's blocks by the label's flag
(the same refusal as the rule here). A cassette change goes through the layer too
(``load``/``unload``), so a held block is settled on the cassette it belongs to and
the reading state starts afresh on the next one.
"""

from __future__ import annotations

import errno
import os
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from backerd.catalog.label import KEYLESS_REFUSAL, Label, label_crypt
from backerd.crypt.blocks import OVERHEAD, SALT_SIZE, BlockPlace, Opener, Rejected, Sealer
from backerd.crypt.keys import UnitKey
from backerd.errors import BackerError, TapeError
from backerd.tape.medium import (
    FILEMARK,
    BufferingMedium,
    DamagedBlock,
    Mark,
    Medium,
    TapePosition,
)

CIPHER = "AES-256-GCM"
BLOCK_FORMAT = "BKE1"


def not_encrypting() -> dict[str, Any]:
    """``EncryptingMedium.describe`` of a unit that does not encrypt (and has none)."""
    return {"configured": False, "key_fingerprint": None, "key_missing": None,
            "blocks_failed": 0}


@runtime_checkable
class SealedWriter(Protocol):
    """A medium that records a sealed block but tells its catalog the plaintext."""

    def write_sealed(self, sealed: bytes, plain: bytes) -> None: ...


@runtime_checkable
class Closable(Protocol):
    def close(self) -> None: ...


def crypt_label_fields(key: UnitKey) -> dict[str, Any]:
    """What a label records about the key its cassette's recordings are sealed with."""
    return {"crypt": {"cipher": CIPHER, "block_format": BLOCK_FORMAT,
                      "key_fingerprint": key.fingerprint_hex,
                      "recording_kdf": "HKDF-SHA256", "salt_bytes": SALT_SIZE,
                      "wrapped_key": key.wrap}}


@dataclass(frozen=True)
class _Facts:
    configured: bool  # the unit (or a job) asks for encryption
    have_key: bool
    labelled: bool
    label_encrypted: bool
    same_key: bool  # the label names this key's fingerprint


# (writing?, predicate, message) -> the first matching rule refuses; {} fills in names
_RULES: tuple[tuple[bool | None, Callable[[_Facts], bool], str], ...] = (
    (True, lambda f: f.configured and not f.have_key,
     "encryption is configured but the key is missing ({missing}): refusing to write"),
    (None, lambda f: f.label_encrypted and not f.have_key, KEYLESS_REFUSAL),
    (None, lambda f: f.label_encrypted and f.have_key and not f.same_key,
     "wrong key: cassette {label} is encrypted with key {label_key}, this unit's key is "
     "{key}"),
    (True, lambda f: f.configured and not f.labelled,
     "an encrypted recording needs a labelled cassette (its UUID binds the blocks): "
     "label it first with backerd label"),
    (True, lambda f: f.configured and f.labelled and not f.label_encrypted,
     "cassette {label} was labelled without encryption: relabel it on this unit "
     "(backerd label --force) to write encrypted recordings"),
)


def _explained(rejected: Rejected) -> str:
    """The reason a block does not open, saying what a missing header most likely means."""
    if rejected.unsealed:
        return (f"{rejected.reason}: recorded without encryption on a cassette labelled "
                "as encrypted (by the original driver or another program), or damaged")
    return rejected.reason


class EncryptingMedium:
    """The Medium protocol around ``inner``, sealing blocks when encryption is on.

    ``key``: the unit key (None: none loaded). ``missing``: why the key is missing when
    encryption is configured (None: not configured, unless a key is given); ``reload``
    is tried again while it is missing (it raises BackerError until the key is there).
    A job may bring its own key with ``use_key``.
    """

    def __init__(self, inner: Medium, *, label_of: Callable[[], Label | None],
                 key: UnitKey | None = None, missing: str | None = None,
                 reload: Callable[[], UnitKey] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.inner = inner
        self.reload = reload
        self.label_of = label_of
        self.key = key
        self.missing = missing
        self.log = log or (lambda message: None)
        self.hard_errors = 0
        self._opener = Opener(key) if key is not None else None
        self._held: bytes | None = None
        self._held_place: BlockPlace | None = None
        self._sealer: Sealer | None = None
        self._read_last: tuple[int, int, bool] | None = None  # file, block, last flag
        self._truncation_told: tuple[int, int] | None = None
        self._recordings_told: set[tuple[int, str]] = set()  # (file, reason) logged
        self._last_refusal: str | None = None
        # per direction: the label and key last checked, and the answer (rules run once
        # per change, not per block)
        self._passed: dict[bool, tuple[Label | None, UnitKey | None, bool]] = {}
        self._cassette_id = bytes(16)
        self._buffering = inner if isinstance(inner, BufferingMedium) else None

    # -- keys and rules ----------------------------------------------------------------

    @property
    def configured(self) -> bool:
        return self.key is not None or self.missing is not None

    def use_key(self, key: UnitKey | None, *, missing: str | None = None) -> None:
        """Seal with ``key`` from now on (a job's key); None with ``missing`` refuses."""
        self._settle()
        self.key, self.missing = key, missing
        self._opener = Opener(key) if key is not None else None
        self._passed.clear()  # the rules answer anew

    def current_key(self) -> UnitKey | None:
        """The key, looked for again (``reload``) while it is missing."""
        if self.key is None and self.missing is not None and self.reload is not None:
            try:
                key = self.reload()
            except BackerError as exc:
                self.missing = exc.message
                return None
            self.use_key(key)
            self.log(f"key {key.fingerprint_hex} loaded")
        return self.key

    def describe(self) -> dict[str, Any]:
        return {"configured": self.configured,
                "key_fingerprint": self.key.fingerprint_hex if self.key else None,
                "key_missing": self.missing if self.key is None else None,
                "blocks_failed": self.hard_errors}

    def _check(self, writing: bool) -> bool:
        """Raise the refusal that applies; True when blocks are sealed/opened."""
        self.current_key()
        label = self.label_of()
        passed = self._passed.get(writing)
        if passed is not None and passed[0] is label and passed[1] is self.key:
            return passed[2]  # nothing changed since the last block: same answer
        info = label_crypt(label)
        label_key = None if info is None else info.get("key_fingerprint")
        facts = _Facts(self.configured, self.key is not None, label is not None,
                       info is not None,
                       self.key is not None and label_key == self.key.fingerprint_hex)
        for applies_to, rule, message in _RULES:
            if applies_to in (None, writing) and rule(facts):
                text = message.format(
                    missing=self.missing, label=repr(label.text) if label else "",
                    label_key=label_key or "unknown",
                    key=self.key.fingerprint_hex if self.key else "")
                if text != self._last_refusal:  # once, not once per block tried
                    self.log(text)
                self._last_refusal = text
                raise TapeError(text, errno=errno.EACCES)
        self._last_refusal = None
        self._passed[writing] = (label, self.key, info is not None)
        if label is not None:
            self._cassette_id = uuidlib.UUID(label.uuid).bytes
        return info is not None

    def _place(self, file: int, block: int) -> BlockPlace:
        return BlockPlace(self._cassette_id, file, block)  # _check saw the label

    # -- writing -------------------------------------------------------------------------

    def write_block(self, data: bytes) -> None:
        if not self._check(writing=True):
            self._settle()
            self.inner.write_block(data)
            return
        if self._held is None:
            self._start_writing()
        if self._held is not None:
            self._put_held(last=False)
        assert self._held_place is not None
        self._held = data

    def _start_writing(self) -> None:
        """A fresh salt; at block b > 0, block b-1 read back to be sealed not-last."""
        self._reset_reading()
        assert self.key is not None
        self._sealer = Sealer(self.key, os.urandom(SALT_SIZE))
        pos = self.inner.position()
        self._held_place = self._place(pos.file, pos.block)
        if pos.block == 0:
            return
        self.inner.space_blocks(-1)
        item = self.inner.read_block(1 << 24)
        opened = (self._opener.open(item, self._place(pos.file, pos.block - 1))
                  if isinstance(item, bytes) and self._opener is not None else None)
        self.inner.space_blocks(-1)
        if opened is None or isinstance(opened, Rejected):
            self.inner.space_blocks(1)
            why = opened.reason if isinstance(opened, Rejected) else "no block there"
            raise TapeError(f"cannot continue the encrypted recording of file {pos.file}: "
                            f"its block {pos.block - 1} does not open ({why})",
                            errno=errno.EIO)
        self._held = opened.data
        self._held_place = self._place(pos.file, pos.block - 1)

    def _put_held(self, *, last: bool) -> None:
        held, place = self._held, self._held_place
        assert held is not None and place is not None and self._sealer is not None
        self._held = None
        sealed = self._sealer.seal(held, place, last=last)
        self._held_place = BlockPlace(place.cassette, place.file, place.block + 1)
        if isinstance(self.inner, SealedWriter):
            self.inner.write_sealed(sealed, held)
        else:
            self.inner.write_block(sealed)

    def _settle(self) -> None:
        """Seal the held block as the last of its recording and write it."""
        if self._held is not None:
            self._put_held(last=True)
        self._sealer = None

    def _end_here(self) -> None:
        """Before a filemark or an erase cuts a recording at block b > 0 with nothing
        held: seal its block b-1 again as the last, so the cut reads as an end."""
        if self._held is None and self.inner.position().block > 0:
            info = label_crypt(self.label_of())
            if info is not None and self.key is not None and info.get(
                    "key_fingerprint") == self.key.fingerprint_hex:
                self._check(writing=True)  # the cassette UUID
                self._start_writing()
        self._settle()

    def write_filemarks(self, count: int) -> None:
        self._end_here()
        self.inner.write_filemarks(count)

    def _plain(self, writing: bool) -> bool:
        """The rules passed for this label and key without sealing (cached by ``_check``):
        blocks go through as they are, so the medium below answers for them."""
        if self.key is None and self.missing is not None:
            return False  # the next block looks for the key again (reload): not here
        passed = self._passed.get(writing)
        return (passed is not None and not passed[2] and passed[1] is self.key
                and passed[0] is self.label_of())

    def write_would_wait(self, size: int) -> bool:
        if self._buffering is None:
            return True
        if self._held is not None:
            return self._buffering.write_would_wait(size + OVERHEAD)
        if self._sealer is None and self._plain(writing=True):
            return self._buffering.write_would_wait(size)
        return True  # a recording's first sealed block may read the tape (continuing one)

    def read_would_wait(self, max_size: int) -> bool:
        if self._held is not None or self._buffering is None:
            return True
        if self._plain(writing=False):
            return self._buffering.read_would_wait(max_size)
        return self._buffering.read_would_wait(max_size + OVERHEAD)

    # -- reading -------------------------------------------------------------------------

    def _reset_reading(self) -> None:
        self._read_last = None

    def read_block(self, max_size: int) -> bytes | Mark:
        self._settle()
        if not self._check(writing=False):
            return self.inner.read_block(max_size)
        assert self._opener is not None
        pos = self.inner.position()
        item = self.inner.read_block(max_size + OVERHEAD)
        before = self._read_last
        self._read_last = None
        if isinstance(item, Mark):
            self._unflagged_end(pos, before, item)
            return item
        opened = self._opener.open(item, self._place(pos.file, pos.block))
        if isinstance(opened, Rejected):
            # a plaintext recording, or one sealed under another key, fails every block:
            # its reason is logged once, not once per block
            self._damaged(pos, _explained(opened), whole=opened.unsealed or opened.wrong_key)
        assert not isinstance(opened, Rejected)
        if before is not None and before == (pos.file, pos.block - 1, True):
            self._damaged(pos, "a block after the recording's last block")
        self._read_last = (pos.file, pos.block, opened.last)
        return opened.data

    def _damaged(self, pos: TapePosition, reason: str, *, whole: bool = False) -> None:
        """EIO for this block; ``whole``: the reason holds for its whole recording."""
        self.hard_errors += 1
        message = f"file {pos.file} block {pos.block}: {reason}"
        if not whole or (pos.file, reason) not in self._recordings_told:
            self.log(message + (" (the other blocks of this file fail alike)" if whole else ""))
        if whole:
            self._recordings_told.add((pos.file, reason))
        raise DamagedBlock(message)

    def _unflagged_end(self, pos: TapePosition, before: tuple[int, int, bool] | None,
                       mark: Mark) -> None:
        """The end of a recording read right after a block without the last flag."""
        if before != (pos.file, pos.block - 1, False) or self._truncation_told == (
                pos.file, pos.block):
            return
        self._truncation_told = (pos.file, pos.block)
        if mark is FILEMARK:
            self.inner.space_filemarks(-1)  # the next read meets the filemark again
        self.hard_errors += 1
        message = (f"file {pos.file} ends after block {pos.block - 1}, which is not "
                   "its last block: the recording was cut short")
        self.log(message)
        raise TapeError(message, errno=errno.EIO)

    # -- everything else settles the held block first, then passes through ---------------

    @property
    def loaded(self) -> bool:
        return self.inner.loaded

    @property
    def write_protected(self) -> bool:
        return self.inner.write_protected

    def position(self) -> TapePosition:
        pos = self.inner.position()
        return TapePosition(pos.file, pos.block + 1) if self._held is not None else pos

    def tell(self) -> int:
        return self.inner.tell() + (1 if self._held is not None else 0)

    def at_bot(self) -> bool:
        return self._held is None and self.inner.at_bot()

    def space_blocks(self, count: int) -> int:
        self._settle()
        self._reset_reading()
        return self.inner.space_blocks(count)

    def space_filemarks(self, count: int) -> int:
        self._settle()
        self._reset_reading()
        return self.inner.space_filemarks(count)

    def rewind(self) -> None:
        self._settle()
        self._reset_reading()
        self.inner.rewind()

    def seek_eod(self) -> None:
        self._settle()
        self._reset_reading()
        self.inner.seek_eod()

    def locate(self, block: int) -> None:
        self._settle()
        self._reset_reading()
        self.inner.locate(block)

    def erase(self) -> None:
        self._end_here()
        self._reset_reading()
        self.inner.erase()

    def load(self) -> None:
        if self.inner.loaded:
            self._settle()
        self._reset_reading()
        self._truncation_told = None
        self._recordings_told.clear()
        self.inner.load()

    def unload(self) -> None:
        self._settle()
        self._reset_reading()
        self._truncation_told = None
        self._recordings_told.clear()
        self.inner.unload()

    def early_warning(self) -> bool:
        return self.inner.early_warning()

    def set_density(self, code: int) -> None:
        self.inner.set_density(code)

    def density(self) -> int:
        return self.inner.density()

    def take_soft_errors(self) -> int:
        return self.inner.take_soft_errors()

    def close(self) -> None:
        """Write the held block (last), then close the medium below (if it closes)."""
        try:
            self._settle()
        finally:
            if isinstance(self.inner, Closable):
                self.inner.close()

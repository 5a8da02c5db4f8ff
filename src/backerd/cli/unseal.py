"""Offline decryption for ``backerd decode`` and ``backerd cassette dump --key-file``.

A recording's user bytes are its sealed blocks back to back; ``crypt.blocks.
StreamOpener`` splits them at the lengths in their headers and opens each one. Blocks
are bound to the cassette UUID and the recording (file) number as st counts it (the
label hidden), so both are needed: ``cassette dump`` reads them from the image, ``decode``
takes them as options. Plaintext goes out as it opens; what did not open is counted and
the first reason becomes the command's one-line error (exit status 4, MediumError).
Both make a recording's opener with ``crypt.blocks.recording_opener`` (as ``catalog
rebuild --key-file`` does) and run it over the recording's bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from backerd.errors import MediumError, UsageError

if TYPE_CHECKING:
    from backerd.crypt.blocks import StreamOpener
    from backerd.crypt.keys import UnitKey

CHUNK = 1 << 20


def sealed_stream(key: UnitKey, cassette_uuid: str, file: int, *,
                  what: str = "cassette UUID") -> StreamOpener:
    """The opener of one recording: its blocks are bound to the cassette and st file."""
    from backerd.crypt.blocks import recording_opener

    try:
        return recording_opener(key, cassette_uuid, file)
    except ValueError:
        raise UsageError(f"{what}: not a UUID: {cassette_uuid!r}") from None


class UnsealingOutput:
    """A binary output that takes sealed bytes and writes their plaintext to ``out``."""

    def __init__(self, out: BinaryIO, key_file: Path, cassette_uuid: str, file: int) -> None:
        from backerd.crypt.keys import load_key_file

        self.out = out
        self.stream = sealed_stream(load_key_file(key_file), cassette_uuid, file,
                                    what="--cassette-uuid")
        self.written = 0

    def _emit(self, data: bytes) -> None:
        self.out.write(data)
        self.written += len(data)

    def write(self, data: bytes) -> int:
        self.stream.feed(data, self._emit)
        return len(data)

    def flush(self) -> None:
        self.out.flush()

    def finish(self) -> MediumError | None:
        """The one-line error when any block did not open (None: all did)."""
        self.stream.finish()
        self.out.flush()
        return _decrypt_error(self.stream)


def _decrypt_error(stream: StreamOpener) -> MediumError | None:
    problem = stream.summary()
    return None if problem is None else MediumError(f"decrypting: {problem}")


def dump_plaintext(image: Path, recording: int, key_file: Path, out: BinaryIO) -> None:
    """Decode recording ``recording`` (0 = first, label included) and decrypt it."""
    from backerd.catalog.label import label_crypt
    from backerd.crypt.keys import load_key_file
    from backerd.medium.labelled import read_label
    from backerd.medium.reader import RecordingReader
    from backerd.vcr.sim import Cassette, SimDeck

    with Cassette.open(image, readonly=True) as c:
        deck = SimDeck(c)
        label, label_rec = read_label(deck)
        if label is None or label_crypt(label) is None:
            raise UsageError(f"{image}: not the labelled cassette of an encrypted unit")
        recs = c.recordings
        if not 1 <= recording < len(recs):
            raise UsageError(f"no encrypted recording {recording}: recording 0 is the label, "
                             f"the cassette has 1..{len(recs) - 1}")
        stream = sealed_stream(load_key_file(key_file), label.uuid, recording - 1)
        reader = RecordingReader(deck, recs[recording])
        lost = False

        def user_bytes() -> Iterator[bytes]:
            nonlocal lost
            offset = 0
            while True:
                data, hole = reader.read(offset, CHUNK)
                if not data:
                    return
                lost |= hole
                offset += len(data)
                yield data

        for plain in stream.plaintext(user_bytes()):
            out.write(plain)
        out.flush()
    error = _decrypt_error(stream)
    if error is not None:
        raise error
    if lost:
        raise MediumError(f"{image}: recording {recording}: some bytes could not be recovered")

"""The Medium protocol a Drive drives, and MemoryMedium, a pure in-memory tape.

Theory of operation: a tape is a sequence of files; each file is a sequence of blocks
and all but the last end in a filemark. Blank tape after the last filemark (or after
the last block of an unterminated last file) is end of data (EOD). The head stands
between two blocks: ``TapePosition(file, block)`` is "before block ``block`` of file
``file``", so the position just after a filemark is ``(file + 1, 0)``.

Movement follows SCSI sequential-access rules, which st relies on:

* ``read_block`` returns the next block and moves past it; at a filemark it returns
  FILEMARK and moves past the filemark; at EOD it returns END_OF_DATA and stays.
  A tape with block boundaries returns the whole block whatever ``max_size`` is (the
  Drive decides about ENOMEM). A tape without boundaries (a foreign recording made by
  the original driver) returns the next ``max_size`` bytes of the file's byte stream,
  fewer at the end of the file.
* ``space_blocks(n)`` crosses a filemark when it meets one and stops there: forwards it
  ends on the EOT side (start of the next file), backwards on the BOT side (end of the
  previous file). It returns the number of blocks spaced (with the sign of ``n``),
  not counting the filemark. Spacing stops at EOD and at BOT.
* ``space_filemarks(n)`` forwards ends just after the n-th filemark; backwards just
  before (BOT side of) the n-th filemark. It returns the number of filemarks crossed,
  with the sign of ``n``; fewer when EOD or BOT came first.
* ``tell``/``locate`` use SCSI logical block addresses: every block and every filemark
  counts one, from 0 at BOT.
* Writing (blocks or filemarks) discards everything after the current position.

The movement rules are written once, in ``tape.spacing``, over two facts every medium
answers: ``blocks_in(file)`` and ``filemark_after(file)``.

Errors are ``TapeError(errno)``: ENOMEDIUM without a cassette, EACCES for writes to a
write-protected cassette, ENOSPC at the physical end, EIO for a locate past EOD.
"""

from __future__ import annotations

import enum
import errno
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from backerd.errors import TapeError
from backerd.tape import spacing
from backerd.tape.density import DEFAULT_DENSITY, is_valid_density
from backerd.tape.spacing import TapePosition

__all__ = ["END_OF_DATA", "FILEMARK", "DamagedBlock", "Mark", "Medium", "MemoryMedium",
           "TapePosition"]


class Mark(enum.Enum):
    """What ``read_block`` returns instead of data."""

    FILEMARK = "filemark"
    END_OF_DATA = "end of data"


FILEMARK = Mark.FILEMARK
END_OF_DATA = Mark.END_OF_DATA


class DamagedBlock(TapeError):
    """A block whose data could not be recovered; the medium has moved past it."""

    errno = errno.EIO


@runtime_checkable
class Medium(Protocol):
    """Blocks and filemarks on a tape, as a Drive sees them."""

    @property
    def loaded(self) -> bool: ...

    @property
    def write_protected(self) -> bool: ...

    def position(self) -> TapePosition: ...

    def tell(self) -> int: ...

    def at_bot(self) -> bool: ...

    def read_block(self, max_size: int) -> bytes | Mark: ...

    def write_block(self, data: bytes) -> None: ...

    def write_filemarks(self, count: int) -> None: ...

    def space_blocks(self, count: int) -> int: ...

    def space_filemarks(self, count: int) -> int: ...

    def rewind(self) -> None: ...

    def seek_eod(self) -> None: ...

    def locate(self, block: int) -> None: ...

    def erase(self) -> None: ...

    def load(self) -> None: ...

    def unload(self) -> None: ...

    def early_warning(self) -> bool: ...

    def set_density(self, code: int) -> None: ...

    def density(self) -> int: ...

    def take_soft_errors(self) -> int:
        """Errors the medium corrected since the last call (st's mt_erreg); clears them."""
        ...


@runtime_checkable
class BufferingMedium(Protocol):
    """A Medium that buffers blocks and decodes ahead, and says when a call would wait.

    ``False`` means the call only moves bytes between the caller and the medium's
    buffers (or hands a batch to an idle codec thread): no tape motion, no codec work,
    so it may be served on the caller's event loop.
    """

    def write_would_wait(self, size: int) -> bool: ...

    def read_would_wait(self, max_size: int) -> bool: ...


@dataclass
class _File:
    """One tape file: its bytes, the end offsets of its blocks, and its filemark."""

    data: bytearray = field(default_factory=bytearray)
    bounds: list[int] = field(default_factory=list)
    filemark: bool = False


class MemoryMedium:
    """A pure in-memory tape for tests and for the offline tools.

    ``capacity`` (bytes, None = endless) is the physical length; the last
    ``early_warning_size`` bytes of it are the early-warning zone. Each filemark uses
    ``filemark_size`` bytes of tape. With ``boundaries=False`` reads ignore block
    boundaries and return the byte stream in the sizes asked for; spacing over blocks
    nobody has read yet uses ``stream_block`` bytes per block.
    """

    def __init__(
        self,
        *,
        capacity: int | None = None,
        early_warning_size: int = 0,
        filemark_size: int = 0,
        boundaries: bool = True,
        stream_block: int = 10240,
        write_protected: bool = False,
        loaded: bool = True,
        density: int = DEFAULT_DENSITY,
    ) -> None:
        if stream_block <= 0:
            raise ValueError("stream_block must be positive")
        self.capacity = capacity
        self.early_warning_size = early_warning_size
        self.filemark_size = filemark_size
        self.boundaries = boundaries
        self.stream_block = stream_block
        self.write_protected = write_protected
        self.loaded = loaded
        self._density = density
        self._files: list[_File] = [_File()]
        self._file = 0
        self._block = 0
        self.filemarks_written = 0
        self.blocks_written = 0

    # -- construction helpers ------------------------------------------------------

    @classmethod
    def from_files(cls, files: list[list[bytes]], **kwargs: object) -> MemoryMedium:
        """A tape holding ``files`` (lists of blocks), each ended by a filemark."""
        medium = cls(**kwargs)  # type: ignore[arg-type]
        medium._files = []
        for blocks in files:
            f = _File(filemark=True)
            for b in blocks:
                f.data += b
                f.bounds.append(len(f.data))
            medium._files.append(f)
        medium._files.append(_File())
        return medium

    @classmethod
    def from_streams(cls, streams: list[bytes], **kwargs: object) -> MemoryMedium:
        """A foreign tape: each stream is one recording, no block boundaries."""
        kwargs.setdefault("boundaries", False)
        medium = cls(**kwargs)  # type: ignore[arg-type]
        medium._files = [_File(bytearray(s), [], True) for s in streams]
        medium._files.append(_File())
        return medium

    def files(self) -> list[list[bytes]]:
        """The tape contents as lists of blocks, one list per file (blank tail omitted).

        The last list is an unterminated file if data follows the last filemark.
        """
        out = []
        for i, f in enumerate(self._files):
            if i == len(self._files) - 1 and not f.data:
                break
            ends = self._bounds(f)
            starts = [0, *ends][: len(ends)]
            out.append([bytes(f.data[a:b]) for a, b in zip(starts, ends, strict=True)])
        return out

    def streams(self) -> list[bytes]:
        """The tape contents as one byte string per file (blank tail omitted)."""
        return [b"".join(blocks) for blocks in self.files()]

    # -- geometry of a file --------------------------------------------------------

    def _bounds(self, f: _File) -> list[int]:
        """End offsets of all blocks of ``f``, virtual ones included."""
        ends = list(f.bounds)
        last = ends[-1] if ends else 0
        while last < len(f.data):
            last = min(last + self.stream_block, len(f.data))
            ends.append(last)
        return ends

    def _nblocks(self, f: _File) -> int:
        known = f.bounds[-1] if f.bounds else 0
        rest = len(f.data) - known
        return len(f.bounds) + -(-rest // self.stream_block)

    def _offset(self, f: _File, block: int) -> int:
        if block == 0:
            return 0
        if block <= len(f.bounds):
            return f.bounds[block - 1]
        known = f.bounds[-1] if f.bounds else 0
        return min(known + (block - len(f.bounds)) * self.stream_block, len(f.data))

    def _used(self) -> int:
        """Tape used up to the head, in bytes."""
        before = sum(len(f.data) + self.filemark_size for f in self._files[: self._file])
        return before + self._offset(self._files[self._file], self._block)

    def _require_loaded(self) -> None:
        if not self.loaded:
            raise TapeError("no cassette loaded", errno=errno.ENOMEDIUM)

    def _require_writable(self) -> None:
        self._require_loaded()
        if self.write_protected:
            raise TapeError("cassette is write-protected", errno=errno.EACCES)

    def _truncate_here(self) -> _File:
        """Discard everything after the head; return the (now last) current file."""
        f = self._files[self._file]
        del self._files[self._file + 1 :]
        off = self._offset(f, self._block)
        del f.data[off:]
        f.bounds = [b for b in f.bounds if b <= off]
        if off and (not f.bounds or f.bounds[-1] != off):
            # the head stood at a virtual boundary: make it real
            f.bounds = self._bounds(f)[: self._block]
        f.filemark = False
        return f

    # -- the Medium protocol -------------------------------------------------------

    def position(self) -> TapePosition:
        return TapePosition(self._file, self._block)

    def tell(self) -> int:
        self._require_loaded()
        return spacing.logical_block(self, self.position())

    def at_bot(self) -> bool:
        return self._file == 0 and self._block == 0

    def blocks_in(self, file: int) -> int:
        return self._nblocks(self._files[file]) if file < len(self._files) else 0

    def filemark_after(self, file: int) -> bool:
        return file < len(self._files) and self._files[file].filemark

    def read_block(self, max_size: int) -> bytes | Mark:
        self._require_loaded()
        f = self._files[self._file]
        if self._block < self._nblocks(f):
            start = self._offset(f, self._block)
            if self.boundaries:
                end = self._offset(f, self._block + 1)
            else:
                end = min(start + max(max_size, 1), len(f.data))
                # re-chunk the stream from here: this read defines the block
                f.bounds = [*self._bounds(f)[: self._block], end]
            self._block += 1
            return bytes(f.data[start:end])
        if f.filemark:
            self._file += 1
            self._block = 0
            return FILEMARK
        return END_OF_DATA

    def write_block(self, data: bytes) -> None:
        self._require_writable()
        if self.capacity is not None and self._used() + len(data) > self.capacity:
            raise TapeError("physical end of tape", errno=errno.ENOSPC)
        f = self._truncate_here()
        f.data += data
        f.bounds.append(len(f.data))
        self._block += 1
        self.blocks_written += 1

    def write_filemarks(self, count: int) -> None:
        if count < 1:
            raise ValueError("write_filemarks needs count >= 1")
        self._require_writable()
        if self.capacity is not None and self._used() + count * self.filemark_size > (
            self.capacity
        ):
            raise TapeError("physical end of tape", errno=errno.ENOSPC)
        f = self._truncate_here()
        f.bounds = self._bounds(f)
        f.filemark = True
        self._files.extend(_File(filemark=True) for _ in range(count - 1))
        self._files.append(_File())
        self._file += count
        self._block = 0
        self.filemarks_written += count

    def space_blocks(self, count: int) -> int:
        self._require_loaded()
        (self._file, self._block), done = spacing.space_blocks(self, self.position(), count)
        return done

    def space_filemarks(self, count: int) -> int:
        self._require_loaded()
        (self._file, self._block), done = spacing.space_filemarks(
            self, self.position(), count)
        return done

    def rewind(self) -> None:
        self._require_loaded()
        self._file = self._block = 0

    def seek_eod(self) -> None:
        self._require_loaded()
        self._file, self._block = spacing.end_of_data(self)

    def locate(self, block: int) -> None:
        self._require_loaded()
        if block < 0:
            raise TapeError("negative block address", errno=errno.EINVAL)
        target = spacing.locate(self, block)
        if target is None:
            self.seek_eod()
            raise TapeError(f"block {block} is beyond end of data", errno=errno.EIO)
        self._file, self._block = target

    def erase(self) -> None:
        self._require_writable()
        self._truncate_here()

    def load(self) -> None:
        self.loaded = True
        self._file = self._block = 0

    def unload(self) -> None:
        self._file = self._block = 0
        self.loaded = False

    def early_warning(self) -> bool:
        if self.capacity is None or not self.loaded:
            return False
        return self._used() >= self.capacity - self.early_warning_size

    def set_density(self, code: int) -> None:
        if not is_valid_density(code):
            raise TapeError(f"unknown density code {code:#x}", errno=errno.EINVAL)
        self._density = code

    def density(self) -> int:
        return self._density

    def take_soft_errors(self) -> int:
        return 0  # memory never needs correcting

"""The tape node as a job uses it: position with st ioctls, write and read one file.

Thin edge over ``os`` and ``fcntl`` on the daemon's non-rewinding node (a CUSE device or
the FUSE fallback's file; both answer the st ioctls). Every OS error becomes a
``TapeError`` naming the node and what was being done, with the kernel's errno.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator

from backerd.errors import TapeError
from backerd.tape import mtio

READ_SIZE = 256 * 1024  # larger than any block a job writes: one read, one block


class TapeNode:
    """An open tape node (non-rewinding), closed by ``close`` or the context manager."""

    def __init__(self, path: str, *, write: bool) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_WRONLY if write else os.O_RDONLY)
        except OSError as exc:
            raise TapeError(f"cannot open {path}: {exc.strerror}", errno=exc.errno) from None

    def __enter__(self) -> TapeNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closing after a write puts the filemark on tape; its errors are reported."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            try:
                os.close(fd)
            except OSError as exc:
                raise TapeError(f"closing {self.path} (the filemark): {exc.strerror}",
                                errno=exc.errno) from None

    def op(self, op: int, count: int = 1) -> None:
        try:
            fcntl.ioctl(self.fd, mtio.MTIOCTOP, mtio.MtOp(op, count).pack())
        except OSError as exc:
            raise TapeError(f"{mtio.OP_NAMES.get(op, op)} {count} on {self.path}: "
                            f"{exc.strerror}", errno=exc.errno) from None

    def position(self) -> tuple[int, int]:
        """(file number, block number) as MTIOCGET reports them."""
        try:
            raw = fcntl.ioctl(self.fd, mtio.MTIOCGET, bytes(mtio.MTGET_SIZE))
        except OSError as exc:
            raise TapeError(f"MTIOCGET on {self.path}: {exc.strerror}",
                            errno=exc.errno) from None
        get = mtio.MtGet.unpack(raw)
        return get.fileno, get.blkno

    def end_of_data(self) -> int:
        """Wind to end of data; the number of the file a write there creates."""
        self.op(mtio.MTEOM)
        return self.position()[0]

    def seek_file(self, number: int) -> None:
        """Stand at the first block of file ``number``, winding the shorter way."""
        here, block = self.position()
        if number == 0:
            self.op(mtio.MTREW)
        elif here > number or (here == number and block > 0):
            self.op(mtio.MTBSF, here - number + 1)  # to the end of file number - 1
            self.op(mtio.MTFSF, 1)
        elif here < number:
            self.op(mtio.MTFSF, number - here)
        if self.position() != (number, 0):
            self.op(mtio.MTREW)
            if number:
                self.op(mtio.MTFSF, number)
        if self.position() != (number, 0):
            raise TapeError(f"{self.path}: cannot stand at the start of file {number} "
                            f"(at {self.position()})")

    def write_block(self, block: bytes) -> None:
        try:
            written = os.write(self.fd, block)
        except OSError as exc:
            raise TapeError(f"writing {self.path}: {exc.strerror}", errno=exc.errno) from None
        if written != len(block):
            raise TapeError(f"writing {self.path}: short write ({written} of {len(block)})")

    def blocks(self) -> Iterator[bytes]:
        """The blocks of the file here, up to its filemark."""
        while True:
            try:
                block = os.read(self.fd, READ_SIZE)
            except OSError as exc:
                raise TapeError(f"reading {self.path}: {exc.strerror}",
                                errno=exc.errno) from None
            if not block:
                return
            yield block

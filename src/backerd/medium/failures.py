"""How failures below the medium reach st: every one as a ``TapeError`` with its errno.

Theory of operation. The deck, the catalog and the codecs raise ``BackerError``s (a
``MediumError`` ENOSPC at the end of the tape, EACCES when write-protected, ...), and
the host raises ``OSError`` when the cassette image cannot be written (a full disk is
ENOSPC). The Drive only knows ``TapeError``: ``tape_errors`` converts both kinds at the
medium's edge, keeping the errno, so the writer sees ENOSPC for a full host disk and
not an internal error (with no traceback: the medium logs the failed write in one
line).
"""

from __future__ import annotations

import errno
from types import TracebackType

from backerd.errors import BackerError, TapeError


def as_tape_error(exc: BackerError) -> TapeError:
    if isinstance(exc, TapeError):
        return exc
    return TapeError(exc.message, errno=exc.errno)


class _TapeErrors:
    """The context of ``tape_errors`` (a class, not a generator: it is entered for
    every block read or written, and costs a fraction of a generator's set-up)."""

    __slots__ = ("action",)

    def __init__(self, action: str) -> None:
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if isinstance(exc, BackerError):
            raise as_tape_error(exc) from None
        if isinstance(exc, OSError):
            code = exc.errno or errno.EIO
            reason = exc.strerror or str(exc)
            raise TapeError(f"{self.action}: cassette image: {reason}", errno=code) from None
        return False


def tape_errors(action: str) -> _TapeErrors:
    """Run a deck or catalog step; its failures leave as ``TapeError`` (errno kept)."""
    return _TapeErrors(action)

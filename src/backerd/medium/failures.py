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
from collections.abc import Iterator
from contextlib import contextmanager

from backerd.errors import BackerError, TapeError


def as_tape_error(exc: BackerError) -> TapeError:
    if isinstance(exc, TapeError):
        return exc
    return TapeError(exc.message, errno=exc.errno)


@contextmanager
def tape_errors(action: str) -> Iterator[None]:
    """Run a deck or catalog step; its failures leave as ``TapeError`` (errno kept)."""
    try:
        yield
    except BackerError as exc:
        raise as_tape_error(exc) from None
    except OSError as exc:
        code = exc.errno or errno.EIO
        reason = exc.strerror or str(exc)
        raise TapeError(f"{action}: cassette image: {reason}", errno=code) from None

"""Failed assertions that code under test swallowed, brought back to the test.

The dispatcher answers EIO for any exception a handler or its own reply path raises,
and logs it: right for the daemon, but an ``assert`` in a fake handler or a fake kernel
would then only cost the request an EIO, and a test checking something else would pass.
``escaped_assertions`` watches the ``backerd`` loggers for records carrying an
AssertionError and re-raises the first one when the block ends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class _Catcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.caught: list[AssertionError] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and isinstance(record.exc_info[1], AssertionError):
            self.caught.append(record.exc_info[1])


@contextmanager
def escaped_assertions(logger: str = "backerd") -> Iterator[None]:
    """Raise, at the end of the block, an AssertionError that was caught and logged."""
    catcher = _Catcher()
    target = logging.getLogger(logger)
    target.addHandler(catcher)
    try:
        yield
    finally:
        target.removeHandler(catcher)
    if catcher.caught:
        raise catcher.caught[0]

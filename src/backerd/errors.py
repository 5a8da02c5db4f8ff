"""One error tree for the whole product.

Every error carries a one-line message for people, an errno for the kernel reply
and an exit status for the command line, so the mapping lives in one place.
"""

from __future__ import annotations

import errno as _errno


class BackerError(Exception):
    """Base of every error the product raises on purpose."""

    errno: int = _errno.EIO
    exit_status: int = 1

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        if errno is not None:
            self.errno = errno

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class UsageError(BackerError):
    """The caller asked for something that does not exist or makes no sense."""

    errno = _errno.EINVAL
    exit_status = 2


class FormatError(BackerError):
    """A stream is not a valid Backer stream in the requested mode/format."""

    errno = _errno.EIO
    exit_status = 3


class MediumError(BackerError):
    """Data on the medium could not be recovered (after all correction)."""

    errno = _errno.EIO
    exit_status = 4


class TapeError(BackerError):
    """An st operation failed; errno is what the device returns to the caller."""

    exit_status = 5


class ProtocolError(BackerError):
    """The kernel sent a request that violates the FUSE/CUSE protocol."""

    errno = _errno.EPROTO
    exit_status = 6


class HardwareUnavailable(BackerError):
    """A hardware interface (card, port, /dev/cuse, LIRC) is missing or busy."""

    errno = _errno.ENODEV
    exit_status = 7


class ControlError(BackerError):
    """A VCR could not be brought into the requested motion (operator, LIRC, deck)."""

    errno = _errno.EIO
    exit_status = 7


class CryptError(BackerError):
    """A key is missing, malformed or wrong, or encrypted data failed its check."""

    errno = _errno.EACCES
    exit_status = 13


class ConfigError(UsageError):
    """The configuration file is invalid."""


class PreflightFailed(BackerError):
    """A backup cannot start: wrong cassette, write-protected, no room, worn out."""

    errno = _errno.EAGAIN
    exit_status = 8


class ArchiverError(BackerError):
    """The archiver (GNU tar) failed or could not be run."""

    exit_status = 9


class VerifyMismatch(MediumError):
    """What was read back from tape differs from what was written."""

    exit_status = 10


class CassetteNeeded(BackerError):
    """The operation needs a cassette that is not the one loaded."""

    errno = _errno.ENOMEDIUM
    exit_status = 11


class InstallError(BackerError):
    """Installing the service files failed, or systemd rejects them."""

    errno = _errno.EIO
    exit_status = 12


class UnsafePermissions(ConfigError):
    """A file or directory the daemon trusts can be changed by other users."""

    errno = _errno.EPERM


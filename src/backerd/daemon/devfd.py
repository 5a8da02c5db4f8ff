"""A /dev/fuse or /dev/cuse file descriptor as a trio request source and reply sink.

The fd is non-blocking: the loop waits for it with ``trio.lowlevel.wait_readable`` and
each read(2) returns exactly one request. A request already queued is read without a
trip through the scheduler; other tasks run whenever the fd is empty, and after every
``CHECKPOINT_EVERY`` requests read back to back. Replies are single write(2)s, which the
kernel processes synchronously (they never block).
"""

from __future__ import annotations

import errno as _errno
import logging
import os

import trio

from backerd.errors import HardwareUnavailable

log = logging.getLogger("backerd.devfd")


def open_device(path: str) -> int:
    """Open a FUSE/CUSE control device, or say clearly why it is not there."""
    try:
        return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise HardwareUnavailable(f"{path} is missing (is the kernel module loaded?)") from None
    except OSError as exc:
        raise HardwareUnavailable(f"cannot open {path}: {exc.strerror}") from None


# Requests received back to back, with no wait for the fd between them, before the loop
# lets other tasks run anyway: a scheduler round trip costs about as much as serving a
# buffered 10 KiB write, so taking one per request would halve the small-record rate.
CHECKPOINT_EVERY = 16


class DeviceChannel:
    def __init__(self, fd: int, buffer_size: int, name: str = "the device") -> None:
        self.fd = fd
        self.name = name
        self.buffer_size = buffer_size
        self._unyielded = 0  # requests returned since the loop last ran other tasks

    async def receive(self) -> bytes | None:
        """The next request, or None once the connection is gone (unmounted/aborted)."""
        while True:
            try:
                buf = os.read(self.fd, self.buffer_size)
            except BlockingIOError:
                self._unyielded = 0
                await trio.lowlevel.wait_readable(self.fd)
                continue
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno == _errno.ENOENT:  # the request was aborted before we read it
                    continue
                if exc.errno != _errno.ENODEV:
                    log.error("reading %s failed: %s", self.name, exc)
                return None
            if not buf:  # end of file: nothing more will come (the kernel never sends 0 bytes)
                return None
            self._unyielded += 1
            if self._unyielded >= CHECKPOINT_EVERY:
                # Let other tasks run, without dropping the request just read.
                self._unyielded = 0
                await trio.lowlevel.cancel_shielded_checkpoint()
            return buf

    def send(self, reply: bytes) -> None:
        try:
            os.write(self.fd, reply)
        except OSError as exc:
            if exc.errno == _errno.ENOENT:
                log.debug("reply to a request the kernel no longer waits for (interrupted)")
            elif exc.errno == _errno.ENODEV:
                log.debug("reply after the connection went away")
            else:
                log.error("kernel rejected a reply: %s", exc)

"""mount(2)/umount2(2) of a FUSE filesystem through ctypes (no fusermount needed as root)."""

from __future__ import annotations

import ctypes
import errno as _errno
import logging
import os
from pathlib import Path

from backerd.errors import HardwareUnavailable

log = logging.getLogger("backerd.mount")

MS_NOSUID = 2
MS_NODEV = 4
MNT_DETACH = 2
FS_TYPE = "fuse.backerd"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _umount2(path: Path, flags: int) -> int:
    """0 on success, else the errno."""
    if _libc.umount2(os.fsencode(path), flags) == 0:
        return 0
    return ctypes.get_errno()


def prepare_mountpoint(path: Path) -> None:
    """Create the mountpoint if missing; detach a dead FUSE mount left on it by a crash."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno != _errno.ENOTCONN:
            raise HardwareUnavailable(f"cannot create mountpoint {path}: {exc.strerror}") from None
        log.warning("%s: stale FUSE mount (its server died); detaching it", path)
        _umount2(path, MNT_DETACH)
        path.mkdir(parents=True, exist_ok=True)


def mount_fuse(fd: int, path: Path, *, source: str = "backerd") -> None:
    """Mount the FUSE connection behind ``fd`` on ``path`` (allow_other: every user the
    files' owner, group and mode allow may use them; default_permissions: the kernel
    checks those bits, as it does for the CUSE char devices)."""
    options = (f"fd={fd},rootmode=40000,user_id={os.getuid()},group_id={os.getgid()},"
               "allow_other,default_permissions")
    if _libc.mount(source.encode(), os.fsencode(path), FS_TYPE.encode(),
                   MS_NOSUID | MS_NODEV, options.encode()) != 0:
        err = ctypes.get_errno()
        raise HardwareUnavailable(f"cannot mount FUSE on {path}: {os.strerror(err)}",
                                  errno=err)


def unmount(path: Path) -> None:
    """Unmount; if something still uses the mount, detach it lazily instead."""
    err = _umount2(path, 0)
    if err in (0, _errno.EINVAL, _errno.ENOENT):  # EINVAL: not mounted (any more)
        return
    log.info("%s busy (%s); detaching", path, os.strerror(err))
    err = _umount2(path, MNT_DETACH)
    if err not in (0, _errno.EINVAL, _errno.ENOENT):
        log.error("cannot unmount %s: %s", path, os.strerror(err))

"""mount(2)/umount2(2) of a FUSE filesystem through ctypes (no fusermount needed as root)."""

from __future__ import annotations

import ctypes
import errno as _errno
import logging
import os
import re
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


_OCTAL_ESCAPE = re.compile(rb"\\([0-7]{3})")


def mount_table(mountinfo: bytes) -> list[tuple[bytes, str]]:
    """(mountpoint, filesystem type) of every line of /proc/self/mountinfo, in order
    (fields: id parent major:minor root mountpoint options [optional...] - fstype source
    superoptions; the kernel escapes space, tab, newline and backslash as octal)."""
    table = []
    for line in mountinfo.splitlines():
        fields = line.split(b" ")
        if len(fields) < 10 or b"-" not in fields[6:]:
            continue
        point = _OCTAL_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8)]), fields[4])
        table.append((point, fields[fields.index(b"-", 6) + 1].decode(errors="replace")))
    return table


def mounts_at(path: Path, mountinfo: bytes) -> list[str]:
    """The filesystem types mounted on ``path``, bottom first."""
    target = os.fsencode(os.path.realpath(path))
    return [kind for point, kind in mount_table(mountinfo) if point == target]


def read_mountinfo() -> bytes:
    try:
        with open("/proc/self/mountinfo", "rb") as table:
            return table.read()
    except OSError:
        return b""


def probe(path: Path) -> int:
    """0 when the filesystem on ``path`` answers, else the errno. opendir always reaches a
    FUSE server, where stat may be answered from the kernel's attribute cache."""
    try:
        os.listdir(path)
    except OSError as exc:
        return exc.errno or _errno.EIO
    return 0


def prepare_mountpoint(path: Path) -> None:
    """Create the mountpoint if missing, and make sure nothing of ours is mounted on it.

    After a crash (kill -9, OOM) the old FUSE mount stays in the table, dead: every access
    fails with ENOTCONN. It is detached here; mounting over it instead would leave it
    underneath for good. A live FUSE mount is another server still running, and is
    refused rather than hidden."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno != _errno.ENOTCONN:
            raise HardwareUnavailable(f"cannot create mountpoint {path}: {exc.strerror}") from None
    for _ in range(8):  # a crash loop may have stacked several
        kinds = mounts_at(path, read_mountinfo())
        if not kinds or not kinds[-1].startswith("fuse"):
            break
        err = probe(path)
        if err == 0:
            raise HardwareUnavailable(
                f"{path} is already a live FUSE mount ({kinds[-1]}): another server is "
                "serving it; stop that one, or give this one another --fuse-root")
        if err != _errno.ENOTCONN:
            raise HardwareUnavailable(f"cannot use mountpoint {path}: {os.strerror(err)}",
                                      errno=err)
        log.warning("%s: stale FUSE mount (its server died); detaching it", path)
        err = _umount2(path, MNT_DETACH)
        if err:
            raise HardwareUnavailable(
                f"cannot detach the stale FUSE mount on {path}: {os.strerror(err)}", errno=err)
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

"""The FUSE fallback's namespace: one root directory holding one regular file per node.

Theory of operation: on FUSE the kernel walks a filesystem before it can open a
file, so besides the file operations the daemon must answer LOOKUP, GETATTR,
SETATTR, OPENDIR/READDIR/RELEASEDIR, STATFS, ACCESS, GETXATTR and FORGET. The
namespace is fixed at mount time: the root (inode 1) and files with inodes 2, 3, …
in the order given. Files have the owner, group and permission bits given (by default
root, root, 0660: the kernel enforces them, the mount has default_permissions), size 0;
SETATTR (O_TRUNC, truncate(1))
is accepted and changes nothing, so truncation never erases a tape. Times are a
parameter (the mount time), not read from a clock here.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Iterable

from backerd.kernel import abi
from backerd.kernel import events as ev
from backerd.kernel.connection import Attributes, Connection, DirEntry

DEFAULT_FILE_PERMISSIONS = 0o660
ROOT_MODE = abi.S_IFDIR | 0o755

# Requests the namespace answers on its own (everything but the file operations).
NAMESPACE_REQUESTS = (
    ev.Lookup, ev.GetAttr, ev.SetAttr, ev.OpenDir, ev.ReadDir, ev.ReleaseDir, ev.StatFs,
    ev.Access, ev.GetXattr, ev.Forget, ev.BatchForget,
)


def _check_name(name: str) -> bytes:
    raw = name.encode()
    if not raw or raw in (b".", b"..") or b"/" in raw or b"\0" in raw or len(raw) > 255:
        raise ValueError(f"{name!r} cannot be a file name")
    return raw


class Namespace:
    def __init__(self, names: Iterable[str], *, uid: int = 0, gid: int = 0,
                 permissions: int = DEFAULT_FILE_PERMISSIONS, time: int = 0):
        self._by_name: dict[bytes, int] = {}
        for name in names:
            raw = _check_name(name)
            if raw in self._by_name:
                raise ValueError(f"file name {name!r} given twice")
            self._by_name[raw] = abi.FUSE_ROOT_ID + 1 + len(self._by_name)
        self._names = {ino: raw.decode() for raw, ino in self._by_name.items()}
        self._uid, self._gid, self._time = uid, gid, time
        self._file_mode = abi.S_IFREG | (permissions & 0o7777)

    @property
    def node_ids(self) -> dict[str, int]:
        """File name -> inode number (the FUSE nodeid of its requests)."""
        return {name: ino for ino, name in self._names.items()}

    def is_file(self, nodeid: int) -> bool:
        return nodeid in self._names

    def attributes(self, nodeid: int) -> Attributes | None:
        if nodeid == abi.FUSE_ROOT_ID:
            return Attributes(abi.FUSE_ROOT_ID, ROOT_MODE, nlink=2, uid=self._uid,
                              gid=self._gid, time=self._time)
        if nodeid in self._names:
            return Attributes(nodeid, self._file_mode, uid=self._uid, gid=self._gid,
                              time=self._time)
        return None

    def _entries(self) -> list[DirEntry]:
        root = self.attributes(abi.FUSE_ROOT_ID)
        entries = [DirEntry(abi.FUSE_ROOT_ID, b".", abi.DT_DIR, root),
                   DirEntry(abi.FUSE_ROOT_ID, b"..", abi.DT_DIR, root)]
        for ino, name in self._names.items():
            entries.append(DirEntry(ino, name.encode(), abi.DT_REG, self.attributes(ino)))
        return entries

    def answer(self, conn: Connection, request: ev.Request) -> bytes | None:
        """The reply to a namespace request (None for those that get no reply)."""
        if isinstance(request, ev.Forget | ev.BatchForget):
            return None  # inodes live as long as the mount; nothing to forget
        if isinstance(request, ev.StatFs):
            return conn.reply_statfs(request)
        attrs = self.attributes(request.nodeid)
        if attrs is None:
            return conn.reply_error(request, _errno.ENOENT)
        is_root = request.nodeid == abi.FUSE_ROOT_ID
        if isinstance(request, ev.Lookup):
            ino = self._by_name.get(request.name) if is_root else None
            if ino is None:
                return conn.reply_error(request, _errno.ENOENT if is_root else _errno.ENOTDIR)
            found = self.attributes(ino)
            assert found is not None
            return conn.reply_entry(request, found)
        if isinstance(request, ev.GetAttr | ev.SetAttr):
            return conn.reply_attr(request, attrs)  # SETATTR: accepted, changes nothing
        if isinstance(request, ev.OpenDir):
            if not is_root:
                return conn.reply_error(request, _errno.ENOTDIR)
            return conn.reply_open(request, 0)
        if isinstance(request, ev.ReadDir):
            if not is_root:
                return conn.reply_error(request, _errno.ENOTDIR)
            return conn.reply_readdir(request, self._entries())
        if isinstance(request, ev.ReleaseDir | ev.Access):
            return conn.reply_empty(request)
        if isinstance(request, ev.GetXattr):
            # ENOSYS: "no xattrs here", and the kernel stops asking on every write.
            return conn.reply_error(request, _errno.ENOSYS)
        raise TypeError(f"{type(request).__name__} is not a namespace request")

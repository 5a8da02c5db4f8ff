"""The FUSE fallback transport: nodes as files in a FUSE-mounted directory.

Used where /dev/cuse is missing. Each node is a regular file opened with
FOPEN_DIRECT_IO (one syscall = one request, no page cache), FOPEN_STREAM (offsets
restart at 0 per syscall, so chunks can be reassembled as on CUSE) and
FOPEN_NONSEEKABLE (lseek fails, so tar reads instead of skipping).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import trio

from backerd.daemon import mount
from backerd.daemon.devfd import DeviceChannel, open_device
from backerd.daemon.dispatch import Dispatcher, NodeHandler
from backerd.errors import HardwareUnavailable
from backerd.kernel import abi
from backerd.kernel.connection import Connection
from backerd.kernel.fusefs import DEFAULT_FILE_PERMISSIONS, Namespace

FUSE_DEVICE = "/dev/fuse"
OPEN_FLAGS = abi.FOPEN_DIRECT_IO | abi.FOPEN_STREAM | abi.FOPEN_NONSEEKABLE
INIT_TIMEOUT = 10.0


def _max_pages_limit() -> int:
    try:
        with open("/proc/sys/fs/fuse/max_pages_limit") as sysctl:
            return int(sysctl.read())
    except (OSError, ValueError):
        return abi.FUSE_MAX_MAX_PAGES


async def serve_fuse(
    root: str | os.PathLike[str],
    nodes: Mapping[str, NodeHandler],
    *,
    max_pages: int = 256,
    uid: int = 0,
    gid: int = 0,
    permissions: int = DEFAULT_FILE_PERMISSIONS,
    task_status: trio.TaskStatus[dict[str, Path]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Mount ``root`` with one file per node and serve it until cancelled.

    ``max_pages`` sets the kernel's chunk size (32 pages = 128 KiB mimics CUSE). The
    files belong to ``uid``:``gid`` with ``permissions`` (the kernel enforces them).
    Reports ``{name: path}`` through ``task_status`` once the files exist. Unmounts on
    the way out (lazily if something still holds it).
    """
    root = Path(root)
    limit = _max_pages_limit()
    if not 1 <= max_pages <= limit:
        # A kernel that silently caps the chunk size would make records look complete early.
        raise ValueError(f"max_pages must be between 1 and {limit}, not {max_pages}")
    namespace = Namespace(nodes, uid=uid, gid=gid, permissions=permissions,
                          time=int(time.time()))
    handlers = {namespace.node_ids[name]: handler for name, handler in nodes.items()}
    conn = Connection("fuse", max_pages=max_pages)
    mount.prepare_mountpoint(root)
    fd = open_device(FUSE_DEVICE)
    mounted = False
    try:
        await trio.to_thread.run_sync(mount.mount_fuse, fd, root)
        mounted = True
        device = DeviceChannel(fd, conn.read_buffer_size, FUSE_DEVICE)
        dispatcher = Dispatcher(conn, handlers, device.send, namespace=namespace,
                                open_flags=OPEN_FLAGS)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(dispatcher.run, device.receive)
            with trio.move_on_after(INIT_TIMEOUT):
                while not (dispatcher.initialized.is_set() or dispatcher.closed.is_set()):
                    await trio.sleep(0.005)
            if dispatcher.initialized.is_set():
                task_status.started({name: root / name for name in nodes})
            else:
                nursery.cancel_scope.cancel()
        if not dispatcher.initialized.is_set():
            raise HardwareUnavailable(f"the FUSE mount on {root} did not initialise")
        raise HardwareUnavailable(f"the FUSE mount on {root} went away (unmounted?)")
    finally:
        if mounted:
            mount.unmount(root)
        os.close(fd)

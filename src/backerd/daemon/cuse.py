"""The CUSE transport: one character device (/dev/NAME) per node, one /dev/cuse fd each."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from backerd.daemon.devfd import DeviceChannel, open_device
from backerd.daemon.dispatch import Dispatcher, NodeHandler
from backerd.errors import HardwareUnavailable
from backerd.kernel import abi
from backerd.kernel.connection import Connection

CUSE_DEVICE = "/dev/cuse"
# CUSE always does direct I/O and never seeks; this is what the kernel was tested with.
OPEN_FLAGS = abi.FOPEN_DIRECT_IO
NODE_TIMEOUT = 10.0


def cuse_available() -> bool:
    return os.path.exists(CUSE_DEVICE)


async def serve_cuse(
    devname: str,
    handler: NodeHandler,
    *,
    unrestricted: bool = False,
    task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Create /dev/``devname`` and serve it until cancelled (closing the fd removes it).

    Raises ``HardwareUnavailable`` when /dev/cuse is missing (the caller falls back to
    FUSE) or the kernel refuses the device. Reports the node's path through
    ``task_status`` once it exists.
    """
    if not devname or "/" in devname or "\0" in devname:
        raise ValueError(f"{devname!r} cannot be a device name")
    conn = Connection("cuse", devname=devname, unrestricted_ioctl=unrestricted)
    fd = open_device(CUSE_DEVICE)
    node = Path("/dev") / devname
    try:
        device = DeviceChannel(fd, conn.read_buffer_size, CUSE_DEVICE)
        dispatcher = Dispatcher(conn, {0: handler}, device.send, open_flags=OPEN_FLAGS)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(dispatcher.run, device.receive)
            with trio.move_on_after(NODE_TIMEOUT):
                while not dispatcher.closed.is_set() and not (
                    dispatcher.initialized.is_set() and node.exists()
                ):
                    await trio.sleep(0.005)
            ready = dispatcher.initialized.is_set() and node.exists()
            if ready:
                task_status.started(node)
            else:
                nursery.cancel_scope.cancel()
        if not ready:
            raise HardwareUnavailable(f"CUSE did not create {node} (is the name taken?)")
        raise HardwareUnavailable(f"the CUSE connection of {node} went away")
    finally:
        os.close(fd)

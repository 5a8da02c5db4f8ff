"""The device channel reads queued requests back to back and still lets others run."""

from __future__ import annotations

import socket

import trio

from backerd.daemon.devfd import CHECKPOINT_EVERY, DeviceChannel


def test_queued_requests_are_read_in_order_and_other_tasks_still_run() -> None:
    # SOCK_SEQPACKET keeps message boundaries: one read(2) is one request, as on /dev/fuse
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    count = 3 * CHECKPOINT_EVERY + 1
    for i in range(count):
        kernel.send(i.to_bytes(4, "little"))
    channel = DeviceChannel(ours.fileno(), 4096)
    turns: list[int] = []  # how many requests were read when the other task ran

    async def main() -> None:
        received: list[bytes | None] = []

        async def other() -> None:
            while True:
                turns.append(len(received))
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            await trio.sleep(0)  # it has started
            turns.clear()
            for _ in range(count):
                received.append(await channel.receive())
            assert received == [i.to_bytes(4, "little") for i in range(count)]
            # the fd is empty: the channel waits, and the other task runs meanwhile
            with trio.move_on_after(0.05):
                await channel.receive()
            kernel.send(b"late")
            assert await channel.receive() == b"late"
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    finally:
        ours.close()
        kernel.close()
    # not after every request, but once every CHECKPOINT_EVERY of them (the scheduler
    # may run either task first in a round, so count the turns, not when they came)
    back_to_back = [t for t in turns if t < count]
    assert abs(len(back_to_back) - count // CHECKPOINT_EVERY) <= 1
    assert turns.count(count) > 5  # and freely while the channel waits for an empty fd

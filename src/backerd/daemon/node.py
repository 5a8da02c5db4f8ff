"""The NodeHandler of one node, and the per-unit runtime both nodes of a unit share.

A unit has one tape Drive and two nodes: the rewinding one (backerN) and the
non-rewinding one (nbackerN), as st's /dev/st0 and /dev/nst0 share one drive. Every
request runs the Drive under the unit's lock, so the Drive, which is not thread-safe,
sees one call at a time. A request that may wait for the tape or the codec (encoding a
record, decoding a field) runs in a worker thread (``trio.to_thread``), so it never
stalls the event loop, other openers, or other units. A read or write the Drive says
will not wait (``BufferedDrive.would_wait``: the medium only moves bytes to or from its
buffers, its codec working on another thread) is served on the loop itself: the
thread hand-off would cost as much as the call.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import trio

from backerd.daemon.config import UnitConfig
from backerd.daemon.dispatch import caller_uid
from backerd.daemon.liveness import WorkerSample
from backerd.errors import BackerError, TapeError

if TYPE_CHECKING:
    from backerd.daemon.changer import CassetteChanger
    from backerd.daemon.unittools import UnitTools

log = logging.getLogger("backerd")

T = TypeVar("T")
# Seconds an open waits for the RELEASE of a program whose close(2) has already returned.
CLOSE_GRACE = 5.0


class DriveLike(Protocol):
    """What a node needs from tape.drive.Drive (internals.md)."""

    def open(self, rewind_on_close: bool, flags: int) -> Any: ...

    def read(self, size: int, exact: bool = True) -> bytes: ...

    def write(self, data: bytes) -> int: ...

    def ioctl(self, cmd: int, arg: bytes, out_size: int, *, privileged: bool = False) -> bytes: ...

    def close(self) -> Any: ...

    def status(self) -> dict[str, Any]: ...


@runtime_checkable
class BufferedDrive(Protocol):
    """A Drive that tells when a read or write may wait (tape.drive.Drive)."""

    def would_wait(self, writing: bool, size: int) -> bool: ...


@dataclass(frozen=True)
class WorkProbe:
    """What a unit shows of the work done beside its Drive calls (the watchdog's view)."""

    position: Callable[[], int]  # the deck's tape position: moves while it plays or records
    lane_busy: Callable[[], bool]  # the codec lane has a job in flight


class Unit:
    """One served unit: its Drive, the lock that serialises it, and its nodes."""

    def __init__(
        self,
        config: UnitConfig,
        drive: DriveLike,
        *,
        on_shutdown: Callable[[], None] | None = None,
        tools: UnitTools | None = None,
        changer: CassetteChanger | None = None,
        probe: WorkProbe | None = None,
    ) -> None:
        self.config = config
        self.changer = changer  # eject and insert at run time
        self.probe = probe
        self.calls_started = 0  # Drive calls, counted in the worker thread (liveness)
        self.calls_finished = 0
        self.drive = drive
        # asked once: isinstance on a Protocol costs as much as a buffered write
        self._buffered = drive if isinstance(drive, BufferedDrive) else None
        self.tools = tools  # label, catalog, counters of the unit's cassette
        self.lock = trio.Lock()
        self.open_node: str | None = None  # which node holds the drive open
        # The holder's close(2) has returned (its FLUSH is done) and its RELEASE is on
        # the way: FUSE sends RELEASE after close(2) returns, so the next program's
        # open may overtake it. st's close returns only when the drive is free.
        self.closing = False
        self.released = trio.Event()  # set (and replaced) whenever the drive is closed
        self._on_shutdown = on_shutdown
        self._snapshot: dict[str, Any] = {}
        self._snapshot = self._status()
        self._stale = False  # a Drive call ran since the snapshot was taken
        self.nodes: dict[str, TapeNode] = {
            config.rewinding_node: TapeNode(self, config.rewinding_node, rewinding=True),
            config.non_rewinding_node: TapeNode(self, config.non_rewinding_node, rewinding=False),
        }

    def _status(self) -> dict[str, Any]:
        try:
            return dict(self.drive.status())
        except Exception as exc:  # status is informative: never let it break a request
            return {"error": str(exc)}

    @property
    def snapshot(self) -> dict[str, Any]:
        """The Drive's status after the last request that has finished.

        Taken when asked for, not after every request (it costs as much as serving a
        small record), and only while no Drive call runs: the Drive is not thread-safe,
        and every call runs under the lock. While one runs, the last snapshot stands.
        """
        if self._stale and not self.lock.locked():
            self._snapshot = self._status()
            self._stale = False
        return self._snapshot

    def worker_sample(self) -> WorkerSample:
        """The unit's worker as the watchdog sees it (values only: no lock, no I/O)."""
        probe = self.probe
        started, finished = self.calls_started, self.calls_finished
        lane_busy = probe is not None and probe.lane_busy()
        position = probe.position() if probe is not None else None
        return WorkerSample(f"unit {self.config.number}", started != finished or lane_busy,
                            (finished, position), waiting=self.waiting_by_design())

    def waiting_by_design(self) -> bool:
        """Whether the worker waits for a person or an outside daemon (not stuck)."""
        return False

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        self.calls_started += 1
        try:
            return fn(*args)
        except BackerError:
            raise
        except Exception as exc:
            # a bug below must cost the caller one EIO, not the daemon its life
            log.exception("unit %d: internal error in %s", self.config.number, fn.__name__)
            raise TapeError(f"internal error: {exc}", errno=errno.EIO) from exc
        finally:
            self._stale = True
            self.calls_finished += 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker thread, one call per unit at a time."""
        async with self.lock:
            return await trio.to_thread.run_sync(self._call, fn, args)

    def transfer_now(self, writing: bool, fn: Callable[..., T], *args: Any) -> T | None:
        """A read or write run at once on the loop when the Drive says it will not wait;
        None (nothing done) when it may wait or another call holds the Drive."""
        drive = self._buffered
        if drive is None or self.lock.locked():
            return None
        # The lock is free and stays free: nothing else runs on the loop until this call
        # returns, and threads use the Drive only under the lock; so it is not taken
        # (acquiring and releasing a trio lock costs microseconds on every request).
        if self._would_wait(drive, writing, args):
            return None
        return self._call(fn, args)

    async def transfer(self, writing: bool, fn: Callable[..., T], *args: Any) -> T:
        """A read or write: on the loop when the Drive says it will not wait, else as
        ``run``."""
        result = self.transfer_now(writing, fn, *args)
        if result is not None:
            return result
        return await self.run(fn, *args)

    def _would_wait(self, drive: BufferedDrive, writing: bool, args: tuple[Any, ...]) -> bool:
        size = len(args[0]) if writing else args[0]
        try:
            return drive.would_wait(writing, size)
        except Exception:  # a question only: the call itself reports what is wrong
            log.exception("unit %d: would_wait failed", self.config.number)
            return True

    async def shutdown(self) -> None:
        """Close an open recording (filemark = EOR) and release the medium.

        Called shielded on the way out, after the transports have stopped.
        """
        with trio.CancelScope(shield=True):
            if self.open_node is not None:
                log.info(
                    "unit %d: closing %s, which was still open (ends the recording)",
                    self.config.number,
                    self.open_node,
                )
                try:
                    await self.run(self.drive.close)
                except BackerError as exc:
                    log.error("unit %d: closing the drive failed: %s", self.config.number,
                              exc.message)
                self.open_node = None
            if self._on_shutdown is not None:
                async with self.lock:
                    await trio.to_thread.run_sync(self._on_shutdown)


class TapeNode:
    """NodeHandler (internals.md) of one node: async calls in, Drive calls out."""

    def __init__(self, unit: Unit, name: str, *, rewinding: bool) -> None:
        self.unit = unit
        self.name = name
        self.rewinding = rewinding

    async def open(self, flags: int) -> None:
        unit = self.unit
        if unit.closing and unit.open_node is not None:
            # the previous program has closed: wait for its RELEASE, not EBUSY
            with trio.move_on_after(CLOSE_GRACE):
                await unit.released.wait()
        await unit.run(unit.drive.open, self.rewinding, flags)
        unit.open_node = self.name
        unit.closing = False

    async def read(self, size: int, exact: bool) -> bytes:
        return await self.unit.transfer(False, self.unit.drive.read, size, exact)

    async def write(self, data: bytes) -> int:
        return await self.unit.transfer(True, self.unit.drive.write, data)

    def read_now(self, size: int, exact: bool) -> bytes | None:
        return self.unit.transfer_now(False, self.unit.drive.read, size, exact)

    def write_now(self, data: bytes) -> int | None:
        return self.unit.transfer_now(True, self.unit.drive.write, data)

    async def ioctl(self, cmd: int, arg: bytes, out_size: int) -> bytes:
        # st allows MTSETDRVBUFFER to CAP_SYS_ADMIN only; root stands for it here
        if caller_uid.get() != 0:
            return await self.unit.run(self.unit.drive.ioctl, cmd, arg, out_size)
        drive = self.unit.drive

        def ioctl_privileged(cmd: int, arg: bytes, out_size: int) -> bytes:
            return drive.ioctl(cmd, arg, out_size, privileged=True)

        return await self.unit.run(ioctl_privileged, cmd, arg, out_size)

    async def flush(self) -> None:
        await self.unit.run(self.unit.drive.flush)
        self.unit.closing = True

    async def release(self) -> None:
        # on cancellation the drive stays marked open, so shutdown() still closes it
        try:
            await self.unit.run(self.unit.drive.close)
        except BackerError:
            self._forget()
            raise
        self._forget()

    def _forget(self) -> None:
        unit = self.unit
        if unit.open_node == self.name:
            unit.open_node = None
            unit.closing = False
            unit.released.set()
            unit.released = trio.Event()

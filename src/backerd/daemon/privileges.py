"""Least privilege after start-up: the daemon keeps only the capabilities it still needs.

Theory of operation. Everything privileged happens while the daemon starts: loading
cuse, opening /dev/cuse, mounting the FUSE fallback (CAP_SYS_ADMIN), opening /dev/port and
mapping /dev/mem for a real card (CAP_SYS_RAWIO; the kernel checks it at open and mmap,
never on the reads and writes through the descriptor). Once every node and the control
socket are up, ``needed`` (a rule table, pure) says what is left to do: only the FUSE
fallback still needs CAP_SYS_ADMIN, to unmount when it stops. ``drop_to`` then sets
no_new_privs, drops every other capability from the bounding set (where CAP_SETPCAP
allows it: under systemd's CapabilityBoundingSet= the set is already that small) and from
the permitted, effective, inheritable and ambient sets. With no_new_privs, an execve can
give back nothing the permitted set no longer holds, root or not.

Capabilities belong to each thread, not to the process, and a new thread inherits its
creator's. So ``drop_everywhere`` drops them on the event loop's thread (which starts
every later trio worker) and then in every thread already running: it hands one job per
other thread to trio's worker threads at once, each job holding its thread until all
have run, so each idle cached worker takes exactly one. The codec lanes start their
thread on their first job, from a worker that has already dropped.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("backerd")

CAP_SETGID, CAP_SETUID, CAP_SETPCAP = 6, 7, 8
CAP_SYS_RAWIO, CAP_SYS_ADMIN = 17, 21
CAP_NAMES = {CAP_SETGID: "CAP_SETGID", CAP_SETUID: "CAP_SETUID", CAP_SETPCAP: "CAP_SETPCAP",
             CAP_SYS_RAWIO: "CAP_SYS_RAWIO", CAP_SYS_ADMIN: "CAP_SYS_ADMIN"}

# what a running daemon still does that needs a capability, by transport (rules as data)
NEEDED_BY_TRANSPORT: dict[str, frozenset[int]] = {
    "fuse": frozenset({CAP_SYS_ADMIN}),  # umount2 of the FUSE mount when it stops
    "cuse": frozenset(),  # the kernel removes the nodes when /dev/cuse closes
}
# A real card's /dev/port and /dev/mem are open and mapped by then; nothing else needs
# CAP_SYS_RAWIO, so no deck adds a capability.

_PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT = 24, 38, 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CAP_LAST_CAP = Path("/proc/sys/kernel/cap_last_cap")


def needed(transport: str) -> frozenset[int]:
    return NEEDED_BY_TRANSPORT[transport]


def names(caps: Iterable[int]) -> str:
    return " ".join(CAP_NAMES.get(c, f"cap{c}") for c in sorted(caps)) or "none"


def mask(caps: Iterable[int]) -> int:
    out = 0
    for cap in caps:
        out |= 1 << cap
    return out


@dataclass(frozen=True)
class ThreadCaps:
    """The capability sets of one thread, as /proc/<pid>/task/<tid>/status shows them."""

    effective: int
    permitted: int
    bounding: int
    inheritable: int = 0
    ambient: int = 0


def parse_status(text: str) -> ThreadCaps | None:
    """The Cap* lines of a /proc status file; None when they are not all there."""
    fields: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
            try:
                fields[key] = int(value.strip(), 16)
            except ValueError:
                return None
    if not {"CapEff", "CapPrm", "CapBnd"} <= fields.keys():
        return None
    return ThreadCaps(fields["CapEff"], fields["CapPrm"], fields["CapBnd"],
                      fields.get("CapInh", 0), fields.get("CapAmb", 0))


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_libc = ctypes.CDLL(None, use_errno=True)


def _last_cap() -> int:
    try:
        return int(_CAP_LAST_CAP.read_text())
    except (OSError, ValueError):
        return 40


def _current() -> tuple[int, int]:
    """(effective, permitted) of the calling thread."""
    header, data = _Header(_LINUX_CAPABILITY_VERSION_3, 0), (_Data * 2)()
    if _libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    eff = data[0].effective | data[1].effective << 32
    prm = data[0].permitted | data[1].permitted << 32
    return eff, prm


def drop_to(keep: frozenset[int]) -> None:
    """In the calling thread: no_new_privs, and every capability but ``keep`` gone from
    every set. Raises OSError when the kernel refuses to lower the sets."""
    _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    effective, permitted = _current()
    if effective & (1 << CAP_SETPCAP):  # else systemd's bounding set stands, already small
        for cap in range(_last_cap() + 1):
            if cap not in keep:
                _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    kept = mask(keep) & permitted
    header, data = _Header(_LINUX_CAPABILITY_VERSION_3, 0), (_Data * 2)()
    for word in (0, 1):
        bits = (kept >> (32 * word)) & 0xFFFFFFFF
        data[word].effective = data[word].permitted = bits
        data[word].inheritable = 0
    if _libc.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


async def drop_everywhere(keep: frozenset[int]) -> None:
    """``drop_to(keep)`` in every thread of the daemon (see the module docstring)."""
    import trio

    drop_to(keep)
    others = threading.active_count() - 1
    if others <= 0:
        return
    barrier = threading.Barrier(others)
    failures: list[OSError] = []

    def in_this_thread() -> None:
        try:
            drop_to(keep)
        except OSError as exc:
            failures.append(exc)
        # hold the thread, so the next job takes another; all jobs run at once, each on
        # its own thread (an idle cached worker, else a new one), so all arrive
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=2.0)

    limiter = trio.CapacityLimiter(others)
    async with trio.open_nursery() as nursery:
        for _ in range(others):
            nursery.start_soon(lambda: trio.to_thread.run_sync(in_this_thread, limiter=limiter))
    if failures:
        raise failures[0]


async def drop_after_start(transport: str) -> None:
    """Keep only what ``transport`` still needs; logs one line. A daemon that runs
    without the capabilities to begin with (not root) has nothing to drop."""
    keep = needed(transport)
    try:
        await drop_everywhere(keep)
    except OSError as exc:
        if exc.errno != errno.EPERM:
            raise
        log.warning("capabilities: could not drop: %s", exc.strerror)
        return
    log.info("capabilities: kept %s (bounding, permitted and effective sets; no_new_privs)",
             names(keep))
    above = threads_holding_more(keep)
    if above:
        log.warning("capabilities: %d thread(s) not started by backerd still hold more "
                    "(thread ids %s)", len(above), " ".join(map(str, above)))


def threads_holding_more(keep: frozenset[int], tasks: Path = Path("/proc/self/task")) -> list[int]:
    """Thread ids whose permitted set holds more than ``keep``."""
    out = []
    for task in tasks.iterdir():
        try:
            caps = parse_status((task / "status").read_text())
        except OSError:
            continue  # ended meanwhile
        if caps is not None and caps.permitted & ~mask(keep):
            out.append(int(task.name))
    return sorted(out)

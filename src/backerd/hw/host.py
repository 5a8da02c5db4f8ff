"""The thin OS layer: ports through /dev/port, DMA memory, ppdev, privileges.

Theory of operation: everything here is a file the kernel offers, opened once at start
(hardware-notes sections 1, 3 and 4). ``DevPortBus`` reads and writes one byte at
offset = port number of /dev/port: any thread may use it (``ioperm`` would be per
thread and need a native helper), and a refusal is EPERM, not a crash. ``MemDmaBuffer``
maps a boot-reserved region of physical memory from /dev/mem (``memmap=64K$0xE00000``);
``UdmaBuffer`` maps a u-dma-buf device. ``Ppdev`` claims a parallel port exclusively
(PPEXCL before PPCLAIM) and writes its SPP registers. Each refusal is one
``HardwareUnavailable`` that names the fix. ``drop_privileges`` runs after all of them
are open: capabilities are only checked at open and mmap, so the daemon keeps its file
descriptors and mapping and gives up the rest.

Paths are parameters, so tests point them at ordinary files.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import struct
import time
from pathlib import Path

import numpy as np

from backerd.errors import HardwareUnavailable
from backerd.hw.dma8237 import DMA_LIMIT, DMA_PAGE
from backerd.hw.parport import PortInfo
from backerd.hw.procfs import reserved_region

LOCKDOWN = Path("/sys/kernel/security/lockdown")
BOOT_HINT = ("add the boot parameter memmap=64K$0xE00000 (in GRUB write memmap=64K\\$0xE00000), "
             "reboot, and check that /proc/iomem shows 00e00000-00e0ffff : reserved")

# ppdev ioctls (x86-64, include/uapi/linux/ppdev.h)
PPWCONTROL, PPWDATA, PPCLAIM, PPRELEASE, PPEXCL = 0x40017084, 0x40017086, 0x708B, 0x708C, 0x708F
PPDATADIR = 0x40047090


def lockdown_mode(path: Path = LOCKDOWN) -> str | None:
    """The active kernel lockdown mode (``integrity``/``confidentiality``), or None."""
    try:
        text = path.read_text()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    mode = text[start + 1 : end] if 0 <= start < end else "none"
    return None if mode == "none" else mode


def _refuse_lockdown(what: str, path: Path) -> None:
    mode = lockdown_mode(path)
    if mode is not None:
        raise HardwareUnavailable(
            f"kernel lockdown ({mode}) forbids {what}: boot without lockdown (lockdown=none; "
            "with Secure Boot, disable it or sign nothing: raw port and memory access is "
            "what lockdown exists to stop)", errno=errno.EPERM)


class DevPortBus:
    """``PortBus`` over /dev/port; needs CAP_SYS_RAWIO at open."""

    def __init__(self, path: Path = Path("/dev/port"), lockdown: Path = LOCKDOWN) -> None:
        _refuse_lockdown("/dev/port", lockdown)
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except PermissionError:
            raise HardwareUnavailable(
                f"cannot open {path}: port access needs CAP_SYS_RAWIO (run the daemon as root "
                "or give it AmbientCapabilities=CAP_SYS_RAWIO in its unit file)",
                errno=errno.EPERM) from None
        except FileNotFoundError:
            raise HardwareUnavailable(
                f"no {path} on this machine (a kernel without CONFIG_DEVPORT, or a container "
                "without the device): run the daemon on the host the card is in, as root or "
                "with CAP_SYS_RAWIO", errno=errno.ENODEV) from None
        except OSError as exc:
            raise HardwareUnavailable(f"cannot open {path}: {exc.strerror}") from None

    def inb(self, port: int) -> int:
        return os.pread(self.fd, 1, port)[0]

    def outb(self, port: int, value: int) -> None:
        os.pwrite(self.fd, bytes((value & 0xFF,)), port)

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def delay_ns(self, ns: int) -> None:
        end = time.monotonic_ns() + ns
        while time.monotonic_ns() < end:
            pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def check_region(phys: int, size: int, iomem: str) -> None:
    """Refuse a DMA region the 8237 cannot use or the kernel did not reserve."""
    if phys % DMA_PAGE or size > DMA_PAGE:
        raise HardwareUnavailable(
            f"DMA region {phys:#x}+{size:#x} must be 64 KiB aligned and at most 64 KiB: "
            + BOOT_HINT)
    if phys + size > DMA_LIMIT:
        raise HardwareUnavailable(
            f"DMA region {phys:#x} is above 16 MiB, out of ISA DMA's reach: " + BOOT_HINT)
    owner = reserved_region(iomem, phys, size)
    if owner is None or owner.lower() != "reserved":
        found = f"it is {owner!r}" if owner else "nothing covers it"
        raise HardwareUnavailable(
            f"no reserved DMA region at {phys:#x} in /proc/iomem ({found}): " + BOOT_HINT)


class MemDmaBuffer:
    """``DmaBuffer``: a boot-reserved region mapped from /dev/mem."""

    def __init__(self, phys: int = 0xE00000, size: int = 65536, *, iomem: str | None = None,
                 path: Path = Path("/dev/mem"), lockdown: Path = LOCKDOWN) -> None:
        if iomem is None:
            iomem = Path("/proc/iomem").read_text()
        check_region(phys, size, iomem)
        _refuse_lockdown("/dev/mem", lockdown)
        try:
            fd = os.open(path, os.O_RDWR | os.O_SYNC | os.O_CLOEXEC)
        except PermissionError:
            raise HardwareUnavailable(
                f"cannot open {path}: mapping the DMA region needs CAP_SYS_RAWIO",
                errno=errno.EPERM) from None
        try:
            self._map = mmap.mmap(fd, size, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE, offset=phys)
        except OSError as exc:
            raise HardwareUnavailable(
                f"cannot map {path} at {phys:#x}: {exc.strerror} (STRICT_DEVMEM allows only "
                "reserved regions): " + BOOT_HINT) from None
        finally:
            os.close(fd)
        self._phys = phys
        self._array: np.ndarray | None = np.frombuffer(self._map, dtype=np.uint8)

    @property
    def phys(self) -> int:
        return self._phys

    @property
    def array(self) -> np.ndarray:
        assert self._array is not None, "DMA buffer closed"
        return self._array

    def close(self) -> None:
        self._array = None  # numpy views must go before the mapping (BufferError)
        with contextlib.suppress(BufferError):
            self._map.close()


class UdmaBuffer(MemDmaBuffer):
    """``DmaBuffer`` from the out-of-tree u-dma-buf module (udmabuf0=65536 dma_mask_bit=24)."""

    def __init__(self, name: str = "udmabuf0", sysfs: Path = Path("/sys/class/u-dma-buf"),
                 dev: Path = Path("/dev")) -> None:
        try:
            phys = int((sysfs / name / "phys_addr").read_text().strip(), 0)
            size = int((sysfs / name / "size").read_text().strip(), 0)
        except (OSError, ValueError):
            raise HardwareUnavailable(
                f"no u-dma-buf device {name}: load u-dma-buf with {name}=65536 dma_mask_bit=24, "
                "or use the boot-reserved region: " + BOOT_HINT) from None
        size = min(size, DMA_PAGE)
        iomem = f"{phys:08x}-{phys + size - 1:08x} : reserved\n"  # the module reserved it
        super().__init__(phys, size, iomem=iomem, path=dev / name)


def port_info(name: str, root: Path = Path("/proc/sys/dev/parport")) -> PortInfo:
    """What parport_pc says about a port (base addresses, DMA channel, modes)."""
    where = root / name
    try:
        bases = (where / "base-addr").read_text().split()
        dma = int((where / "dma").read_text().split()[0])
        modes = (where / "modes").read_text().strip()
    except (OSError, ValueError, IndexError):
        raise HardwareUnavailable(
            f"no parallel port {name} ({where}): load parport_pc (modprobe parport_pc "
            "io=0x378 dma=3 irq=7)") from None
    base = int(bases[0])
    return PortInfo(name, base, int(bases[1]) if len(bases) > 1 else base + 0x400, dma, modes)


class Ppdev:
    """``SppPort`` over /dev/parportN."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise HardwareUnavailable(
                f"cannot open {path}: {exc.strerror} (load ppdev; the daemon needs access to "
                "the node)") from None
        self.claimed = False

    def claim(self) -> None:
        try:
            fcntl.ioctl(self.fd, PPEXCL)  # only works before the first PPCLAIM
            fcntl.ioctl(self.fd, PPCLAIM)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise HardwareUnavailable(
                    f"{self.path}: the port is held by another driver (usually lp): unload it "
                    "(modprobe -r lp) or blacklist it", errno=errno.EBUSY) from None
            raise HardwareUnavailable(f"{self.path}: PPCLAIM failed: {exc.strerror}") from None
        self.claimed = True

    def release(self) -> None:
        if self.claimed:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.fd, PPRELEASE)
            self.claimed = False

    def write_control(self, value: int) -> None:
        fcntl.ioctl(self.fd, PPWCONTROL, struct.pack("B", value & 0xFF))

    def write_data(self, value: int) -> None:
        fcntl.ioctl(self.fd, PPWDATA, struct.pack("B", value & 0xFF))

    def set_reverse(self, reverse: bool) -> None:
        fcntl.ioctl(self.fd, PPDATADIR, struct.pack("i", 1 if reverse else 0))

    def close(self) -> None:
        self.release()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# Privilege drop -----------------------------------------------------------------------

PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
CAP_LAST = 40


def drop_privileges(user: str | None = None, *, keep_caps: tuple[int, ...] = ()) -> list[str]:
    """Give up what is no longer needed once ports, memory and nodes are open.

    Sets no_new_privs, drops every capability but ``keep_caps`` from the bounding set,
    and (as root, with ``user``) switches to that user and its group with no
    supplementary groups, which clears the effective capabilities. Returns what was done.
    """
    import ctypes
    import pwd

    libc = ctypes.CDLL(None, use_errno=True)
    done = []
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0:
        done.append("no_new_privs")
    dropped = 0
    for cap in range(CAP_LAST + 1):
        if cap not in keep_caps and libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
            dropped += 1
    if dropped:
        done.append(f"bounding set: {dropped} capabilities dropped")
    if user is not None and os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
        done.append(f"now uid {entry.pw_uid} gid {entry.pw_gid}")
    return done

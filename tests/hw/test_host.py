"""The OS layer against ordinary files standing in for /dev/port, /dev/mem and sysfs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backerd.errors import HardwareUnavailable
from backerd.hw.host import (
    DevPortBus,
    MemDmaBuffer,
    Ppdev,
    UdmaBuffer,
    check_region,
    lockdown_mode,
    port_info,
)

IOMEM = "00100000-00dfffff : System RAM\n00e00000-00e0ffff : reserved\n"


def test_lockdown_modes(tmp_path: Path) -> None:
    f = tmp_path / "lockdown"
    f.write_text("[none] integrity confidentiality\n")
    assert lockdown_mode(f) is None
    f.write_text("none [integrity] confidentiality\n")
    assert lockdown_mode(f) == "integrity"
    assert lockdown_mode(tmp_path / "missing") is None


def test_dev_port_bus_is_one_byte_at_the_port_offset(tmp_path: Path) -> None:
    port = tmp_path / "port"
    port.write_bytes(bytes(0x400))
    bus = DevPortBus(port, lockdown=tmp_path / "none")
    bus.outb(0x300, 0x1A2)
    assert bus.inb(0x300) == 0xA2 and port.read_bytes()[0x300] == 0xA2
    assert bus.inb(0x301) == 0
    bus.close()


def test_dev_port_refused_under_lockdown(tmp_path: Path) -> None:
    (tmp_path / "lockdown").write_text("none integrity [confidentiality]\n")
    with pytest.raises(HardwareUnavailable, match="lockdown .confidentiality. forbids"):
        DevPortBus(tmp_path / "port", lockdown=tmp_path / "lockdown")


def test_dev_port_without_permission_names_cap_sys_rawio(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> int:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "open", refuse)  # what open() of /dev/port does without it
    with pytest.raises(HardwareUnavailable, match="CAP_SYS_RAWIO") as err:
        DevPortBus(tmp_path / "port", lockdown=tmp_path / "none")
    assert err.value.errno == 1


@pytest.mark.parametrize("phys,iomem,match", [
    (0xE00000, "00100000-00ffffff : System RAM\n", "System RAM.*memmap=64K"),
    (0xE00000, "", "nothing covers it.*/proc/iomem"),
    (0xE08000, IOMEM, "64 KiB aligned"),
    (0x2000000, "02000000-0200ffff : reserved\n", "above 16 MiB"),
])
def test_dma_region_refusals_name_the_boot_parameter(phys: int, iomem: str, match: str) -> None:
    with pytest.raises(HardwareUnavailable, match=match):
        check_region(phys, 65536, iomem)


def test_mem_dma_buffer_maps_the_region(tmp_path: Path) -> None:
    mem = tmp_path / "mem"
    with open(mem, "wb") as f:
        f.truncate(16 << 20)
    buf = MemDmaBuffer(0xE00000, 65536, iomem=IOMEM, path=mem, lockdown=tmp_path / "none")
    buf.array[:4] = [1, 2, 3, 4]
    assert buf.phys == 0xE00000 and buf.array.size == 65536
    buf.close()
    with open(mem, "rb") as f:
        f.seek(0xE00000)
        assert f.read(4) == bytes([1, 2, 3, 4])


def test_udma_buffer_missing_names_both_ways(tmp_path: Path) -> None:
    with pytest.raises(HardwareUnavailable, match="u-dma-buf.*memmap=64K"):
        UdmaBuffer(sysfs=tmp_path)


def test_port_info_from_sysfs(tmp_path: Path) -> None:
    p = tmp_path / "parport0"
    p.mkdir()
    (p / "base-addr").write_text("888\t1912\n")
    (p / "dma").write_text("3\n")
    (p / "modes").write_text("PCSPP,TRISTATE,COMPAT,ECP,DMA\n")
    info = port_info("parport0", tmp_path)
    assert (info.base, info.base_hi, info.dma) == (0x378, 0x778, 3) and "ECP" in info.modes
    with pytest.raises(HardwareUnavailable, match="load parport_pc"):
        port_info("parport1", tmp_path)


def test_ppdev_claim_on_something_else_is_refused(tmp_path: Path) -> None:
    node = tmp_path / "parport0"
    node.write_bytes(b"")
    pp = Ppdev(node)
    with pytest.raises(HardwareUnavailable, match="PPCLAIM failed"):
        pp.claim()
    pp.close()


def test_missing_dev_port_names_where_to_run(tmp_path: Path) -> None:
    import errno

    with pytest.raises(HardwareUnavailable) as err:
        DevPortBus(tmp_path / "no-such-port", lockdown=tmp_path / "none")
    assert err.value.errno == errno.ENODEV
    assert "CONFIG_DEVPORT" in err.value.message and "CAP_SYS_RAWIO" in err.value.message

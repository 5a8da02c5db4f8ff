"""``open_card_unit``: a real-card unit over an emulated bus, and its refusals.

The host hands the opener the emulator's ``EmuMachine`` as the port bus, its DMA
memory as the buffer and /proc texts of the test's choosing, so the real opener runs
the real probe and backend; only the machine is software. The VCR is the emulated one,
pressed by the unit's manual control: a thread plays the operator and acknowledges
each prompt, and ``OperatedVcr`` makes the emulated deck move when it does.
"""

from __future__ import annotations

import dataclasses
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from backerd.daemon.config import parse_config
from backerd.errors import ConfigError, ControlError, HardwareUnavailable
from backerd.hw.cardunit import CardHost, open_card_unit
from backerd.hw.catalog import SidecarCatalog
from backerd.hw.deck import CardDeck
from backerd.hw.emu.ecp import EcpPort, EmuPpdev
from backerd.hw.emu.isacard import IsaCard
from backerd.hw.emu.machine import EmuMachine
from backerd.hw.emu.vcr import EmuVcr, OperatedVcr
from backerd.hw.parport import PortInfo
from backerd.hw.unit import HardwareUnit
from backerd.medium import BackerMedium
from backerd.vcr.manual import ManualControl
from backerd.vcr.sim import Cassette
from testkit.hwtest import ServiceThread


class Rig:
    """An emulated PC with a card (or not) and the host the opener sees."""

    def __init__(self, tmp: Path, *, kind: str = "isa", card: bool = True, base: int = 0x31C,
                 channel: int = 1, ioports: str = "", dma: str = "") -> None:
        self.cassette = Cassette.create(tmp / "tape.cassette", "ntsc", "E-30", sync=False)
        self.machine = EmuMachine()
        self.vcr = EmuVcr(self.cassette, self.machine.lock, self.machine.clock.now_ns)
        self.machine.ioports += ioports
        self.machine.dma_text += dma
        self.port: EcpPort | None = None
        if kind == "isa" and card:
            self.machine.add(IsaCard(base, channel, self.machine.dma, self.vcr))
        if kind == "parport":
            self.port = EcpPort(0x378, 3, self.machine.dma, self.vcr, unit=card)
            self.machine.add(self.port)
        self.opened: list[str] = []
        self.buffers: list[str] = []

    def proc(self, path: str) -> str:
        self.opened.append(path)
        return {"/proc/ioports": self.machine.ioports, "/proc/dma": self.machine.dma_text}[path]

    def buffer(self, card):  # noqa: ANN001, ANN201
        self.buffers.append(f"{card.dma_address:#x}+{card.dma_size:#x}")
        return self.machine.dma_buffer(card.dma_address, card.dma_size)

    def host(self, **changes) -> CardHost:  # noqa: ANN003
        assert self.port is not None or "ppdev" not in changes
        port = self.port
        return dataclasses.replace(CardHost(
            bus=lambda: self.machine, buffer=self.buffer, read_proc=self.proc,
            ppdev=lambda name: EmuPpdev(self.machine, port),
            port_info=lambda name: PortInfo(name, 0x378, 0x778, 3, "PCSPP,ECP,DMA"),
            clock=self.machine.clock), **changes)


def unit_config(tmp: Path, table: dict, vcr: dict | None = None):  # noqa: ANN201
    unit = {"mode": "nhs", "length": "E-30", **table}
    if vcr is not None:
        unit["vcr"] = vcr
    config = parse_config({"unit": [unit]}, environ={"BACKERD_STATE_DIR": str(tmp / "state"),
                                                     "BACKERD_RUNTIME_DIR": str(tmp / "run")})
    return config.units[0]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.cassette.close()


def test_probe_finds_the_card_and_the_stack_is_a_card_deck(rig: Rig, tmp_path: Path) -> None:
    config = unit_config(tmp_path, {"deck": "isa", "label": "tape-7"})
    unit = open_card_unit(config, host=rig.host())
    try:
        assert isinstance(unit, HardwareUnit)
        assert unit.modem.name == "isa@0x31c/dma1"
        assert isinstance(unit.deck, CardDeck) and isinstance(unit.operator, ManualControl)
        assert unit.deck.control is unit.operator
        assert isinstance(unit.drive.medium, BackerMedium)
        assert unit.deck.info.catalog.path == tmp_path / "state" / "tape-7.catalog.json"
        assert rig.opened == ["/proc/ioports", "/proc/dma"]
        assert rig.buffers == ["0xe00000+0x10000"]  # the configured region's default
        assert unit.vcr_status()["control"] == "manual"
    finally:
        unit.modem.close()


def test_pinned_port_and_channel_skip_the_scan(tmp_path: Path) -> None:
    rig = Rig(tmp_path, base=0x33C, channel=3, ioports="0300-031f : ne2000\n")
    config = unit_config(tmp_path, {"deck": "isa", "port": 0x33C, "dma": 3,
                                    "dma_address": 0x800000, "dma_size": 32768})
    unit = open_card_unit(config, host=rig.host())
    try:
        assert unit.modem.name == "isa@0x33c/dma3"
        assert rig.buffers == ["0x800000+0x8000"]
    finally:
        unit.modem.close()
        rig.cassette.close()


@pytest.mark.parametrize(("setup", "table", "words"), [
    ({"card": False}, {}, ["no Backer card found", "port jumper"]),
    ({"channel": 3}, {"dma": 1}, ["not the configured 1", "dma = 3"]),
    ({"dma": " 1: sound\n"}, {}, ["DMA channel 1", "sound holds"]),
    ({"ioports": "031c-031f : other\n"}, {"port": 0x31C}, ["claimed by other", "unload"]),
])
def test_refusals_name_the_fix(tmp_path: Path, setup: dict, table: dict,
                               words: list[str]) -> None:
    rig = Rig(tmp_path, **setup)
    try:
        with pytest.raises(HardwareUnavailable) as err:
            open_card_unit(unit_config(tmp_path, {"deck": "isa", **table}), host=rig.host())
        assert all(w in err.value.message for w in words), err.value.message
        assert rig.buffers == []  # no memory taken for a card that is not there
    finally:
        rig.cassette.close()


def test_a_missing_dma_region_names_the_boot_parameter_and_closes_the_bus(
        rig: Rig, tmp_path: Path) -> None:
    from backerd.hw.host import MemDmaBuffer

    closed = []

    class Bus:
        def __init__(self) -> None:
            self.inb, self.outb = rig.machine.inb, rig.machine.outb
            self.now_ns, self.delay_ns = rig.machine.now_ns, rig.machine.delay_ns

        def close(self) -> None:
            closed.append("bus")

    iomem = "00000000-0009ffff : System RAM\n00100000-3fffffff : System RAM\n"

    def region(card):  # noqa: ANN001, ANN202 - the real class, this machine's iomem text
        return MemDmaBuffer(card.dma_address, card.dma_size, iomem=iomem,
                            path=tmp_path / "mem", lockdown=tmp_path / "no-lockdown")

    with pytest.raises(HardwareUnavailable) as err:
        open_card_unit(unit_config(tmp_path, {"deck": "isa"}), host=rig.host(bus=Bus,
                                                                              buffer=region))
    assert "no reserved DMA region at 0xe00000" in err.value.message
    assert "memmap=64K$0xE00000" in err.value.message and "/proc/iomem" in err.value.message
    assert closed == ["bus"]


def test_kernel_lockdown_is_refused_before_any_port_is_touched(rig: Rig,
                                                                tmp_path: Path) -> None:
    from backerd.hw.host import DevPortBus

    (tmp_path / "lockdown").write_text("none [integrity] confidentiality\n")
    (tmp_path / "port").write_bytes(bytes(65536))
    host = rig.host(bus=lambda: DevPortBus(tmp_path / "port", lockdown=tmp_path / "lockdown"))
    with pytest.raises(HardwareUnavailable, match=r"lockdown \(integrity\).*lockdown=none"):
        open_card_unit(unit_config(tmp_path, {"deck": "isa"}), host=host)
    assert rig.opened == [] and rig.buffers == []


def test_lirc_without_lircd_is_refused_and_the_card_released(rig: Rig, tmp_path: Path) -> None:
    vcr = {"control": "lirc", "remote": "vcr", "socket": str(tmp_path / "nolircd"),
           "keys": {"play": "P", "stop": "S", "fast_forward": "F", "rewind": "R"}}
    with pytest.raises(ControlError) as err:
        open_card_unit(unit_config(tmp_path, {"deck": "isa"}, vcr), host=rig.host())
    assert "lircd" in err.value.message
    assert not (tmp_path / "state" / "backer0.catalog.json").exists()


def test_sim_control_is_refused_for_a_real_card(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='"manual".*"lirc"'):
        unit_config(tmp_path, {"deck": "isa"}, {"control": "sim"})


def test_parport_unit_is_claimed_through_ppdev(tmp_path: Path) -> None:
    rig = Rig(tmp_path, kind="parport")
    unit = open_card_unit(unit_config(tmp_path, {"deck": "parport", "parport": "parport0"}),
                          host=rig.host())
    try:
        assert unit.modem.name == "parport0@0x378/dma3"
    finally:
        unit.modem.close()
        rig.cassette.close()


class Operator:
    """A person at the emulated deck: acknowledges every prompt after a moment."""

    def __init__(self, control: ManualControl) -> None:
        self.control = control
        self.prompts: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            waiting = self.control.status()["waiting"]
            if waiting is not None:
                self.prompts.append(waiting["text"])
                self.control.ack(waiting["number"])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.mark.parametrize("kind", ["isa", "parport"])
def test_archive_through_a_real_unit_on_the_emulated_bus(tmp_path: Path, kind: str) -> None:
    rig = Rig(tmp_path, kind=kind)
    table = {"deck": kind, "label": "round-trip"}
    unit = open_card_unit(unit_config(tmp_path, table, {"control": "manual", "ack_timeout": 20.0}),
                          host=rig.host())
    assert isinstance(unit, HardwareUnit) and isinstance(unit.operator, ManualControl)
    unit.deck.control = OperatedVcr(unit.operator, rig.vcr)  # the operator's hands
    operator = Operator(unit.operator)
    service = ServiceThread(unit.modem, rig.machine.clock)
    data = random.Random(5).randbytes(150_000)
    medium = unit.drive.medium
    try:
        medium.write_block(data)
        medium.write_filemarks(1)
        medium.rewind()
        got = medium.read_block(1 << 20)
        assert got == data
        assert unit.modem.counters.underruns == 0
    finally:
        medium.close()
        operator.stop()
        service.stop()
        unit.modem.close()
        rig.cassette.close()
    assert any(p.startswith("press REC") for p in operator.prompts)
    assert any(p.startswith("press PLAY") for p in operator.prompts)
    sidecar = SidecarCatalog(tmp_path / "state" / "round-trip.catalog.json")
    assert len(sidecar.recordings) == 1 and sidecar.interrupted is None
    assert rig.vcr.fields_recorded >= sidecar.recordings[0].fields - 2


def test_serve_refuses_a_real_isa_card_on_this_machine(tmp_path: Path) -> None:
    """Without a card, /dev/port access or a reserved region: one line naming the fix."""
    import subprocess
    import sys

    (tmp_path / "backerd.toml").write_text(
        f'transport = "fuse"\nstate_dir = "{tmp_path}/state"\nruntime_dir = "{tmp_path}/run"\n'
        f'[[unit]]\ndeck = "isa"\n')
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.run([sys.executable, "-m", "backerd", "serve", "--config",
                           str(tmp_path / "backerd.toml")], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("backerd serve: "), proc.stderr
    last = lines[-1]
    # whichever refusal this machine earns, it names what to do about it
    assert any(fix in last for fix in ("CAP_SYS_RAWIO", "lockdown=none", "memmap=",
                                       "check that the card is seated")), last
    assert "Traceback" not in proc.stderr


def test_privileges_are_dropped_only_with_a_real_card(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import backerd.hw.host
    from backerd.daemon.service import drop_unneeded_privileges

    calls: list[str | None] = []
    monkeypatch.setattr(backerd.hw.host, "drop_privileges",
                        lambda user=None, **kw: calls.append(user) or ["no_new_privs"])
    env = {"BACKERD_STATE_DIR": str(tmp_path), "BACKERD_RUNTIME_DIR": str(tmp_path)}
    drop_unneeded_privileges(parse_config({"unit": [{"deck": "emulated-isa"}]}, environ=env))
    assert calls == []
    drop_unneeded_privileges(parse_config(
        {"user": "root", "unit": [{"deck": "sim"}, {"deck": "isa"}]}, environ=env))
    assert calls == ["root"]


def test_the_simulated_vcr_refuses_an_operator(tmp_path: Path) -> None:
    from backerd.daemon.service import open_sim_unit

    config = unit_config(tmp_path, {"deck": "sim"}, {"control": "manual"})
    with pytest.raises(ConfigError, match='presses its own: use deck = "emulated-isa"'):
        open_sim_unit(config)
    assert not config.cassette.exists()  # refused before anything was created


def test_a_damaged_sidecar_catalog_is_refused_and_the_card_released(rig: Rig,
                                                                    tmp_path: Path) -> None:
    from backerd.errors import UsageError

    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "backer0.catalog.json").write_text("{not json")
    released: list[str] = []
    host = rig.host(buffer=lambda card: Released(rig.buffer(card), released))
    with pytest.raises(UsageError, match="damaged catalog.*move it away"):
        open_card_unit(unit_config(tmp_path, {"deck": "isa"}), host=host)
    assert released == ["buffer"]


class Released:
    """A DMA buffer that notes its close."""

    def __init__(self, inner, log: list[str]) -> None:  # noqa: ANN001
        self.inner, self.log = inner, log
        self.phys, self.array = inner.phys, inner.array

    def close(self) -> None:
        self.log.append("buffer")
        self.inner.close()

"""The daemon: open the units, serve their nodes over CUSE or FUSE, stop cleanly.

Theory of operation: ``serve`` opens every configured unit (deck, cassette, Backer
medium, st Drive), chooses the transport once for all units — CUSE char devices when
/dev/cuse exists (after one ``modprobe cuse``), else the FUSE fallback, one mount
holding a file per node — and starts one trio task per CUSE node (or one for the FUSE
mount) plus the status socket. Readiness is reported through ``task_status`` and, under
systemd, ``sd_notify(READY=1)``. Cancellation is how it stops: the transports unmount
or close their fds, then every unit closes a recording that is still open (a filemark,
so the recording gets its EOR) and releases its cassette.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import trio

from backerd import __version__
from backerd.daemon.config import Config, UnitConfig
from backerd.daemon.control import ensure_not_running, serve_control
from backerd.daemon.node import TapeNode, Unit
from backerd.errors import HardwareUnavailable

log = logging.getLogger("backerd")

CUSE_DEVICE = Path("/dev/cuse")
CUSE_NODE_DIR = Path("/dev")
_CUSE_APPEAR_WAIT = 2.0  # seconds /dev/cuse may take to appear after modprobe


@dataclass(frozen=True)
class TransportChoice:
    kind: str  # "cuse" | "fuse"
    reason: str  # why, for the log line and status


def node_path(config: Config, kind: str, node: str) -> Path:
    """Where a node appears for users: /dev/NODE (CUSE) or FUSE_ROOT/NODE."""
    return (CUSE_NODE_DIR if kind == "cuse" else config.fuse_root) / node


async def _load_cuse_module() -> str:
    """Try ``modprobe cuse`` once; return a short note on what happened."""
    try:
        result = await trio.run_process(
            ["modprobe", "cuse"], check=False, capture_stdout=True, capture_stderr=True
        )
    except OSError as exc:
        return f"modprobe unavailable: {exc.strerror}"
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        return f"modprobe cuse failed: {lines[-1] if lines else result.returncode}"
    with trio.move_on_after(_CUSE_APPEAR_WAIT):
        while not CUSE_DEVICE.exists():
            await trio.sleep(0.05)
    return "loaded with modprobe"


async def choose_transport(config: Config) -> TransportChoice:
    if config.transport == "fuse":
        return TransportChoice("fuse", "FUSE requested by the configuration")
    note = ""
    if not CUSE_DEVICE.exists():
        note = await _load_cuse_module()
    if CUSE_DEVICE.exists():
        return TransportChoice("cuse", f"{CUSE_DEVICE} present" + (f" ({note})" if note else ""))
    if config.transport == "cuse":
        raise HardwareUnavailable(
            f"CUSE requested but {CUSE_DEVICE} is missing ({note}); "
            f"set transport = \"auto\" to fall back to FUSE"
        )
    return TransportChoice("fuse", f"{CUSE_DEVICE} missing ({note})")


def open_sim_unit(config: UnitConfig) -> Unit:
    """Open (creating if needed) the unit's cassette on the simulated VCR."""
    from backerd.daemon.medium import BackerMedium
    from backerd.tape.drive import Drive
    from backerd.vcr.sim import Cassette, SimDeck

    path = config.cassette
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        Cassette.create(path, standard=config.standard, length=config.length).close()
        log.info("unit %d: created cassette %s (%s %s)", config.number, path,
                 config.standard.upper(), config.length)
    cassette = Cassette.open(path)
    noise = None
    if config.noise:
        from backerd.vcr.noise import NoiseModel

        noise = NoiseModel.parse(config.noise)
        log.info("unit %d: playback noise %s", config.number, config.noise)
    deck = SimDeck(cassette, realtime=1.0 if config.realtime else None, noise=noise)
    number = config.number
    medium = BackerMedium(deck, mode=config.mode,
                          log=lambda message: log.info("unit %d: %s", number, message))

    def release() -> None:
        # the medium flushes its write buffer and the catalog before the image closes
        try:
            medium.close()
        finally:
            cassette.close()

    return Unit(config, Drive(medium), on_shutdown=release)


UnitOpener = Callable[[UnitConfig], Unit]

def open_emulated_unit(config: UnitConfig) -> Unit:
    from backerd.hw.unit import open_emulated_unit as opener

    return opener(config)


DECK_OPENERS: dict[str, UnitOpener] = {
    "sim": open_sim_unit, "emulated-isa": open_emulated_unit,
    "emulated-parport": open_emulated_unit,
}


def open_unit(config: UnitConfig) -> Unit:
    return DECK_OPENERS[config.deck](config)


class Service:
    """The running daemon as the status socket reports it."""

    def __init__(self, config: Config, units: list[Unit], transport: TransportChoice) -> None:
        self.config = config
        self.units = units
        self.transport = transport

    def unit_status(self, unit: Unit) -> dict[str, Any]:
        uc = unit.config
        drive = unit.snapshot
        return {
            "number": uc.number,
            "name": uc.name,
            "transport": self.transport.kind,
            "nodes": {
                "rewinding": str(node_path(self.config, self.transport.kind, uc.rewinding_node)),
                "non_rewinding": str(
                    node_path(self.config, self.transport.kind, uc.non_rewinding_node)
                ),
            },
            "deck": uc.deck,
            "cassette": str(uc.cassette),
            "mode": uc.mode,
            "realtime": uc.realtime,
            "open": unit.open_node,
            "position": {"file": drive.get("file"), "block": drive.get("block")},
            "drive": drive,
            **_hardware_status(unit),
        }

    def status(self) -> dict[str, Any]:
        return {
            "backerd": __version__,
            "pid": os.getpid(),
            "transport": self.transport.kind,
            "transport_reason": self.transport.reason,
            "fuse_root": str(self.config.fuse_root) if self.transport.kind == "fuse" else None,
            "units": [self.unit_status(u) for u in self.units],
        }


def _hardware_status(unit: Unit) -> dict[str, Any]:
    from backerd.hw.unit import ServicedUnit

    return {"hardware": unit.hardware_status()} if isinstance(unit, ServicedUnit) else {}


async def _start_services(nursery: trio.Nursery, units: list[Unit]) -> None:
    from backerd.hw.unit import ServicedUnit

    for unit in units:
        if isinstance(unit, ServicedUnit):
            nursery.start_soon(unit.run_service)


def sd_notify(state: str) -> None:
    """Tell systemd (Type=notify) about readiness/stopping; a no-op elsewhere."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(state.encode(), address)


async def _serve_nodes(
    nursery: trio.Nursery, config: Config, kind: str, nodes: dict[str, TapeNode]
) -> None:
    if kind == "cuse":
        from backerd.daemon.cuse import serve_cuse

        for name, handler in nodes.items():
            await nursery.start(
                partial(serve_cuse, name, handler, unrestricted=config.unrestricted_ioctl)
            )
    else:
        from backerd.daemon.fuse import serve_fuse

        await nursery.start(
            partial(serve_fuse, config.fuse_root, nodes, max_pages=config.fuse_max_pages)
        )


async def serve(
    config: Config,
    *,
    opener: UnitOpener = open_unit,
    task_status: trio.TaskStatus[Service] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve every unit of ``config`` until cancelled."""
    await ensure_not_running(config.control_socket)
    units: list[Unit] = []
    try:
        for uc in config.units:
            units.append(await trio.to_thread.run_sync(opener, uc))
        transport = await choose_transport(config)
        service = Service(config, units, transport)
        nodes = {name: node for unit in units for name, node in unit.nodes.items()}
        async with trio.open_nursery() as nursery:
            await _start_services(nursery, units)
            await _serve_nodes(nursery, config, transport.kind, nodes)
            await nursery.start(serve_control, config.control_socket, service.status)
            for unit in units:
                uc = unit.config
                paths = [node_path(config, transport.kind, n) for n in unit.nodes]
                if transport.kind == "cuse":
                    log.info("unit %d: serving CUSE char devices %s (%s)", uc.number,
                             " ".join(map(str, paths)), transport.reason)
                else:
                    log.info("unit %d: serving the FUSE fallback: %s (%s)", uc.number,
                             " ".join(map(str, paths)), transport.reason)
                log.info("unit %d: cassette %s, mode %s%s", uc.number, uc.cassette, uc.mode,
                         ", realtime" if uc.realtime else "")
            log.info("ready (status socket %s)", config.control_socket)
            sd_notify("READY=1")
            task_status.started(service)
    finally:
        sd_notify("STOPPING=1")
        for unit in units:
            await unit.shutdown()


async def run_until_signalled(config: Config, *, opener: UnitOpener = open_unit) -> None:
    """``serve`` in the foreground; SIGTERM or SIGINT stops it cleanly."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve, config, opener=opener))
            async for signum in signals:
                log.info("%s received: stopping", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break
    log.info("stopped")

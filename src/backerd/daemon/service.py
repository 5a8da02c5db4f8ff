"""The daemon: open the units, serve their nodes over CUSE or FUSE, stop cleanly.

Theory of operation: ``serve`` opens every configured unit (deck, cassette, Backer
medium, st Drive), chooses the transport once for all units — CUSE char devices when
/dev/cuse exists (after one ``modprobe cuse``), else the FUSE fallback, one mount
holding a file per node — and starts one trio task per CUSE node (or one for the FUSE
mount) plus the status socket. Readiness is reported through ``task_status`` and, under
systemd, ``sd_notify(READY=1)`` with a STATUS line; under ``WatchdogSec=`` a task pings
only while every unit's worker progresses (``daemon.liveness``). The daemon process
(``run_until_signalled``) then keeps only the capabilities it still needs
(``daemon.privileges``). Cancellation is how it stops: the transports unmount
or close their fds, then every unit closes a recording that is still open (a filemark,
so the recording gets its EOR) and releases its cassette. A card's service task is
not part of that cancellation: it runs from the unit's opening until every unit is shut
down, so a request still moving fields through the card when the stop comes (a close
writing its filemark) finishes, within the card's own deadlines.

Units on real cards (``deck = "isa"``/``"parport"``) acquire ports and DMA memory while
they open; once every node and the status socket are up, the daemon drops the
privileges it no longer needs (``hw.host.drop_privileges``, to the configured ``user``).
Units whose VCR an operator presses answer ``backerd deck ready|cancel`` through the
control socket's ``deck`` request; every card unit shows its control in ``vcr``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from backerd import __version__
from backerd.daemon.config import Config, UnitConfig
from backerd.daemon.control import ensure_not_running, serve_control
from backerd.daemon.node import TapeNode, Unit, WorkProbe
from backerd.errors import BackerError, ConfigError, HardwareUnavailable, UsageError

if TYPE_CHECKING:
    from backerd.daemon.changer import CassetteChanger
    from backerd.daemon.unittools import UnitTools
    from backerd.hw.unit import ServicedUnit
    from backerd.vcr.manual import ManualControl

log = logging.getLogger("backerd")

CUSE_DEVICE = Path("/dev/cuse")
CUSE_NODE_DIR = Path("/dev")
_CUSE_APPEAR_WAIT = 2.0  # seconds /dev/cuse may take to appear after modprobe
# Signals that stop the foreground daemon cleanly (unmount, filemark, cassette closed).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


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
    from backerd.catalog.live import LiveCatalog
    from backerd.catalog.store import Catalog
    from backerd.daemon.changer import SimChanger
    from backerd.daemon.unittools import UnitTools
    from backerd.medium.encrypted import EncryptingMedium
    from backerd.medium.labelled import CataloguedMedium, LabelledDeck
    from backerd.tape.drive import Drive
    from backerd.vcr.sim import Cassette, SimDeck

    if config.vcr.control != "sim":
        raise ConfigError(
            f"unit {config.number}: vcr.control {config.vcr.control!r} needs a VCR whose "
            "buttons someone else presses; the simulated VCR (deck = \"sim\") presses its "
            "own: use deck = \"emulated-isa\" (or serve --emulate isa), or control = \"sim\"")
    path = config.cassette
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"unit {config.number}: cannot create the directory of the "
                              f"cassette {path}: {exc.strerror}") from None
        Cassette.create(path, standard=config.standard, length=config.length).close()
        log.info("unit %d: created cassette %s (%s %s)", config.number, path,
                 config.standard.upper(), config.length)
    cassette = Cassette.open(path)
    if cassette.past_end:
        log.warning("unit %d: cassette %s: %s", config.number, path, cassette.past_end)
    noise = None
    if config.noise:
        from backerd.vcr.noise import NoiseModel

        noise = NoiseModel.parse(config.noise)
        log.info("unit %d: playback noise %s", config.number, config.noise)
    number = config.number

    def note(message: str) -> None:
        log.info("unit %d: %s", number, message)

    sim = SimDeck(cassette, realtime=1.0 if config.realtime else None, noise=noise)
    deck = LabelledDeck(sim, log=note)
    live = None
    if config.catalog is not None:
        try:
            store = Catalog(config.catalog)
        except (UsageError, sqlite3.Error, OSError) as exc:
            # the catalog is a cache of the tapes: without it the unit still serves
            # (Catalog says why it cannot open as a UsageError naming the path)
            log.warning("unit %d: catalog unavailable (%s): serving without it", number, exc)
        else:
            live = LiveCatalog(store, fps=cassette.fps, log=note,
                               written_by=f"backerd {__version__} unit {number}")
            deck.sink = live
    sim = deck.deck
    assert isinstance(sim, SimDeck)
    medium = CataloguedMedium(deck, mode=config.mode, log=note, opens_sealed=config.encrypt)
    # only a unit that encrypts has the sealing layer (it costs work on every request);
    # without it, CataloguedMedium refuses an encrypted cassette's blocks by its label
    sealing = (EncryptingMedium(medium, label_of=lambda: deck.label, log=note,
                                **unit_key(config, note)) if config.encrypt else None)
    tape: EncryptingMedium | CataloguedMedium = sealing if sealing is not None else medium
    tools = UnitTools(config, sim, deck, medium, live, sealing=sealing)
    drive = Drive(tape)
    changer = SimChanger(number, sim, deck, medium, drive, tape=tape,
                         catalog=lambda: tools.store, default_standard=config.standard,
                         default_length=config.length, log=note)

    def release() -> None:
        # the medium flushes its write buffer and the catalog before the image closes
        try:
            tape.close()
        finally:
            if sim.cassette is not None:  # the one in the deck now (cassettes change)
                sim.cassette.close()
            tools.close()
            if live is not None:
                live.store.close()

    return Unit(config, drive, on_shutdown=release, tools=tools, changer=changer,
                probe=WorkProbe(sim.position, lambda: medium.lane.busy))


UnitOpener = Callable[[UnitConfig], Unit]


def unit_key(config: UnitConfig, note: Callable[[str], None]) -> dict[str, Any]:
    """The EncryptingMedium key arguments of a unit: its key, or why it is missing.

    A missing key file is no reason to refuse to start (reads of plaintext cassettes
    still work); every write refuses until the file is there (it is looked for again).
    """
    if not config.encrypt or config.key_file is None:
        return {}
    from backerd.crypt.keys import load_key_file

    path = config.key_file

    def reload() -> Any:
        return load_key_file(path)

    try:
        key = reload()
    except BackerError as exc:
        note(f"encryption configured, but no key: {exc.message}; writes are refused")
        return {"missing": exc.message, "reload": reload}
    note(f"encryption on: key {key.fingerprint_hex} from {path}")
    return {"key": key, "reload": reload}

def open_emulated_unit(config: UnitConfig) -> Unit:
    from backerd.hw.unit import open_emulated_unit as opener

    return opener(config, notify=sd_notify)


def open_card_unit(config: UnitConfig) -> Unit:
    from backerd.hw.cardunit import open_card_unit as opener

    return opener(config, notify=sd_notify)


DECK_OPENERS: dict[str, UnitOpener] = {
    "sim": open_sim_unit, "emulated-isa": open_emulated_unit,
    "emulated-parport": open_emulated_unit, "isa": open_card_unit, "parport": open_card_unit,
}


def open_unit(config: UnitConfig) -> Unit:
    return DECK_OPENERS[config.deck](config)


class Service:
    """The running daemon as the status socket reports it."""

    def __init__(self, config: Config, units: list[Unit], transport: TransportChoice) -> None:
        from backerd.daemon.changer import SimChanger

        self.config = config
        self.units = units
        self.transport = transport
        keep = {job.name: job.keep for job in config.jobs}
        for unit in units:  # next-volume's retention check follows the jobs' rule
            if isinstance(unit.changer, SimChanger):
                unit.changer.job_keep = keep

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
            **(unit.tools.status() if unit.tools is not None else {}),
            **_hardware_status(unit),
        }

    def _tools(self, body: dict[str, Any]) -> tuple[Unit, UnitTools]:
        number = body.get("unit", 0)
        for unit in self.units:
            if unit.config.number == number and unit.tools is not None:
                return unit, unit.tools
        raise UsageError(f"no unit {number!r} with a cassette here")

    async def _label(self, body: dict[str, Any]) -> dict[str, Any]:
        unit, tools = self._tools(body)
        return await unit.run(partial(tools.label, str(body.get("text", "")),
                                      force=bool(body.get("force")),
                                      open_node=unit.open_node))

    async def _check(self, body: dict[str, Any]) -> dict[str, Any]:
        unit, tools = self._tools(body)
        need, expected = body.get("need"), body.get("label")
        return await unit.run(partial(tools.check, need if isinstance(need, int) else None,
                                      expected if isinstance(expected, str) else None))

    async def _trace(self, body: dict[str, Any]) -> dict[str, Any]:
        unit, tools = self._tools(body)
        return await unit.run(tools.trace)

    async def _rebuild(self, body: dict[str, Any]) -> dict[str, Any]:
        unit, tools = self._tools(body)
        return await unit.run(tools.rebuild)

    def _changer(self, body: dict[str, Any]) -> tuple[Unit, CassetteChanger]:
        number = body.get("unit", 0)
        for unit in self.units:
            if unit.config.number == number:
                if unit.changer is None:
                    raise UsageError(f"unit {number} cannot change cassettes")
                return unit, unit.changer
        raise UsageError(f"no unit {number!r} here")

    async def _eject(self, body: dict[str, Any]) -> dict[str, Any]:
        from backerd.daemon.changer import refuse_while_open

        unit, changer = self._changer(body)

        def eject() -> dict[str, Any]:
            refuse_while_open(unit.config.number, unit.open_node,
                              bool(unit.drive.status().get("open")), "eject")
            return changer.eject()

        return await unit.run(eject)

    async def _insert(self, body: dict[str, Any]) -> dict[str, Any]:
        from backerd.daemon.changer import refuse_while_open

        unit, changer = self._changer(body)
        image = body.get("image")
        options = {k: body[k] if isinstance(body.get(k), str) else None
                   for k in ("standard", "length")}

        def insert() -> dict[str, Any]:
            refuse_while_open(unit.config.number, unit.open_node,
                              bool(unit.drive.status().get("open")), "insert")
            return changer.insert(Path(image) if isinstance(image, str) else None,
                                  new=bool(body.get("new")), prompt=bool(body.get("prompt")),
                                  **options)

        return await unit.run(insert)

    async def _volume(self, body: dict[str, Any]) -> dict[str, Any]:
        from backerd.daemon.changer import facts_reply

        unit, changer = self._changer(body)
        reply = facts_reply(await unit.run(changer.facts), "")
        sequence = body.get("sequence")
        if isinstance(sequence, dict) and unit.tools is not None and reply["loaded"]:
            reply["sequence"] = await unit.run(
                partial(unit.tools.record_volume, sequence, reply["identity"]))
        return reply

    def manual_controls(self) -> dict[int, ManualControl]:
        """The units whose VCR an operator presses, by number."""
        from backerd.hw.unit import HardwareUnit
        from backerd.vcr.manual import ManualControl

        controls = {u.config.number: u.prompter() for u in self.units
                    if isinstance(u, HardwareUnit)}
        return {n: c for n, c in controls.items() if isinstance(c, ManualControl)}

    def requests(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        from backerd.daemon.control import word_request
        from backerd.vcr.manual import deck_request

        return {"label": self._label, "check": self._check, "trace": self._trace,
                "rebuild": self._rebuild, "eject": self._eject, "insert": self._insert,
                "volume": self._volume,
                "deck": word_request(partial(deck_request, controls=self.manual_controls()))}

    def metrics_text(self) -> str:
        from backerd.observe.metrics import Sample, render, unit_samples

        samples = [Sample("backerd_build_info", 1, {"version": __version__})]
        for unit in self.units:
            samples += unit_samples(self.unit_status(unit))
        return render(samples)

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
    from backerd.hw.unit import HardwareUnit, ServicedUnit

    out: dict[str, Any] = {}
    if isinstance(unit, ServicedUnit):
        out["hardware"] = unit.hardware_status()
    if isinstance(unit, HardwareUnit):
        with contextlib.suppress(Exception):  # status is informative: never let it fail
            out["vcr"] = unit.vcr_status()
    return out


def drop_unneeded_privileges(config: Config) -> None:
    """Once real cards' ports and memory and all nodes are open: give up the rest."""
    from backerd.hw.settings import CARD_DECKS

    if not any(u.deck in CARD_DECKS for u in config.units):
        return
    from backerd.hw.host import drop_privileges

    done = drop_privileges(config.user)
    log.info("privileges dropped: %s", ", ".join(done) or "nothing to drop")


async def _service_until(unit: ServicedUnit, stopped: trio.Event,
                         task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """A card's service task, from the unit's opening until every unit is shut down.

    The daemon's stop does not end it (shielded): a close that is still writing its
    filemark when the signal comes, and the shutdown's own close of an open recording,
    move their fields through the card, which needs servicing until they return.
    """
    with trio.CancelScope(shield=True):
        async with trio.open_nursery() as nursery:
            await nursery.start(unit.run_service)
            task_status.started()
            await stopped.wait()
            nursery.cancel_scope.cancel()


async def _end_waits_when_stopping(units: list[Unit]) -> None:
    """On cancellation, end waits for an operator or lircd at once: a node's worker
    blocked on one would otherwise hold up the transport, and so the whole stop."""
    from backerd.hw.unit import HardwareUnit

    try:
        await trio.sleep_forever()
    finally:
        for unit in units:
            if isinstance(unit, HardwareUnit):
                unit.stop_waiting()


def sd_notify(state: str) -> None:
    """Tell systemd (Type=notify) about readiness/stopping; a no-op elsewhere."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(state.encode(), address)


def ready_status(units: list[Unit], transport: TransportChoice) -> str:
    count = f"{len(units)} unit" + ("s" if len(units) != 1 else "")
    return f"serving {count} over {transport.kind.upper()}"


def start_watchdog(nursery: trio.Nursery, units: list[Unit], ready: str,
                   stall_limit: float) -> None:
    """Under WatchdogSec=: ping while every unit's worker progresses (daemon.liveness)."""
    from backerd.daemon.liveness import keep_watchdog, watchdog_interval

    interval = watchdog_interval(os.environ, os.getpid())
    if interval is None:
        return
    log.info("watchdog: a ping every %g s while every unit's worker progresses", interval)
    nursery.start_soon(partial(keep_watchdog, lambda: [u.worker_sample() for u in units],
                               sd_notify, interval, ready_status=ready,
                               stall_limit=stall_limit))


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

        access = config.fuse_access
        await nursery.start(
            partial(serve_fuse, config.fuse_root, nodes, max_pages=config.fuse_max_pages,
                    uid=access.uid, gid=access.gid, permissions=access.mode)
        )


async def serve(
    config: Config,
    *,
    opener: UnitOpener = open_unit,
    least_privilege: bool = False,
    task_status: trio.TaskStatus[Service] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve every unit of ``config`` until cancelled; with ``least_privilege`` (the
    daemon process, never a test's), keep only the capabilities still needed once up."""
    from backerd.hw.unit import ServicedUnit

    await ensure_not_running(config.control_socket)
    units: list[Unit] = []
    stopped = trio.Event()  # every unit shut down: the cards' service tasks may end
    async with trio.open_nursery() as cards:
        try:
            for uc in config.units:
                unit = await trio.to_thread.run_sync(opener, uc)
                units.append(unit)
                if isinstance(unit, ServicedUnit):
                    await cards.start(_service_until, unit, stopped)
            await _serve_units(config, units, least_privilege, task_status)
        finally:
            try:
                sd_notify("STOPPING=1\nSTATUS=stopping: closing recordings and releasing "
                          "cassettes")
                for unit in units:
                    await unit.shutdown()
            finally:
                stopped.set()


async def _serve_units(config: Config, units: list[Unit], least_privilege: bool,
                       task_status: trio.TaskStatus[Service]) -> None:
    """The nodes, the status socket and the side tasks of the opened units, until
    cancelled; the units' shutdown is the caller's."""
    transport = await choose_transport(config)
    service = Service(config, units, transport)
    nodes = {name: node for unit in units for name, node in unit.nodes.items()}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_end_waits_when_stopping, units)
        await _serve_nodes(nursery, config, transport.kind, nodes)
        await nursery.start(partial(serve_control, config.control_socket, service.status,
                                    service.requests(), group=config.fuse_access.gid))
        if config.metrics_file is not None:
            nursery.start_soon(write_metrics, service, config.metrics_file)
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
        await trio.to_thread.run_sync(drop_unneeded_privileges, config)
        if least_privilege:
            from backerd.daemon.privileges import drop_after_start

            await drop_after_start(transport.kind)
        log.info("ready (status socket %s)", config.control_socket)
        ready = ready_status(units, transport)
        sd_notify(f"READY=1\nSTATUS={ready}")
        start_watchdog(nursery, units, ready, config.watchdog_stall)
        task_status.started(service)


METRICS_INTERVAL = 15.0  # seconds; node_exporter reads the file when scraped


async def write_metrics(service: Service, path: Path) -> None:
    """Rewrite the Prometheus textfile every METRICS_INTERVAL, and once on the way out."""
    from backerd.observe.metrics import write_atomic

    try:
        while True:
            try:
                await trio.to_thread.run_sync(write_atomic, path, service.metrics_text())
            except OSError as exc:
                log.warning("cannot write metrics to %s: %s", path, exc.strerror)
            await trio.sleep(METRICS_INTERVAL)
    finally:
        with trio.CancelScope(shield=True), contextlib.suppress(OSError):
            await trio.to_thread.run_sync(write_atomic, path, service.metrics_text())


async def run_until_signalled(config: Config, *, opener: UnitOpener = open_unit) -> None:
    """``serve`` in the foreground; SIGTERM, SIGINT or SIGHUP stops it cleanly.

    SIGHUP is what a foreground daemon gets when its terminal or ssh session closes; by
    default it would kill the process without unmounting or closing the recording.
    """
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve, config, opener=opener, least_privilege=True))
            async for signum in signals:
                log.info("%s received: stopping", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break
    log.info("stopped")

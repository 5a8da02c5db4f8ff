"""A served unit on a Backer card (real or emulated): the Unit plus its service task.

Theory of operation: the daemon's ``Unit`` serves nodes from a Drive whose medium
records through a ``CardDeck``. A card also needs its service task running for as long
as anything may move data, including the shutdown that closes an open recording:
``HardwareUnit.shutdown`` runs the service in a nursery of its own around the normal
shutdown. ``hardware_status`` is what ``backerd status --json`` shows per unit: the
modem's name and counters and what the VCR control is doing.

A unit whose VCR is pressed by an operator or through lircd has that control as its
``operator``: the daemon hands its manual controls to the ``deck`` requests, shows
``operator.status()`` and, at shutdown, ends a wait in progress before the recording
is closed (an operator is then told to press STOP without being waited for, so a
stopping daemon never hangs on a person) and closes the control last.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import trio

from backerd.daemon.config import UnitConfig
from backerd.daemon.node import Unit, WorkProbe
from backerd.hw.bus import ServiceClock
from backerd.hw.deck import CardDeck
from backerd.hw.modem import Modem
from backerd.hw.service import LateService, run_service
from backerd.vcr.control import VcrControl

log = logging.getLogger("backerd")


@runtime_checkable
class ServicedUnit(Protocol):
    """A unit with a background task the daemon runs beside its nodes."""

    async def run_service(self) -> None: ...

    def hardware_status(self) -> dict[str, Any]: ...


class HardwareUnit(Unit):
    def __init__(self, config: UnitConfig, drive: Any, *, deck: CardDeck, modem: Modem,
                 clock: ServiceClock, on_shutdown: Callable[[], None] | None = None,
                 late: LateService | None = None, operator: VcrControl | None = None,
                 on_closed: Callable[[], None] | None = None,
                 probe: WorkProbe | None = None) -> None:
        super().__init__(config, drive, on_shutdown=on_shutdown, probe=probe)
        self.deck = deck
        self.modem = modem
        self.clock = clock
        self.late = late
        self.operator = operator
        self._on_closed = on_closed

    async def run_service(self) -> None:
        await run_service(self.modem, self.clock, late=self.late)

    def waiting_by_design(self) -> bool:
        """An operator asked to press a button may take all night: that is not stuck."""
        from backerd.vcr.manual import ManualControl

        operator = self.operator
        return isinstance(operator, ManualControl) and operator.status()["waiting"] is not None

    def stop_waiting(self) -> None:
        """The daemon is stopping: end a wait for the operator or lircd in progress."""
        from backerd.vcr.manual import ManualControl

        operator = self.operator
        if isinstance(operator, ManualControl):
            operator.stopping()
        elif operator is not None:
            operator.abort()

    async def shutdown(self) -> None:
        operator = self.operator
        self.stop_waiting()
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.run_service)
                try:
                    await super().shutdown()
                finally:
                    nursery.cancel_scope.cancel()
                    try:
                        self.modem.close()
                    finally:
                        if isinstance(operator, _Closing):
                            operator.close()
                        if self._on_closed is not None:
                            self._on_closed()

    def hardware_status(self) -> dict[str, Any]:
        return self.deck.status()

    def vcr_status(self) -> dict[str, Any]:
        """What the VCR's control is doing or waiting for (``backerd status``)."""
        control = self.operator if self.operator is not None else self.deck.control
        return control.status()


@runtime_checkable
class _Closing(Protocol):
    def close(self) -> None: ...


def open_emulated_unit(config: UnitConfig, *,
                       notify: Callable[[str], None] = lambda text: None) -> Unit:
    """The unit's cassette in the simulated VCR, driven through an emulated card.

    With ``[unit.vcr] control = "manual"`` or ``"lirc"`` the emulated VCR's buttons are
    pressed by that control (``hw.emu.vcr.OperatedVcr``) instead of directly.
    """
    from backerd.hw.emu.setup import emulated_unit
    from backerd.hw.emu.vcr import OperatedVcr
    from backerd.medium import BackerMedium
    from backerd.tape.drive import Drive
    from backerd.vcr.operator import open_operator
    from backerd.vcr.sim import Cassette

    path = config.cassette
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        Cassette.create(path, standard=config.standard, length=config.length).close()
        log.info("unit %d: created cassette %s", config.number, path)
    cassette = Cassette.open(path)
    kind = config.deck.removeprefix("emulated-")
    try:
        emu = emulated_unit(cassette, kind, realtime=config.realtime, mode=config.mode)
    except BaseException:
        cassette.close()
        raise
    number = config.number
    operator = None
    if config.vcr.control != "sim":
        try:
            operator = open_operator(number, config.vcr, mode=config.mode, notify=notify,
                                     length=cassette.slots, fps=cassette.fps,
                                     standard=cassette.standard)
        except BaseException:
            cassette.close()
            raise
        emu.deck.control = OperatedVcr(operator, emu.vcr)
    number = config.number
    log.info("unit %d: %s on an emulated %s card, VCR control %s", number, emu.modem.name,
             kind, emu.deck.control.name)
    medium = BackerMedium(emu.deck, mode=config.mode,
                          log=lambda message: log.info("unit %d: %s", number, message))

    def release() -> None:
        try:
            medium.close()
        finally:
            with emu.machine.lock:
                cassette.close()

    late = LateService.parse(config.late_service) if config.late_service else None
    if late is not None:
        log.info("unit %d: fault injection: one service tick %d ms late", number,
                 late.late_ns // 1_000_000)
    return HardwareUnit(config, Drive(medium), deck=emu.deck, modem=emu.modem,
                        clock=emu.clock, on_shutdown=release, late=late,
                        operator=operator,
                        probe=WorkProbe(emu.deck.position, lambda: medium.lane.busy))

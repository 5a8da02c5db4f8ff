"""A served unit on a Backer card (real or emulated): the Unit plus its service task.

Theory of operation: the daemon's ``Unit`` serves nodes from a Drive whose medium
records through a ``CardDeck``. A card also needs its service task running for as long
as anything may move data, including the shutdown that closes an open recording:
the daemon keeps its service task running, shielded from the stop, until every unit
is shut down, so a close still writing its filemark when the daemon is told to stop
finishes. ``HardwareUnit.shutdown`` runs the service in a nursery of its own around the
normal shutdown only when no service task runs (one that crashed, or a unit shut down
outside the daemon). ``hardware_status`` is what ``backerd status --json`` shows per
unit: the modem's name and counters and what the VCR control is doing.

A unit whose VCR is pressed by an operator or through lircd has that control as its
``operator``: the daemon hands its manual controls to the ``deck`` requests, shows
``operator.status()`` and, at shutdown, ends a wait in progress before the recording
is closed (an operator is then told to press STOP without being waited for, so a
stopping daemon never hangs on a person) and closes the control last.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import trio

from backerd.daemon.config import UnitConfig
from backerd.daemon.node import Unit, WorkProbe
from backerd.hw.bus import ServiceClock
from backerd.hw.changer import CardChanger, ImageSlot
from backerd.hw.deck import CardDeck
from backerd.hw.modem import Modem
from backerd.hw.service import LateService, run_service
from backerd.vcr.control import VcrControl

if TYPE_CHECKING:
    from backerd.vcr.manual import ManualControl

log = logging.getLogger("backerd")


@runtime_checkable
class ServicedUnit(Protocol):
    """A unit with a background task the daemon runs beside its nodes."""

    async def run_service(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Service the hardware until cancelled; ``started`` once it is running."""
        ...

    def hardware_status(self) -> dict[str, Any]: ...


class HardwareUnit(Unit):
    def __init__(self, config: UnitConfig, drive: Any, *, deck: CardDeck, modem: Modem,
                 clock: ServiceClock, on_shutdown: Callable[[], None] | None = None,
                 late: LateService | None = None, operator: VcrControl | None = None,
                 on_closed: Callable[[], None] | None = None,
                 changer: CardChanger | None = None,
                 probe: WorkProbe | None = None) -> None:
        super().__init__(config, drive, on_shutdown=on_shutdown, changer=changer,
                         probe=probe)
        self.card_changer = changer
        self.deck = deck
        self.modem = modem
        self.clock = clock
        self.late = late
        self.operator = operator
        self._on_closed = on_closed
        self._serviced = False  # a service task runs (the daemon's, or shutdown's own)

    async def run_service(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._serviced = True
        try:
            task_status.started()
            await run_service(self.modem, self.clock, late=self.late)
        finally:
            self._serviced = False

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
        if self.card_changer is not None:
            self.card_changer.stop_waiting()

    def prompter(self) -> ManualControl | None:
        """The manual control that prompts this unit's operator (deck ready|cancel)."""
        from backerd.vcr.manual import ManualControl

        if isinstance(self.operator, ManualControl):
            return self.operator
        return self.card_changer.prompter if self.card_changer is not None else None

    async def shutdown(self) -> None:
        operator = self.operator
        self.stop_waiting()
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as nursery:
                if not self._serviced:  # the daemon's service task is not running
                    await nursery.start(self.run_service)
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
        status = control.status()
        prompter = self.prompter()
        if prompter is not None and prompter is not control:  # LIRC: a person inserts
            status["waiting"] = prompter.status()["waiting"]
        return status


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

    def note(message: str) -> None:
        log.info("unit %d: %s", number, message)

    medium = BackerMedium(emu.deck, mode=config.mode, log=note)
    drive = Drive(medium)
    changer = CardChanger(number, emu.deck, medium, drive, ImageSlot(emu.vcr, emu.machine.lock),
                          prompter=prompter_for(number, config, operator, notify), log=note)

    def release() -> None:
        try:
            medium.close()
        finally:
            with emu.machine.lock:
                emu.vcr.cassette.close()  # the one in the VCR now (cassettes change)

    late = LateService.parse(config.late_service) if config.late_service else None
    if late is not None:
        log.info("unit %d: fault injection: one service tick %d ms late", number,
                 late.late_ns // 1_000_000)
    return HardwareUnit(config, drive, deck=emu.deck, modem=emu.modem,
                        clock=emu.clock, on_shutdown=release, late=late,
                        operator=operator, changer=changer,
                        probe=WorkProbe(emu.deck.position, lambda: medium.lane.busy))


def prompter_for(number: int, config: UnitConfig, operator: VcrControl | None,
                 notify: Callable[[str], None]) -> ManualControl | None:
    """Who asks a person to insert cassettes: the manual control itself, a manual control
    beside LIRC (an IR remote inserts nothing), none for a VCR that presses itself."""
    from backerd.vcr.manual import ManualControl

    if operator is None:
        return None
    if isinstance(operator, ManualControl):
        return operator
    return ManualControl(number, config.vcr, mode=config.mode, notify=notify)

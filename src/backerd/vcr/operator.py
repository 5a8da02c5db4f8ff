"""The control of ``[unit.vcr]`` for a VCR whose buttons someone else presses.

``open_operator`` builds the ``VcrControl`` a real card's deck (or an emulated deck
configured like one) uses: an operator prompted by the daemon (``ManualControl``), or
lircd and an IR transmitter (``LircControl``, whose key map is checked against lircd
at once, so a misspelt key fails at start and not at the first tape operation).
"""

from __future__ import annotations

from collections.abc import Callable

from backerd.errors import ConfigError
from backerd.vcr.control import VcrControl
from backerd.vcr.settings import VcrSettings


def open_operator(unit: int, settings: VcrSettings, *, mode: str,
                  notify: Callable[[str], None], length: int, fps: int,
                  standard: str) -> VcrControl:
    """The control for ``settings``; ``length`` in fields (the reel model of LIRC)."""
    if settings.control == "manual":
        from backerd.vcr.manual import ManualControl

        return ManualControl(unit, settings, mode=mode, notify=notify)
    if settings.control == "lirc":
        from backerd.vcr.lirc import LircControl
        from backerd.vcr.reel import ReelModel

        control = LircControl(settings, ReelModel.for_cassette(length, fps, standard,
                                                               settings.reel))
        try:
            control.check_keys()
        except BaseException:
            control.close()
            raise
        return control
    raise ConfigError(f"unit {unit}: vcr.control {settings.control!r} cannot press a real "
                      "VCR's buttons: use \"manual\" or \"lirc\"")

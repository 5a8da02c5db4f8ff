"""What a job asks the running daemon: the unit's node and cassette, and the preflight.

Thin edge over the control socket (``daemon.control``); the answers are plain values.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backerd.daemon.control import ask, query
from backerd.errors import PreflightFailed, TapeError, UsageError
from backerd.jobs.device import TapeNode

OPEN_WAIT = 30.0  # seconds to wait for the drive another close is still releasing


@dataclass(frozen=True)
class UnitView:
    number: int
    node: str  # the non-rewinding node
    cassette_uuid: str | None
    label: str | None

    @property
    def cassette(self) -> str | None:
        """What people call the loaded cassette: its label, else its UUID."""
        return self.label or self.cassette_uuid


def unit_view(socket: Path, number: int) -> UnitView:
    status = query(socket)
    for unit in status.get("units", []):
        if unit.get("number") == number:
            label = unit.get("cassette_label")
            return UnitView(number, str(unit["nodes"]["non_rewinding"]),
                            unit.get("cassette_uuid"),
                            label.get("text") if isinstance(label, dict) else None)
    raise UsageError(f"the daemon serves no unit {number}")


def preflight(socket: Path, number: int, need: int | None = None) -> list[dict[str, Any]]:
    """Ask the daemon's preflight; PreflightFailed with every failed answer on one line."""
    reply = ask(socket, {"request": "check", "unit": number, "need": need, "label": None})
    answers = list(reply.get("answers", []))
    failed = [a for a in answers if not a.get("ok")]
    if failed or not reply.get("ok"):
        reasons = "; ".join(f"{a['question']} {a['detail']}" for a in failed) or "refused"
        raise PreflightFailed(f"preflight failed on unit {number}: {reasons}")
    return answers


def open_node(path: str, *, write: bool, wait: float = OPEN_WAIT) -> TapeNode:
    """Open a node, waiting while the daemon still finishes the previous close."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return TapeNode(path, write=write)
        except TapeError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def room_for(socket: Path, number: int, need: int) -> tuple[int | None, int | None]:
    """(bytes left on the loaded cassette before its early-warning point, bytes a blank
    one like it holds), as the daemon's ``check --need`` reports them."""
    reply = ask(socket, {"request": "check", "unit": number, "need": need, "label": None})
    volumes = reply.get("volumes")
    if not isinstance(volumes, dict):
        return None, None
    return volumes.get("capacity_left_bytes"), volumes.get("blank_capacity_bytes")

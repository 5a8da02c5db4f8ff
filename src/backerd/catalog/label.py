"""The cassette label: what backerd records at BOT to name a cassette (pure codec).

Theory of operation: the label is the user data of one recording at the beginning of the
tape, ahead of the user's first archive. Its bytes are a fixed magic line and one JSON
object, so the original driver (which sees the label as one extra leading file) shows
readable text, and a later backerd can add keys without breaking older readers. The
medium hides that recording from st numbering. ``parse_label`` returns None for anything
that is not a label (a user's archive at BOT, random bytes) and never raises.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from backerd.errors import UsageError

MAGIC = b"BACKERD LABEL 1\n"
MAX_TEXT = 64
MAX_BYTES = 4096  # a label recording is never longer; longer data at BOT is user data


@dataclass(frozen=True)
class Label:
    """Identity of one cassette."""

    text: str
    uuid: str
    standard: str  # "PAL" or "NTSC"
    length_seconds: int  # nominal playing time of the cassette
    created: str  # ISO 8601, UTC
    encrypted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # keys a newer backerd added


def label_crypt(label: Label | None) -> dict[str, Any] | None:
    """The encryption facts of a label (None: the label says nothing is encrypted)."""
    if label is None or not label.encrypted:
        return None
    info = label.extra.get("crypt")
    return info if isinstance(info, dict) else {}


# Why a unit without a key neither reads nor writes an encrypted cassette (one text for
# the unit that encrypts with its key missing and the unit that does not encrypt).
KEYLESS_REFUSAL = ("cassette {label} is encrypted (key {label_key}) and this unit has no "
                   "key: set encrypt = true and key_file for it")


def keyless_refusal(label: Label | None) -> str | None:
    """The refusal a unit without a key gives for ``label``'s cassette (None: none)."""
    info = label_crypt(label)
    if label is None or info is None:
        return None
    return KEYLESS_REFUSAL.format(label=repr(label.text),
                                  label_key=info.get("key_fingerprint") or "unknown")


def check_text(text: str) -> str:
    """Label text rules: 1..64 printable characters, no leading/trailing space."""
    if not text or text != text.strip():
        raise UsageError("a label needs text without leading or trailing spaces")
    if len(text) > MAX_TEXT:
        raise UsageError(f"a label is at most {MAX_TEXT} characters (got {len(text)})")
    if not text.isprintable():
        raise UsageError("a label may hold printable characters only")
    return text


def new_label(text: str, standard: str, length_seconds: int, *,
              encrypted: bool = False) -> Label:
    return Label(check_text(text), str(uuidlib.uuid4()), standard, int(length_seconds),
                 datetime.now(UTC).isoformat(timespec="seconds"), encrypted)


def encode_label(label: Label) -> bytes:
    body = asdict(label)
    extra = body.pop("extra")
    body.update({k: v for k, v in extra.items() if k not in body})
    data = MAGIC + json.dumps(body, sort_keys=True, ensure_ascii=False).encode() + b"\n"
    if len(data) > MAX_BYTES:
        raise UsageError("label too long")
    return data


_FIELDS = {"text": str, "uuid": str, "standard": str, "length_seconds": int,
           "created": str, "encrypted": bool}


def parse_label(data: bytes) -> Label | None:
    """The label in a BOT recording's bytes, or None when they are not a label."""
    if not data.startswith(MAGIC) or len(data) > MAX_BYTES:
        return None
    try:
        body = json.loads(data[len(MAGIC):].decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    for key, kind in _FIELDS.items():
        value = body.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return None
    try:
        uuidlib.UUID(body["uuid"])
    except ValueError:
        return None
    extra = {k: v for k, v in body.items() if k not in _FIELDS}
    return Label(**{k: body[k] for k in _FIELDS}, extra=extra)

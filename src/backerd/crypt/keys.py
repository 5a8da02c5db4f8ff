"""The unit key: its fingerprint, key file, passphrase-wrapped copy and paper form.

Theory of operation. A unit key is 32 random bytes. Its fingerprint (8 bytes,
HKDF-SHA256 of the key with ``FINGERPRINT_INFO``) names it in every sealed block and
in the cassette label without revealing it. The key file is one JSON object::

    {"backerd_key": 1, "key": BASE64, "fingerprint": HEX, "created": ISO8601,
     "wrap": {"kdf": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": B64, "nonce": B64,
              "wrapped": B64}}

``wrap`` is the key encrypted under a passphrase (scrypt, then AES-256-GCM with the
fingerprint as associated data); the label of every cassette written with the key
carries a copy, so the passphrase alone gets the key back from any of its cassettes.

The paper key is the key in base32 (RFC 4648, no padding), four lines of four groups
of four characters, each line ending in two check characters (base32 of the first 10
bits of SHA-256 over the line number and its characters), so a typo is pinned to its
line; the heading carries the fingerprint, which checks the whole key. Parsers return
a value or raise ``CryptError`` with one line; they never raise anything else on input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backerd.crypt import primitives
from backerd.errors import CryptError

KEY_SIZE = 32
FINGERPRINT_SIZE = 8
FINGERPRINT_INFO = b"backerd key fingerprint v1"
WRAP_AAD = b"backerd key wrap v1"
KEY_FILE_VERSION = 1
# scrypt cost (2^15 x 8 x 1: 32 MiB, a fraction of a second); recorded with every wrap
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
SCRYPT_MAX_MEMORY = 256 << 20  # a wrap read from a label may ask for no more than this
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
PAPER_HEADING = "backerd paper key v1"


@dataclass(frozen=True)
class UnitKey:
    """A unit key and, when known, its passphrase-wrapped copy (``wrap``)."""

    secret: bytes
    fingerprint: bytes
    wrap: dict[str, Any] | None = field(default=None, compare=False)
    created: str = field(default="", compare=False)

    @classmethod
    def from_secret(cls, secret: bytes, *, wrap: dict[str, Any] | None = None,
                    created: str = "") -> UnitKey:
        if len(secret) != KEY_SIZE:
            raise CryptError(f"a unit key is {KEY_SIZE} bytes, got {len(secret)}")
        return cls(secret, fingerprint_of(secret), wrap, created)

    @classmethod
    def generate(cls) -> UnitKey:
        return cls.from_secret(os.urandom(KEY_SIZE),
                               created=datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint.hex()

    def __repr__(self) -> str:  # never print the secret
        return f"UnitKey({self.fingerprint_hex})"


def fingerprint_of(secret: bytes) -> bytes:
    return primitives.hkdf_sha256(secret, salt=b"", info=FINGERPRINT_INFO,
                                  length=FINGERPRINT_SIZE)


# -- the passphrase-wrapped copy --------------------------------------------------------

def wrap_key(key: UnitKey, passphrase: bytes, *, n: int = SCRYPT_N, r: int = SCRYPT_R,
             p: int = SCRYPT_P) -> dict[str, Any]:
    if not passphrase:
        raise CryptError("an empty passphrase protects nothing")
    salt, nonce = os.urandom(16), os.urandom(12)
    kek = primitives.scrypt(passphrase, salt=salt, n=n, r=r, p=p)
    wrapped = primitives.aead(kek).encrypt(nonce, key.secret, WRAP_AAD + key.fingerprint)
    return {"kdf": "scrypt", "n": n, "r": r, "p": p, "salt": _b64(salt), "nonce": _b64(nonce),
            "wrapped": _b64(wrapped), "fingerprint": key.fingerprint_hex}


def unwrap_key(wrap: Any, passphrase: bytes) -> UnitKey:
    """The key inside a wrap (from a key file or a label); CryptError when it won't open."""
    if not isinstance(wrap, dict) or wrap.get("kdf") != "scrypt":
        raise CryptError("not a backerd key wrap (expected kdf scrypt)")
    try:
        n, r, p = (int(wrap[k]) for k in ("n", "r", "p"))
        salt, nonce, wrapped = (_unb64(wrap[k]) for k in ("salt", "nonce", "wrapped"))
        fingerprint = bytes.fromhex(wrap["fingerprint"])
    except (KeyError, TypeError, ValueError):
        raise CryptError("damaged key wrap: a field is missing or malformed") from None
    if not (1 < n <= 1 << 20 and n & (n - 1) == 0 and 0 < r <= 32 and 0 < p <= 16
            and 128 * n * r <= SCRYPT_MAX_MEMORY):
        raise CryptError(f"key wrap has implausible scrypt parameters n={n} r={r} p={p}")
    kek = primitives.scrypt(passphrase, salt=salt, n=n, r=r, p=p)
    try:
        secret = primitives.aead(kek).decrypt(nonce, wrapped, WRAP_AAD + fingerprint)
    except primitives.invalid_tag():
        raise CryptError("wrong passphrase (or a damaged key wrap)") from None
    except ValueError:
        raise CryptError("damaged key wrap") from None
    key = UnitKey.from_secret(secret, wrap=wrap)
    if key.fingerprint != fingerprint:
        raise CryptError("key wrap holds a key that does not match its fingerprint")
    return key


# -- the key file -----------------------------------------------------------------------

def key_document(key: UnitKey) -> str:
    body = {"backerd_key": KEY_FILE_VERSION, "key": _b64(key.secret),
            "fingerprint": key.fingerprint_hex, "created": key.created, "wrap": key.wrap}
    return json.dumps(body, indent=1) + "\n"


def parse_key_document(text: str) -> UnitKey:
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        raise CryptError("not a backerd key file (not JSON)") from None
    if not isinstance(body, dict) or body.get("backerd_key") != KEY_FILE_VERSION:
        raise CryptError("not a backerd key file (no \"backerd_key\": 1)")
    try:
        secret = _unb64(body["key"])
    except (KeyError, TypeError, ValueError):
        raise CryptError("key file: \"key\" is missing or not base64") from None
    wrap = body.get("wrap")
    key = UnitKey.from_secret(secret, wrap=wrap if isinstance(wrap, dict) else None,
                              created=str(body.get("created", "")))
    if body.get("fingerprint") not in (None, key.fingerprint_hex):
        raise CryptError(f"key file: the key does not match its fingerprint "
                         f"{body.get('fingerprint')!r} (damaged?)")
    return key


def load_key_file(path: os.PathLike[str] | str) -> UnitKey:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(1 << 16)
    except FileNotFoundError:
        raise CryptError(f"key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CryptError(f"key file {path}: cannot read: {exc}") from None
    try:
        return parse_key_document(text)
    except CryptError as exc:
        raise CryptError(f"{path}: {exc.message}") from None


def save_key_file(path: os.PathLike[str] | str, key: UnitKey, *, force: bool = False) -> None:
    """Write the key file, readable by its owner only (never replacing one unasked)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise CryptError(f"{path} exists: a key file is never replaced (use --force)") from None
    except OSError as exc:
        raise CryptError(f"{path}: cannot write: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(key_document(key))


# -- the paper key ----------------------------------------------------------------------

def _check_chars(line_no: int, chars: str) -> str:
    digest = hashlib.sha256(f"{line_no}:{chars}".encode()).digest()
    bits = (digest[0] << 2) | (digest[1] >> 6)
    return _B32[bits >> 5] + _B32[bits & 31]


def paper_key(key: UnitKey) -> str:
    text = base64.b32encode(key.secret).decode().rstrip("=")
    lines = [f"{PAPER_HEADING}  fingerprint {key.fingerprint_hex}"]
    for i in range(0, len(text), 16):
        chars = text[i:i + 16]
        groups = " ".join(chars[j:j + 4] for j in range(0, len(chars), 4))
        lines.append(f"{i // 16 + 1}: {groups:<19}  {_check_chars(i // 16 + 1, chars)}")
    return "\n".join(lines) + "\n"


_LINE = re.compile(r"^\s*(\d+)\s*[:.]\s*([A-Za-z2-7 ]+?)\s+([A-Za-z2-7]{2})\s*$")
_FINGERPRINT = re.compile(r"fingerprint\s+([0-9a-fA-F]{16})")


def parse_paper_key(text: str) -> UnitKey:
    """The key typed back from its paper form; the line with a typo is named."""
    lines: dict[int, str] = {}
    fingerprint = None
    for raw in text.splitlines():
        if not raw.strip():
            continue
        m = _FINGERPRINT.search(raw)
        if m and PAPER_HEADING.split()[0] in raw:
            fingerprint = m.group(1).lower()
            continue
        m = _LINE.match(raw)
        if m is None:
            raise CryptError(f"paper key: cannot read the line {raw.strip()[:40]!r}")
        number, chars, check = int(m.group(1)), m.group(2).replace(" ", "").upper(), m.group(3)
        if _check_chars(number, chars) != check.upper():
            raise CryptError(f"paper key: line {number} does not match its check "
                             f"characters {check.upper()} (a typo on that line?)")
        lines[number] = chars
    if sorted(lines) != list(range(1, len(lines) + 1)) or not lines:
        raise CryptError(f"paper key: expected lines 1..4, got {sorted(lines) or 'none'}")
    chars = "".join(lines[i] for i in sorted(lines))
    try:
        secret = base64.b32decode(chars + "=" * (-len(chars) % 8))
    except (binascii.Error, ValueError):
        raise CryptError("paper key: not base32") from None
    if len(secret) != KEY_SIZE:
        raise CryptError(f"paper key: {len(secret)} bytes, a key is {KEY_SIZE} "
                         "(a line missing?)")
    key = UnitKey.from_secret(secret)
    if fingerprint is not None and fingerprint != key.fingerprint_hex:
        raise CryptError(f"paper key: the key's fingerprint is {key.fingerprint_hex}, "
                         f"the heading says {fingerprint}")
    return key


def parse_any_key(text: str) -> UnitKey:
    """A key file or a paper key, whichever ``text`` is."""
    if text.lstrip().startswith("{"):
        return parse_key_document(text)
    return parse_paper_key(text)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise TypeError("expected base64 text")
    return base64.b64decode(text.encode(), validate=True)

"""The three primitives encryption uses, from ``cryptography``, imported on first use.

Only this module names ``cryptography``: a backerd without the ``crypt`` extra runs
every command that does not encrypt, and one that does gets one line saying what to
install.
"""

from __future__ import annotations

from typing import Any

from backerd.errors import CryptError

_INSTALL = ("encryption needs the 'cryptography' package: "
            "pip install 'backerd[crypt]' (or apt-get install python3-cryptography)")


def _module() -> Any:
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    except ImportError:
        raise CryptError(_INSTALL) from None
    return AESGCM, HKDF, Scrypt, hashes, InvalidTag


def aead(key: bytes) -> Any:
    """An AES-GCM object (``encrypt(nonce, data, aad)`` / ``decrypt``) for ``key``."""
    return _module()[0](key)


def invalid_tag() -> type[Exception]:
    """The exception AES-GCM raises when a tag does not match."""
    return _module()[4]


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int = 32) -> bytes:
    _, hkdf, _, hashes, _ = _module()
    return hkdf(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def scrypt(passphrase: bytes, *, salt: bytes, n: int, r: int, p: int,
           length: int = 32) -> bytes:
    return _module()[2](salt=salt, length=length, n=n, r=r, p=p).derive(passphrase)

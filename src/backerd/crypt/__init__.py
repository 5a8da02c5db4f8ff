"""Opt-in encryption of tape blocks (pure: bytes and keys in, bytes out, no I/O).

``blocks`` seals and opens one tape block (AES-256-GCM under a per-recording key, the
nonce from the block number and a last-block flag, the block bound to its cassette,
recording and position); ``keys`` holds the unit key, its fingerprint, the key file
format, the passphrase-wrapped copy kept in the cassette label, and the paper key.
docs/encryption.md explains the construction. The primitives come from the optional
``cryptography`` package (``pip install 'backerd[crypt]'``); ``primitives`` imports it
once and says what to install when it is missing.
"""

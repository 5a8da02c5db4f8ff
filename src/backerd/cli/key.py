"""``backerd key new|export|import``: make, print and restore a unit's encryption key.

``new`` writes a fresh key file (mode 0600) with a passphrase-wrapped copy of the key,
which every label written with it carries. ``export`` prints the key file and its paper
form (base32 lines with check characters, to print and lock away). ``import`` writes a
key file back from either form, or from the wrapped copy in a cassette's label and the
passphrase (``--from-cassette``). Passphrases come from ``--passphrase-file`` (its first
line) or, on a terminal, from a prompt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backerd.errors import CryptError, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("new", help="create a key file (asks for a passphrase to wrap it)")
    p.add_argument("key_file", type=Path)
    p.add_argument("--passphrase-file", type=Path, metavar="FILE")
    p.add_argument("--force", action="store_true", help="replace an existing key file")
    p = sub.add_parser("export", help="print the key file and its paper form")
    p.add_argument("key_file", type=Path)
    p.add_argument("--paper", action="store_true", help="the paper form only")
    p = sub.add_parser("import", help="write a key file from an export, a paper key, "
                                      "or a cassette label and the passphrase")
    p.add_argument("key_file", type=Path)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="source", metavar="FILE",
                        help="an exported key file or paper key (- for stdin)")
    source.add_argument("--from-cassette", type=Path, metavar="IMAGE",
                        help="unwrap the copy in this cassette image's label")
    p.add_argument("--passphrase-file", type=Path, metavar="FILE",
                   help="passphrase (to unwrap, or to wrap a key typed from paper)")
    p.add_argument("--force", action="store_true", help="replace an existing key file")


def run(args: argparse.Namespace) -> int:
    from backerd.crypt import keys

    if args.action == "new":
        key = keys.UnitKey.generate()
        key = _with_wrap(key, _passphrase(args.passphrase_file, confirm=True))
        keys.save_key_file(args.key_file, key, force=args.force)
        print(f"{args.key_file}: new key {key.fingerprint_hex}; print its paper form with "
              f"backerd key export --paper {args.key_file} and keep it apart from the tapes")
        return 0
    if args.action == "export":
        key = keys.load_key_file(args.key_file)
        if not args.paper:
            sys.stdout.write(keys.key_document(key) + "\n")
        sys.stdout.write(keys.paper_key(key))
        return 0
    if args.from_cassette is not None:
        key = _from_cassette(args.from_cassette, _passphrase(args.passphrase_file))
    else:
        key = keys.parse_any_key(_read_source(args.source))
        if key.wrap is None:  # typed from paper: wrap it again for the labels
            key = _with_wrap(key, _passphrase(args.passphrase_file, confirm=True))
    keys.save_key_file(args.key_file, key, force=args.force)
    print(f"{args.key_file}: key {key.fingerprint_hex} imported")
    return 0


def _with_wrap(key, passphrase: bytes):  # type: ignore[no-untyped-def]
    import dataclasses

    from backerd.crypt.keys import wrap_key

    return dataclasses.replace(key, wrap=wrap_key(key, passphrase))


def _read_source(source: str) -> str:
    if source == "-":
        return sys.stdin.read(1 << 16)
    try:
        return Path(source).read_text()[: 1 << 16]
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{source}: cannot read: {exc}") from None


def _passphrase(path: Path | None, *, confirm: bool = False) -> bytes:
    if path is not None:
        try:
            text = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read the passphrase: {exc}") from None
        if not text or not text[0]:
            raise CryptError(f"{path}: the passphrase (its first line) is empty")
        return text[0].encode()
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the passphrase: use --passphrase-file")
    import getpass

    first = getpass.getpass("passphrase: ")
    if confirm and getpass.getpass("again: ") != first:
        raise CryptError("the passphrases differ")
    return first.encode()


def _from_cassette(image: Path, passphrase: bytes):  # type: ignore[no-untyped-def]
    from backerd.catalog.label import label_crypt
    from backerd.crypt.keys import unwrap_key
    from backerd.medium.labelled import read_label
    from backerd.vcr.sim import Cassette, SimDeck

    with Cassette.open(image, readonly=True) as cassette:
        label, _ = read_label(SimDeck(cassette))
    info = label_crypt(label)
    if info is None:
        raise CryptError(f"{image}: the cassette has no label of an encrypted cassette")
    if not info.get("wrapped_key"):
        raise CryptError(f"{image}: its label holds no wrapped key")
    return unwrap_key(info["wrapped_key"], passphrase)

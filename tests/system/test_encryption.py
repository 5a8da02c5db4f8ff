"""Opt-in encryption end to end: GNU tar through a daemon whose unit seals every block.

The round trip (and ciphertext on tape, plaintext only with the key, offline too), a
wrong key refused with a clear error, and a missing key refusing to write anything.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.systemtest import MODE, Daemon, new_daemon, same_tree, stop_checked

pytestmark = pytest.mark.workflow

pytest.importorskip("cryptography")


def unit_config(key_file: Path) -> str:
    return f'[[unit]]\nmode = "{MODE}"\nencrypt = true\nkey_file = "{key_file}"\n'


def backerd(d: Daemon, *args: str, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    return d.run(*d.backerd(*args), ok=ok)


def new_key(d: Daemon, path: Path) -> None:
    passphrase = d.tmp / "passphrase"
    passphrase.write_text("correct horse battery staple\n")
    backerd(d, "key", "new", str(path), "--passphrase-file", str(passphrase))


@pytest.fixture
def sealed(no_shared_daemon: None, tmp_path: Path) -> Iterator[Daemon]:
    """A daemon whose unit encrypts, with its key (tmp/unit.key) made before it starts."""
    key = tmp_path / "unit.key"
    d = new_daemon(tmp_path, unit_config(key))
    new_key(d, key)
    d.start()
    try:
        yield d
    finally:
        stop_checked(d)


def recordings(d: Daemon) -> list[dict]:
    info = backerd(d, "cassette", "info", "--json", str(d.cassette)).stdout
    return json.loads(info)["recordings"]


def test_encrypted_round_trip_ciphertext_on_tape_and_offline_decrypt(
        sealed: Daemon, tree: Path, tmp_path: Path) -> None:
    d = sealed
    backerd(d, "label", "--config", str(d.config_file), "--unit", "0", "SEALED-01")
    [unit] = d.status()["units"]
    label = unit["cassette_label"]
    assert label["encrypted"] and unit["encryption"]["configured"]
    fingerprint = unit["encryption"]["key_fingerprint"]
    exported = json.loads(backerd(d, "key", "export", str(tmp_path / "unit.key")).stdout
                          .decode().split("\n\n")[0])
    assert exported["fingerprint"] == fingerprint
    d.run("tar", "-cf", d.nrew, "-C", tree.parent, tree.name)
    d.run("tar", "-cf", d.nrew, "-C", tree, "hello.txt")
    d.mt(d.nrew, "rewind")
    out = tmp_path / "out"
    out.mkdir()
    d.run("tar", "-xf", d.nrew, "-C", out)
    assert same_tree(tree, out / tree.name) == []
    d.mt(d.nrew, "rewind")
    d.mt(d.nrew, "fsf", "1")
    assert d.run("tar", "-tf", d.nrew).stdout.decode().split() == ["hello.txt"]
    stop_checked(d)
    # on tape: sealed blocks (after the label recording), no plaintext
    assert len(recordings(d)) == 3
    raw = backerd(d, "cassette", "dump", str(d.cassette), "--file", "1").stdout
    stream = d.run(*d.backerd("decode", "--mode", MODE), input=raw).stdout
    assert stream.startswith(b"BKE1") and b"hello, tape" not in stream
    assert bytes.fromhex(fingerprint) in stream[:64]
    # offline, with the key: from the image, and from the raw stream
    plain = backerd(d, "cassette", "dump", str(d.cassette), "--file", "1",
                    "--key-file", str(tmp_path / "unit.key")).stdout
    (tmp_path / "offline.tar").write_bytes(plain)
    with tarfile.open(tmp_path / "offline.tar") as tf:
        assert f"{tree.name}/hello.txt" in tf.getnames()
    again = d.run(*d.backerd("decode", "--mode", MODE, "--key-file", str(tmp_path / "unit.key"),
                             "--cassette-uuid", label["uuid"], "--file", "0"), input=raw).stdout
    assert again == plain
    # bound to its place: the same blocks claimed as file 1 do not open
    moved = d.run(*d.backerd("decode", "--mode", MODE, "--key-file", str(tmp_path / "unit.key"),
                             "--cassette-uuid", label["uuid"], "--file", "1"), input=raw,
                  ok=False)
    assert moved.returncode == 4 and b"authentication check" in moved.stderr
    # the key comes back from the label with the passphrase alone
    backerd(d, "key", "import", str(tmp_path / "restored.key"), "--from-cassette",
            str(d.cassette), "--passphrase-file", str(tmp_path / "passphrase"))
    restored = backerd(d, "key", "export", "--paper", str(tmp_path / "restored.key")).stdout
    original = backerd(d, "key", "export", "--paper", str(tmp_path / "unit.key")).stdout
    assert restored == original


def test_wrong_key_is_refused_with_a_clear_error(sealed: Daemon, tree: Path,
                                                tmp_path: Path) -> None:
    d = sealed
    backerd(d, "label", "--config", str(d.config_file), "--unit", "0", "SEALED-02")
    d.run("tar", "-cf", d.nrew, "-C", tree.parent, tree.name)
    stop_checked(d)
    other = tmp_path / "other.key"
    new_key(d, other)
    d.config_file.write_text(d.config_file.read_text().replace(
        str(tmp_path / "unit.key"), str(other)))
    d.start()
    listing = d.run("tar", "-tf", d.nrew, ok=False)
    assert listing.returncode != 0
    assert b"Permission denied" in listing.stderr
    assert "wrong key: cassette 'SEALED-02' is encrypted with key" in d.log.read_text()
    # nor may it write: the cassette stays as it was
    d.mt(d.nrew, "eod")
    written = d.run("tar", "-cf", d.nrew, "-C", tree.parent, tree.name, ok=False)
    assert written.returncode != 0
    stop_checked(d)
    assert len(recordings(d)) == 2


def test_missing_key_refuses_to_write_until_the_key_is_there(
        no_shared_daemon: None, tmp_path: Path, tree: Path) -> None:
    key = tmp_path / "later.key"
    d = new_daemon(tmp_path, unit_config(key))
    d.start()
    try:
        assert "encryption configured, but no key" in d.log.read_text()
        labelled = backerd(d, "label", "--config", str(d.config_file), "--unit", "0", "X",
                           ok=False)
        assert labelled.returncode != 0 and b"key is missing" in labelled.stderr
        written = d.run("tar", "-cf", d.nrew, "-C", tree.parent, tree.name, ok=False)
        assert written.returncode != 0 and b"Permission denied" in written.stderr
        assert "refusing to write" in d.log.read_text()
        d.mt(d.nrew, "rewind")
        assert d.run("dd", f"if={d.nrew}", "of=/dev/null", "bs=64k", ok=False).stdout == b""
        # the key appears: the next write finds it (no restart)
        new_key(d, key)
        backerd(d, "label", "--config", str(d.config_file), "--unit", "0", "LATER-01")
        d.run("tar", "-cf", d.nrew, "-C", tree.parent, tree.name)
    finally:
        stop_checked(d)
    [label_rec, archive] = recordings(d)
    assert archive["user_bytes"] > 0
    raw = backerd(d, "cassette", "dump", str(d.cassette), "--file", "1").stdout
    assert d.run(*d.backerd("decode", "--mode", MODE), input=raw).stdout.startswith(b"BKE1")


def comparable(snapshot: dict) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("written_at", "written_by")}
            for r in snapshot["recordings"]]


def test_catalog_rebuild_with_the_key_equals_the_live_catalog(
        no_shared_daemon: None, tmp_path: Path, tree: Path) -> None:
    key, other = tmp_path / "unit.key", tmp_path / "other.key"
    cassette = tmp_path / "tape.cassette"
    d = new_daemon(tmp_path, unit_config(key) + f'cassette = "{cassette}"\n')
    new_key(d, key)
    new_key(d, other)
    db = Path(d.env["BACKERD_STATE_DIR"]) / "catalog.db"
    config = ("--config", str(d.config_file))

    def show(uuid: str, catalog: Path = db) -> dict:
        return json.loads(backerd(d, "catalog", "--catalog", str(catalog), "show", uuid,
                                  "--members", "--json").stdout)

    d.start()
    try:
        backerd(d, "label", *config, "--unit", "0", "SEALED-03")
        d.run("tar", "--format=gnu", "-cf", d.nrew, "-C", tree.parent, tree.name)
        d.run("tar", "--format=pax", "-cf", d.nrew, "-C", tree, "hello.txt", "sub")
        [unit] = d.status()["units"]
        uuid = unit["cassette_uuid"]
        live = show(uuid)
        entries = [1 + len(list(tree.rglob("*"))), 2 + len(list((tree / "sub").rglob("*")))]
        assert [len(r["members"]) for r in live["recordings"]] == entries
        # through the daemon: the unit's own key
        reply = json.loads(backerd(d, "catalog", "rebuild", *config, "--unit", "0",
                                   "--json").stdout)
        assert reply["encrypted_unindexed"] == 0 and reply["members"] == sum(entries)
        assert comparable(show(uuid)) == comparable(live)
        # the daemon cannot be handed another key
        refused = backerd(d, "catalog", "rebuild", *config, "--unit", "0", "--key-file",
                          str(key), ok=False)
        assert refused.returncode == 2 and b"drop --key-file" in refused.stderr
    finally:
        stop_checked(d)
    # the catalog deleted, then rebuilt from the image with the key
    db.unlink()
    backerd(d, "catalog", "--catalog", str(db), "rebuild", str(cassette), "--key-file", str(key))
    assert comparable(show(uuid)) == comparable(live)
    # and with --unit while the daemon is stopped: the unit's key_file from the config
    db.unlink()
    out = backerd(d, "catalog", "rebuild", *config, "--unit", "0").stdout.decode()
    assert f"{sum(entries)} tar members" in out and "not indexed" not in out
    assert comparable(show(uuid)) == comparable(live)
    # without the key: the recordings, no members, and a line saying so
    bare = tmp_path / "bare.db"
    out = backerd(d, "catalog", "--catalog", str(bare), "rebuild", str(cassette)).stdout.decode()
    assert "2 files, 0 tar members" in out
    assert "2 recordings are encrypted and were not indexed" in out
    assert [len(r["members"]) for r in show(uuid, bare)["recordings"]] == [0, 0]
    # a wrong key: one line naming the recording, and the catalog as it was
    before = show(uuid)
    wrong = backerd(d, "catalog", "--catalog", str(db), "rebuild", str(cassette),
                    "--key-file", str(other), ok=False)
    message = wrong.stderr.decode().strip().splitlines()
    assert wrong.returncode == 13 and len(message) == 1, wrong.stderr
    assert "recording 1 (file 0) failed authentication" in message[0]
    assert "the catalog is unchanged" in message[0]
    assert show(uuid) == before
    # the unit's key file gone: the rebuild goes on without it, as the daemon would
    key.rename(tmp_path / "away.key")
    gone = backerd(d, "catalog", "rebuild", *config, "--unit", "0")
    assert f"key file {key} is missing".encode() in gone.stderr
    assert "2 recordings are encrypted and were not indexed" in gone.stdout.decode()

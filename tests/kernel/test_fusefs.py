"""The FUSE fallback's namespace: one directory, one empty file per node (root, 0660 unless
configured otherwise)."""

from __future__ import annotations

import errno
import struct

import pytest

from backerd.kernel.connection import Connection
from backerd.kernel.fusefs import Namespace
from testkit import kernelwire as w

MOUNT_TIME = 1_790_000_000


@pytest.fixture
def served() -> tuple[Connection, Namespace]:
    conn = Connection("fuse")
    conn.reply_init(conn.receive(w.init(1)))
    return conn, Namespace(["backer0", "nbacker0"], uid=0, gid=0, time=MOUNT_TIME)


def answer(served, raw: bytes) -> tuple[int, int, bytes]:
    conn, namespace = served
    return w.reply(namespace.answer(conn, conn.receive(raw)))


def attr(payload: bytes, offset: int) -> dict:
    f = struct.unpack_from(w.ATTR, payload, offset)
    return {"ino": f[0], "size": f[1], "mtime": f[4], "mode": f[9], "nlink": f[10]}


def owner(payload: bytes, offset: int) -> tuple[int, int]:
    f = struct.unpack_from(w.ATTR, payload, offset)
    return f[11], f[12]


def test_lookup_finds_each_node_as_an_empty_rw_file(served) -> None:
    conn, namespace = served
    assert namespace.node_ids == {"backer0": 2, "nbacker0": 3}
    for name, ino in namespace.node_ids.items():
        unique, error, payload = answer(served, w.lookup(10 + ino, name.encode()))
        assert (unique, error, len(payload)) == (10 + ino, 0, 40 + 88)
        assert struct.unpack_from(w.ENTRY_OUT, payload)[0] == ino
        assert attr(payload, 40) == {"ino": ino, "size": 0, "mtime": MOUNT_TIME,
                                     "mode": 0o100660, "nlink": 1}


def test_lookup_of_anything_else_is_enoent(served) -> None:
    assert answer(served, w.lookup(20, b"backer1"))[1] == -errno.ENOENT
    assert answer(served, w.lookup(21, b"x", parent=2))[1] == -errno.ENOTDIR


def test_getattr_root_and_file(served) -> None:
    _, error, payload = answer(served, w.getattr_(30, 1))
    assert error == 0 and len(payload) == 16 + 88
    assert attr(payload, 16)["mode"] == 0o040755
    assert attr(payload, 16)["nlink"] == 2
    assert attr(w.reply(served[1].answer(served[0], served[0].receive(w.getattr_(31, 3))))[2],
                16)["mode"] == 0o100660
    assert answer(served, w.getattr_(32, 9))[1] == -errno.ENOENT


def test_truncate_is_accepted_and_changes_nothing(served) -> None:
    _, error, payload = answer(served, w.setattr_size(40, 2, 0))
    assert error == 0 and attr(payload, 16)["size"] == 0
    _, error, payload = answer(served, w.setattr_size(41, 2, 12345))
    assert error == 0 and attr(payload, 16)["size"] == 0


def dirents(payload: bytes) -> list[tuple[int, int, bytes, int]]:
    out, pos = [], 0
    while pos < len(payload):
        ino, off, namelen, type_ = struct.unpack_from(w.DIRENT, payload, pos)
        out.append((ino, off, payload[pos + 24:pos + 24 + namelen], type_))
        pos += (24 + namelen + 7) // 8 * 8
    return out


def test_readdir_lists_the_nodes_and_resumes(served) -> None:
    _, error, payload = answer(served, w.request(w.OPENDIR, 50, struct.pack("<II", 0, 0),
                                                 nodeid=1))
    assert error == 0
    _, error, payload = answer(served, w.readdir(51, 0, 0, 4096))
    assert error == 0
    entries = dirents(payload)
    assert [(e[0], e[2], e[3]) for e in entries] == [
        (1, b".", 4), (1, b"..", 4), (2, b"backer0", 8), (3, b"nbacker0", 8)]
    resumed = dirents(answer(served, w.readdir(52, 0, entries[1][1], 4096))[2])
    assert [e[2] for e in resumed] == [b"backer0", b"nbacker0"]
    assert answer(served, w.readdir(53, 0, 4, 4096))[2] == b""
    small = dirents(answer(served, w.readdir(54, 0, 0, 70))[2])  # two 32-byte records fit
    assert [e[2] for e in small] == [b".", b".."]


def test_readdirplus_carries_entries(served) -> None:
    _, error, payload = answer(served, w.readdir(55, 0, 2, 4096, plus=True))
    assert error == 0
    assert struct.unpack_from(w.ENTRY_OUT, payload)[0] == 2
    assert attr(payload, 40)["mode"] == 0o100660
    ino, _, namelen, _ = struct.unpack_from(w.DIRENT, payload, 128)
    assert (ino, payload[152:152 + namelen]) == (2, b"backer0")


def test_small_requests(served) -> None:
    _, error, payload = answer(served, w.request(w.STATFS, 60, nodeid=1))
    assert error == 0 and len(payload) == 80
    assert answer(served, w.request(w.ACCESS, 61, struct.pack("<II", 2, 0), nodeid=2))[1] == 0
    getx = w.request(w.GETXATTR, 62, struct.pack("<II", 0, 0) + b"security.capability\0",
                     nodeid=2)
    assert answer(served, getx)[1] == -errno.ENOSYS
    assert answer(served, w.request(w.OPENDIR, 63, struct.pack("<II", 0, 0),
                                    nodeid=2))[1] == -errno.ENOTDIR
    conn, namespace = served
    assert namespace.answer(conn, conn.receive(w.request(w.FORGET, 64, struct.pack("<Q", 1),
                                                         nodeid=2))) is None


@pytest.mark.parametrize("names", [["a/b"], [""], ["."], ["x", "x"]])
def test_bad_file_names(names: list[str]) -> None:
    with pytest.raises(ValueError):
        Namespace(names)


def test_files_carry_the_configured_owner_group_and_permissions() -> None:
    conn = Connection("fuse")
    conn.reply_init(conn.receive(w.init(1)))
    namespace = Namespace(["backer0"], uid=1001, gid=26, permissions=0o640, time=MOUNT_TIME)
    served = (conn, namespace)
    _, error, payload = answer(served, w.lookup(60, b"backer0"))
    assert error == 0
    assert attr(payload, 40)["mode"] == 0o100640 and owner(payload, 40) == (1001, 26)
    _, error, payload = answer(served, w.getattr_(61, 2))
    assert attr(payload, 16)["mode"] == 0o100640 and owner(payload, 16) == (1001, 26)
    _, error, payload = answer(served, w.getattr_(62, 1))
    assert attr(payload, 16)["mode"] == 0o040755  # the directory stays searchable

"""Requests from the kernel, as frozen dataclasses (one per opcode we understand).

Every event carries the header fields of its request (``unique`` names the request in
the reply; ``nodeid`` the inode, 0 for CUSE). ``needs_reply`` is False for the few
requests the kernel never waits for (FORGET, BATCH_FORGET, INTERRUPT). A request we do
not implement arrives as ``Unsupported`` and one we cannot parse as ``BadRequest``;
both are answered with their errno by whoever serves the connection.
"""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass
from typing import ClassVar

from backerd.kernel import abi


@dataclass(frozen=True)
class Request:
    unique: int
    nodeid: int
    uid: int
    gid: int
    pid: int

    needs_reply: ClassVar[bool] = True


@dataclass(frozen=True)
class Init(Request):
    major: int
    minor: int
    max_readahead: int
    flags: int
    flags2: int


@dataclass(frozen=True)
class CuseInit(Request):
    major: int
    minor: int
    flags: int


@dataclass(frozen=True)
class Destroy(Request):
    pass


@dataclass(frozen=True)
class Lookup(Request):
    name: bytes


@dataclass(frozen=True)
class Forget(Request):
    nlookup: int

    needs_reply: ClassVar[bool] = False


@dataclass(frozen=True)
class BatchForget(Request):
    forgets: tuple[tuple[int, int], ...]  # (nodeid, nlookup)

    needs_reply: ClassVar[bool] = False


@dataclass(frozen=True)
class GetAttr(Request):
    fh: int | None  # set when the kernel asks about an open file (fstat)


@dataclass(frozen=True)
class SetAttr(Request):
    valid: int  # FATTR_* bits saying which fields are meaningful
    fh: int | None
    size: int
    mode: int


@dataclass(frozen=True)
class Open(Request):
    flags: int  # open(2) flags as the kernel passes them


@dataclass(frozen=True)
class OpenDir(Request):
    flags: int


@dataclass(frozen=True)
class Read(Request):
    fh: int
    offset: int
    size: int
    flags: int


@dataclass(frozen=True)
class ReadDir(Request):
    fh: int
    offset: int
    size: int
    plus: bool  # READDIRPLUS: entries carry attributes


@dataclass(frozen=True)
class Write(Request):
    fh: int
    offset: int
    data: bytes
    write_flags: int
    flags: int


@dataclass(frozen=True)
class Release(Request):
    fh: int
    flags: int


@dataclass(frozen=True)
class ReleaseDir(Request):
    fh: int
    flags: int


@dataclass(frozen=True)
class Flush(Request):
    fh: int


@dataclass(frozen=True)
class Fsync(Request):
    fh: int
    datasync: bool


@dataclass(frozen=True)
class StatFs(Request):
    pass


@dataclass(frozen=True)
class Access(Request):
    mask: int


@dataclass(frozen=True)
class GetXattr(Request):
    name: bytes
    size: int


@dataclass(frozen=True)
class Interrupt(Request):
    target: int  # unique of the request to interrupt

    needs_reply: ClassVar[bool] = False


@dataclass(frozen=True)
class Ioctl(Request):
    fh: int
    flags: int
    cmd: int
    arg: int  # the user's argument (a pointer for encoded commands)
    data: bytes  # in_size bytes copied in by the kernel
    out_size: int  # room the kernel offers for the reply data

    @property
    def unrestricted(self) -> bool:
        return bool(self.flags & abi.FUSE_IOCTL_UNRESTRICTED)

    @property
    def command(self) -> abi.IoctlCommand:
        return abi.decode_ioctl(self.cmd)


@dataclass(frozen=True)
class Poll(Request):
    fh: int
    kh: int
    flags: int
    events: int


@dataclass(frozen=True)
class Unsupported(Request):
    """An opcode we do not implement: answer ENOSYS (the kernel then stops asking)."""

    opcode: int

    @property
    def errno(self) -> int:
        return _errno.ENOSYS


@dataclass(frozen=True)
class BadRequest(Request):
    """A request that violates the protocol; ``unique`` is 0 when even the header is
    unusable, in which case no reply is possible."""

    opcode: int
    errno: int
    reason: str

    @property
    def needs_reply(self) -> bool:  # type: ignore[override]
        return self.unique != 0

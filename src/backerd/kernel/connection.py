"""Sans-IO FUSE/CUSE connection: request bytes in, events out; replies in, bytes out.

Theory of operation: the kernel hands over one whole request per read(2) of
/dev/fuse or /dev/cuse. ``Connection.receive`` parses it into an event
(``kernel.events``) and never raises: a request it cannot parse becomes
``BadRequest`` (EINVAL for short/inconsistent structs, EPROTO for a request that
makes no sense in the current state) and an opcode it does not implement becomes
``Unsupported`` (ENOSYS). Requests the kernel cannot send are malformed too: a READ or
WRITE larger than the negotiated chunk, a restricted ioctl whose sizes are not its
``_IOC_SIZE``, an unrestricted ioctl on a connection that did not negotiate them
(EPROTO). The ``reply_*`` builders turn an answer into the bytes to
write back; each request is answered exactly once (answering an unknown or already
answered request is our bug and raises ``ProtocolError``).

The connection starts waiting for INIT (FUSE) or CUSE_INIT (CUSE); anything else
before it is EPROTO. The INIT reply negotiates the protocol minor and announces
``max_write`` and, for FUSE, ``max_pages`` (the kernel splits larger transfers into
chunks of that many pages; CUSE always uses 32 pages = 128 KiB).
"""

from __future__ import annotations

import enum
import errno as _errno
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from backerd.errors import ProtocolError
from backerd.kernel import abi
from backerd.kernel import events as ev

Kind = Literal["fuse", "cuse"]


class State(enum.Enum):
    AWAITING_INIT = "awaiting-init"
    READY = "ready"
    DESTROYED = "destroyed"


@dataclass(frozen=True)
class Attributes:
    """What GETATTR/LOOKUP report about an inode."""

    ino: int
    mode: int
    size: int = 0
    nlink: int = 1
    uid: int = 0
    gid: int = 0
    time: int = 0  # seconds since the epoch for atime, mtime and ctime
    blksize: int = abi.PAGE_SIZE

    def pack(self) -> bytes:
        t = self.time
        return abi.ATTR.pack(
            self.ino, self.size, (self.size + 511) // 512, t, t, t, 0, 0, 0,
            self.mode, self.nlink, self.uid, self.gid, 0, self.blksize, 0,
        )


@dataclass(frozen=True)
class DirEntry:
    ino: int
    name: bytes
    type: int  # abi.DT_*
    attributes: Attributes | None = None  # needed for READDIRPLUS


class _Malformed(Exception):
    """Raised inside the parsers only; becomes a BadRequest event."""

    def __init__(self, reason: str, errno: int = _errno.EINVAL) -> None:
        super().__init__(reason)
        self.errno = errno


def _unpack(layout: struct.Struct, body: memoryview, what: str) -> tuple:
    if len(body) < layout.size:
        raise _Malformed(f"{what}: {len(body)} bytes, need {layout.size}")
    return layout.unpack_from(body)


def _name(body: memoryview, what: str) -> bytes:
    raw = bytes(body)
    end = raw.find(b"\0")
    if end < 0:
        raise _Malformed(f"{what}: name is not NUL-terminated")
    return raw[:end]


class Connection:
    """One FUSE mount's or CUSE device's protocol state."""

    def __init__(
        self,
        kind: Kind,
        *,
        max_write: int = 1 << 20,
        max_pages: int = 256,
        devname: str | None = None,
        unrestricted_ioctl: bool = False,
        dev_major: int = 0,
        dev_minor: int = 0,
    ) -> None:
        if kind not in ("fuse", "cuse"):
            raise ValueError(f"unknown connection kind {kind!r}")
        if kind == "cuse" and not devname:
            raise ValueError("a CUSE connection needs a device name")
        if not 1 <= max_pages <= 0xFFFF:
            raise ValueError(f"max_pages {max_pages} out of range")
        if max_write < abi.PAGE_SIZE:
            raise ValueError(f"max_write {max_write} below one page")
        self.kind: Kind = kind
        self.max_write = max_write
        self.max_pages = max_pages if kind == "fuse" else abi.CUSE_MAX_PAGES
        self.devname = devname
        self.unrestricted_ioctl = unrestricted_ioctl
        self.dev_major = dev_major
        self.dev_minor = dev_minor
        self.state = State.AWAITING_INIT
        self.minor = 0  # negotiated protocol minor, once initialised
        self._outstanding: set[int] = set()

    # ---- sizes the transport needs ----
    @property
    def read_buffer_size(self) -> int:
        """Bytes to offer each read(2) of the device: the largest WRITE plus headers."""
        return self.max_write + 64 * 1024

    @property
    def max_chunk(self) -> int:
        """The most data bytes one READ/WRITE request carries."""
        return min(self.max_write, self.max_pages * abi.PAGE_SIZE)

    # ---- receiving ----
    def receive(self, buf: bytes | bytearray | memoryview) -> ev.Request:
        view = memoryview(buf)
        if len(view) < abi.IN_HEADER.size:
            unique = struct.unpack_from("<Q", view, 8)[0] if len(view) >= 16 else 0
            return self._bad((unique, 0, 0, 0, 0), 0, _errno.EINVAL,
                             f"request of {len(view)} bytes is shorter than a header")
        length, opcode, unique, nodeid, uid, gid, pid, extlen, _ = abi.IN_HEADER.unpack_from(view)
        head = (unique, nodeid, uid, gid, pid)
        if unique == 0:
            return ev.BadRequest(*head, opcode=opcode, errno=_errno.EINVAL,
                                 reason="request with unique 0")
        if length != len(view) or length < abi.IN_HEADER.size + extlen * 8:
            return self._bad(head, opcode, _errno.EINVAL,
                             f"header says {length} bytes, read returned {len(view)}")
        body = view[abi.IN_HEADER.size:length - extlen * 8]
        try:
            event = self._parse(opcode, head, body)
        except _Malformed as exc:
            return self._bad(head, opcode, exc.errno, str(exc))
        if event.needs_reply:
            self._outstanding.add(unique)
        return event

    def _bad(self, head: tuple, opcode: int, errno: int, reason: str) -> ev.BadRequest:
        event = ev.BadRequest(*head, opcode=opcode, errno=errno, reason=reason)
        if event.needs_reply:
            self._outstanding.add(event.unique)
        return event

    def _parse(self, opcode: int, head: tuple, body: memoryview) -> ev.Request:
        if self.state is State.AWAITING_INIT:
            wanted = abi.Opcode.INIT if self.kind == "fuse" else abi.Opcode.CUSE_INIT
            if opcode != wanted:
                raise _Malformed(f"opcode {opcode} before {wanted.name}", _errno.EPROTO)
        elif opcode in (abi.Opcode.INIT, abi.Opcode.CUSE_INIT):
            raise _Malformed("second INIT", _errno.EPROTO)
        elif self.state is State.DESTROYED:
            raise _Malformed(f"opcode {opcode} after DESTROY", _errno.EPROTO)
        parser = _PARSERS.get(opcode)
        if parser is None or (self.kind == "cuse" and opcode == abi.Opcode.INIT) or (
            self.kind == "fuse" and opcode == abi.Opcode.CUSE_INIT
        ):
            return ev.Unsupported(*head, opcode=opcode)
        return parser(self, head, body)

    # ---- replying ----
    def _reply(self, unique: int, error: int = 0, payload: bytes = b"") -> bytes:
        if unique not in self._outstanding:
            raise ProtocolError(f"reply to request {unique}, which is not awaiting one")
        self._outstanding.discard(unique)
        return abi.OUT_HEADER.pack(abi.OUT_HEADER.size + len(payload), error, unique) + payload

    def is_outstanding(self, unique: int) -> bool:
        return unique in self._outstanding

    def reply_error(self, request: ev.Request | int, errno: int) -> bytes:
        unique = request if isinstance(request, int) else request.unique
        if errno <= 0:
            raise ValueError(f"error reply needs a positive errno, got {errno}")
        return self._reply(unique, -errno)

    def reply_empty(self, request: ev.Request) -> bytes:
        return self._reply(request.unique)

    def reply_init(self, request: ev.Init) -> bytes:
        """Answer FUSE_INIT (EPROTO for a protocol older than the layouts we build)."""
        if request.major != abi.KERNEL_VERSION or request.minor < abi.MIN_MINOR_VERSION:
            return self.reply_error(request, _errno.EPROTO)
        self.minor = min(request.minor, abi.KERNEL_MINOR_VERSION)
        flags = request.flags & (abi.FUSE_BIG_WRITES | abi.FUSE_MAX_PAGES)
        if not flags & abi.FUSE_MAX_PAGES:
            self.max_pages = abi.FUSE_DEFAULT_MAX_PAGES  # the kernel will not take ours
        payload = abi.INIT_OUT.pack(
            abi.KERNEL_VERSION, self.minor, request.max_readahead, flags,
            16, 12,  # max_background, congestion_threshold: the kernel's defaults
            self.max_write, 1, self.max_pages, 0, 0,
        )
        self.state = State.READY
        return self._reply(request.unique, 0, payload)

    def reply_cuse_init(self, request: ev.CuseInit) -> bytes:
        if request.major != abi.KERNEL_VERSION or request.minor < 11:
            return self.reply_error(request, _errno.EPROTO)
        assert self.devname is not None
        self.minor = min(request.minor, abi.KERNEL_MINOR_VERSION)
        flags = abi.CUSE_UNRESTRICTED_IOCTL if self.unrestricted_ioctl else 0
        payload = abi.CUSE_INIT_OUT.pack(
            abi.KERNEL_VERSION, self.minor, 0, flags, self.max_write, self.max_write,
            self.dev_major, self.dev_minor,
        ) + b"DEVNAME=" + self.devname.encode() + b"\0"
        self.state = State.READY
        return self._reply(request.unique, 0, payload)

    def reply_destroy(self, request: ev.Destroy) -> bytes:
        self.state = State.DESTROYED
        return self._reply(request.unique)

    def reply_entry(self, request: ev.Request, attributes: Attributes,
                    *, valid_seconds: int = 1) -> bytes:
        payload = abi.ENTRY_OUT.pack(attributes.ino, 0, valid_seconds, valid_seconds, 0, 0)
        return self._reply(request.unique, 0, payload + attributes.pack())

    def reply_attr(self, request: ev.Request, attributes: Attributes,
                   *, valid_seconds: int = 1) -> bytes:
        payload = abi.ATTR_OUT.pack(valid_seconds, 0, 0) + attributes.pack()
        return self._reply(request.unique, 0, payload)

    def reply_open(self, request: ev.Open | ev.OpenDir, fh: int, open_flags: int = 0) -> bytes:
        return self._reply(request.unique, 0, abi.OPEN_OUT.pack(fh, open_flags, 0))

    def reply_data(self, request: ev.Read | ev.GetXattr, data: bytes) -> bytes:
        if isinstance(request, ev.Read) and len(data) > request.size:
            raise ProtocolError(f"READ reply of {len(data)} bytes for {request.size} asked")
        return self._reply(request.unique, 0, bytes(data))

    def reply_write(self, request: ev.Write, size: int) -> bytes:
        if not 0 <= size <= len(request.data):
            raise ProtocolError(f"WRITE reply of {size} bytes for {len(request.data)} sent")
        return self._reply(request.unique, 0, abi.WRITE_OUT.pack(size, 0))

    def reply_statfs(self, request: ev.StatFs, *, namelen: int = 255) -> bytes:
        payload = abi.STATFS_OUT.pack(0, 0, 0, 0, 0, abi.PAGE_SIZE, namelen, abi.PAGE_SIZE, 0)
        return self._reply(request.unique, 0, payload)

    def reply_readdir(self, request: ev.ReadDir, entries: Iterable[DirEntry]) -> bytes:
        """Entries from ``request.offset`` on, as many whole ones as fit ``request.size``.

        The offset of an entry is its index + 1, so the kernel's next READDIR resumes.
        """
        out = bytearray()
        for index, entry in enumerate(entries):
            if index < request.offset:
                continue
            record = abi.DIRENT.pack(entry.ino, index + 1, len(entry.name), entry.type)
            record += entry.name + bytes(-(abi.DIRENT.size + len(entry.name)) % 8)
            if request.plus:
                if entry.attributes is None:
                    raise ProtocolError("READDIRPLUS entry without attributes")
                record = (abi.ENTRY_OUT.pack(entry.ino, 0, 1, 1, 0, 0)
                          + entry.attributes.pack() + record)
            if len(out) + len(record) > request.size:
                break
            out += record
        return self._reply(request.unique, 0, bytes(out))

    def reply_ioctl(self, request: ev.Ioctl, data: bytes = b"", result: int = 0) -> bytes:
        if len(data) > request.out_size:
            raise ProtocolError(
                f"ioctl {request.cmd:#x} reply of {len(data)} bytes, room for {request.out_size}")
        return self._reply(request.unique, 0, abi.IOCTL_OUT.pack(result, 0, 0, 0) + bytes(data))

    def reply_ioctl_retry(self, request: ev.Ioctl, in_iovs: list[tuple[int, int]],
                          out_iovs: list[tuple[int, int]]) -> bytes:
        """Ask the kernel to fetch/store these (address, length) ranges and ask again.

        Only an unrestricted ioctl (CUSE with CUSE_UNRESTRICTED_IOCTL) may be retried.
        """
        if not request.unrestricted:
            raise ProtocolError("RETRY reply to a restricted ioctl")
        if len(in_iovs) + len(out_iovs) > abi.FUSE_IOCTL_MAX_IOV:
            raise ProtocolError("too many ioctl iovecs")
        payload = abi.IOCTL_OUT.pack(0, abi.FUSE_IOCTL_RETRY, len(in_iovs), len(out_iovs))
        for base, length in (*in_iovs, *out_iovs):
            payload += abi.IOCTL_IOVEC.pack(base, length)
        return self._reply(request.unique, 0, payload)

    def reply_poll(self, request: ev.Poll, revents: int) -> bytes:
        return self._reply(request.unique, 0, abi.POLL_OUT.pack(revents, 0))


# ---- parsers: (connection, header fields, body) -> event ----
_Parser = Callable[[Connection, tuple, memoryview], ev.Request]


def _parse_init(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    if len(body) < 8:
        raise _Malformed("INIT shorter than major/minor")
    major, minor = struct.unpack_from("<II", body)
    readahead = flags = flags2 = 0
    if len(body) >= abi.INIT_IN.size:
        _, _, readahead, flags = abi.INIT_IN.unpack_from(body)
    if len(body) >= abi.INIT_IN.size + abi.INIT_IN_FLAGS2.size:
        (flags2,) = abi.INIT_IN_FLAGS2.unpack_from(body, abi.INIT_IN.size)
    return ev.Init(*head, major=major, minor=minor, max_readahead=readahead, flags=flags,
                   flags2=flags2)


def _parse_cuse_init(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    major, minor, _, flags = _unpack(abi.CUSE_INIT_IN, body, "CUSE_INIT")
    return ev.CuseInit(*head, major=major, minor=minor, flags=flags)


def _parse_lookup(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    return ev.Lookup(*head, name=_name(body, "LOOKUP"))


def _parse_forget(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    (nlookup,) = _unpack(abi.FORGET_IN, body, "FORGET")
    return ev.Forget(*head, nlookup=nlookup)


def _parse_batch_forget(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    count, _ = _unpack(abi.BATCH_FORGET_IN, body, "BATCH_FORGET")
    need = abi.BATCH_FORGET_IN.size + count * abi.FORGET_ONE.size
    if len(body) < need:
        raise _Malformed(f"BATCH_FORGET of {count} needs {need} bytes, got {len(body)}")
    forgets = tuple(
        abi.FORGET_ONE.unpack_from(body, abi.BATCH_FORGET_IN.size + i * abi.FORGET_ONE.size)
        for i in range(count)
    )
    return ev.BatchForget(*head, forgets=forgets)


def _parse_getattr(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    flags, _, fh = _unpack(abi.GETATTR_IN, body, "GETATTR")
    return ev.GetAttr(*head, fh=fh if flags & 1 else None)  # FUSE_GETATTR_FH


def _parse_setattr(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    fields = _unpack(abi.SETATTR_IN, body, "SETATTR")
    valid, _, fh, size = fields[:4]
    mode = fields[11]
    return ev.SetAttr(*head, valid=valid, fh=fh if valid & abi.FATTR_FH else None, size=size,
                      mode=mode)


def _parse_open(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    flags, _ = _unpack(abi.OPEN_IN, body, "OPEN")
    return ev.Open(*head, flags=flags)


def _parse_opendir(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    flags, _ = _unpack(abi.OPEN_IN, body, "OPENDIR")
    return ev.OpenDir(*head, flags=flags)


def _parse_read(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    fh, offset, size, _, _, flags, _ = _unpack(abi.RW_IN, body, "READ")
    if size > conn.max_chunk:
        raise _Malformed(f"READ of {size} bytes, more than the {conn.max_chunk} negotiated")
    return ev.Read(*head, fh=fh, offset=offset, size=size, flags=flags)


def _parse_readdir(conn: Connection, head: tuple, body: memoryview, plus: bool) -> ev.Request:
    fh, offset, size, _, _, _, _ = _unpack(abi.RW_IN, body, "READDIR")
    return ev.ReadDir(*head, fh=fh, offset=offset, size=size, plus=plus)


def _parse_write(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    fh, offset, size, write_flags, _, flags, _ = _unpack(abi.RW_IN, body, "WRITE")
    data = body[abi.RW_IN.size:]
    if len(data) != size:
        raise _Malformed(f"WRITE says {size} bytes but carries {len(data)}")
    if size > conn.max_chunk:
        raise _Malformed(f"WRITE of {size} bytes, more than the {conn.max_chunk} negotiated")
    return ev.Write(*head, fh=fh, offset=offset, data=bytes(data), write_flags=write_flags,
                    flags=flags)


def _parse_release(conn: Connection, head: tuple, body: memoryview, cls: type) -> ev.Request:
    fh, flags, _ = _unpack(abi.RELEASE_IN, body, "RELEASE")
    return cls(*head, fh=fh, flags=flags)


def _parse_flush(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    fh, _, _, _ = _unpack(abi.FLUSH_IN, body, "FLUSH")
    return ev.Flush(*head, fh=fh)


def _parse_fsync(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    fh, fsync_flags, _ = _unpack(abi.FSYNC_IN, body, "FSYNC")
    return ev.Fsync(*head, fh=fh, datasync=bool(fsync_flags & 1))


def _parse_statfs(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    return ev.StatFs(*head)


def _parse_access(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    mask, _ = _unpack(abi.ACCESS_IN, body, "ACCESS")
    return ev.Access(*head, mask=mask)


def _parse_getxattr(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    size, _ = _unpack(abi.GETXATTR_IN, body, "GETXATTR")
    return ev.GetXattr(*head, name=_name(body[abi.GETXATTR_IN.size:], "GETXATTR"), size=size)


def _parse_interrupt(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    (target,) = _unpack(abi.INTERRUPT_IN, body, "INTERRUPT")
    return ev.Interrupt(*head, target=target)


def _parse_destroy(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    return ev.Destroy(*head)


def _parse_ioctl(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    fh, flags, cmd, arg, in_size, out_size = _unpack(abi.IOCTL_IN, body, "IOCTL")
    data = body[abi.IOCTL_IN.size:]
    if len(data) != in_size:
        raise _Malformed(f"IOCTL says in_size {in_size} but carries {len(data)} bytes")
    command = abi.decode_ioctl(cmd)
    if flags & abi.FUSE_IOCTL_UNRESTRICTED:
        if not (conn.kind == "cuse" and conn.unrestricted_ioctl):
            # only a CUSE device that asked for them gets unrestricted ioctls; answering
            # one with RETRY elsewhere would make the kernel fail the call with EIO
            raise _Malformed("unrestricted ioctl on a connection that did not negotiate "
                             "them", _errno.EPROTO)
    elif (command.copies_in and len(data) != command.size) or (
            command.copies_out and out_size != command.size):
        # a restricted ioctl carries exactly what _IOC_SIZE says, in and out
        raise _Malformed(f"restricted ioctl {cmd:#x} with {len(data)} bytes in and "
                         f"{out_size} out; _IOC_SIZE is {command.size}")
    return ev.Ioctl(*head, fh=fh, flags=flags, cmd=cmd, arg=arg, data=bytes(data),
                    out_size=out_size)


def _parse_poll(conn: Connection, head: tuple, body: memoryview) -> ev.Request:
    if len(body) >= abi.POLL_IN.size:
        fh, kh, flags, events = abi.POLL_IN.unpack_from(body)
    else:
        fh, kh, flags = _unpack(abi.POLL_IN_COMPAT, body, "POLL")
        events = 0xFFFF  # old kernels do not say which events they want
    return ev.Poll(*head, fh=fh, kh=kh, flags=flags, events=events)


_PARSERS: dict[int, _Parser] = {
    abi.Opcode.INIT: _parse_init,
    abi.Opcode.CUSE_INIT: _parse_cuse_init,
    abi.Opcode.LOOKUP: _parse_lookup,
    abi.Opcode.FORGET: _parse_forget,
    abi.Opcode.BATCH_FORGET: _parse_batch_forget,
    abi.Opcode.GETATTR: _parse_getattr,
    abi.Opcode.SETATTR: _parse_setattr,
    abi.Opcode.OPEN: _parse_open,
    abi.Opcode.OPENDIR: _parse_opendir,
    abi.Opcode.READ: _parse_read,
    abi.Opcode.READDIR: lambda c, h, b: _parse_readdir(c, h, b, plus=False),
    abi.Opcode.READDIRPLUS: lambda c, h, b: _parse_readdir(c, h, b, plus=True),
    abi.Opcode.WRITE: _parse_write,
    abi.Opcode.RELEASE: lambda c, h, b: _parse_release(c, h, b, ev.Release),
    abi.Opcode.RELEASEDIR: lambda c, h, b: _parse_release(c, h, b, ev.ReleaseDir),
    abi.Opcode.FLUSH: _parse_flush,
    abi.Opcode.FSYNC: _parse_fsync,
    abi.Opcode.STATFS: _parse_statfs,
    abi.Opcode.ACCESS: _parse_access,
    abi.Opcode.GETXATTR: _parse_getxattr,
    abi.Opcode.INTERRUPT: _parse_interrupt,
    abi.Opcode.DESTROY: _parse_destroy,
    abi.Opcode.IOCTL: _parse_ioctl,
    abi.Opcode.POLL: _parse_poll,
}


def ioctl_retry_iovecs(
    request: ev.Ioctl,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]] | None:
    """For an unrestricted ioctl, the user memory still to fetch/offer, or None when the
    request already carries everything its ``_IOC`` encoding says it needs.

    Restricted ioctls never need a retry (the kernel already copied ``_IOC_SIZE``), and
    an unencoded command (size 0, e.g. FDFLUSH) has nothing to fetch.
    """
    if not request.unrestricted:
        return None
    command = request.command
    missing_in = command.copies_in and len(request.data) < command.size
    missing_out = command.copies_out and request.out_size < command.size
    if not (missing_in or missing_out):
        return None
    whole = (request.arg, command.size)
    return ([whole] if command.copies_in else []), ([whole] if command.copies_out else [])

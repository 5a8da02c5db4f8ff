"""The FUSE transport on a real mount: real dd, cat, and Python I/O from separate processes.

The kernel calls back into this process, so every client runs as a subprocess while trio
serves the mount. The node handler keeps records in memory; checks compare what the
tools wrote and read with what the handler recorded.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from backerd.daemon.cuse import serve_cuse
from backerd.daemon.fuse import serve_fuse
from backerd.errors import TapeError
from testkit.guards import escaped_assertions
from testkit.stwire import GMT, MTIOCGET, MTIOCTOP, OPS, mtget, mtop, parse_mtop

HAVE_CUSE = os.path.exists("/dev/cuse")
pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(os.geteuid() != 0, reason="serving FUSE/CUSE needs root"),
]
needs_fuse = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse")
needs_cuse = pytest.mark.skipif(not HAVE_CUSE, reason="no /dev/cuse on this kernel (tests/vm)")
# A transport: "fuse" with its max_pages, or "cuse" (128 KiB chunks, fixed by the kernel).
TRANSPORTS = [
    pytest.param(("fuse", 256), id="fuse256", marks=needs_fuse),
    pytest.param(("fuse", 32), id="fuse32", marks=needs_fuse),
    pytest.param(("cuse", 32), id="cuse", marks=needs_cuse),
]
ALL_TRANSPORTS = [
    *TRANSPORTS,
    pytest.param(("cuse-unrestricted", 32), id="cuse-unrestricted", marks=needs_cuse),
]
CUSE_NAMES = {"backer0": "bkrtest0", "nbacker0": "nbkrtest0"}  # never clash with a daemon

KiB, MiB = 1024, 1024 * 1024


class RecordKeeper:
    """Records in memory; reads return one record per call, as st does."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.pos = 0
        self.opens: list[int] = []
        self.reads: list[tuple[int, bool]] = []
        self.ioctls: list[tuple[int, bytes, int]] = []
        self.releases = 0

    async def open(self, flags: int) -> None:
        self.opens.append(flags)

    async def read(self, size: int, exact: bool) -> bytes:
        self.reads.append((size, exact))
        if self.pos >= len(self.records):
            return b""
        record = self.records[self.pos]
        if exact and len(record) > size:
            raise TapeError("block larger than the buffer", errno=errno.ENOMEM)
        self.pos += 1
        return record

    async def write(self, data: bytes) -> int:
        del self.records[self.pos:]
        self.records.append(data)
        self.pos += 1
        return len(data)

    async def ioctl(self, cmd: int, arg: bytes, out_size: int) -> bytes:
        self.ioctls.append((cmd, arg, out_size))
        if cmd == MTIOCGET:
            return mtget(gstat=GMT["BOT"] | GMT["ONLINE"], blkno=self.pos)
        if cmd == MTIOCTOP:
            op, _count = parse_mtop(arg)
            if op == OPS["MTREW"]:
                self.pos = 0
            return b""
        raise TapeError("not a tape ioctl", errno=errno.ENOTTY)

    async def release(self) -> None:
        self.releases += 1
        self.pos = 0


Body = Callable[[dict[str, Path], dict[str, RecordKeeper]], Awaitable[None]]


def serve(tmp_path: Path, body: Body, *, transport: tuple[str, int] = ("fuse", 256),
          keepers: dict[str, RecordKeeper] | None = None,
          fuse_access: dict[str, int] | None = None) -> Path:
    kind, max_pages = transport
    unrestricted = kind == "cuse-unrestricted"
    kind = "cuse" if unrestricted else kind
    root = tmp_path / "mnt" / "dev"  # does not exist yet: serve_fuse creates it
    handlers = {"backer0": RecordKeeper(), "nbacker0": RecordKeeper(), **(keepers or {})}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            if kind == "fuse":
                paths = await nursery.start(lambda task_status: serve_fuse(
                    root, handlers, max_pages=max_pages, task_status=task_status,
                    **(fuse_access or {})))
                assert is_mounted(root)
            else:
                paths = {}
                for name, handler in handlers.items():
                    paths[name] = await nursery.start(lambda task_status, n=name, h=handler:
                                                      serve_cuse(CUSE_NAMES[n], h,
                                                                 unrestricted=unrestricted,
                                                                 task_status=task_status))
                    assert paths[name].is_char_device()
            with trio.fail_after(120):
                await body(paths, handlers)
            nursery.cancel_scope.cancel()

    try:
        with escaped_assertions():  # a fake handler's assertion the dispatcher caught
            trio.run(main)
    finally:
        if kind == "fuse" and is_mounted(root):  # the transport should have unmounted
            os.system(f"umount -l {root}")
    assert not is_mounted(root)
    if kind == "cuse":
        assert not any((Path("/dev") / name).exists() for name in CUSE_NAMES.values())
    return root


def is_mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as mounts:
        return any(line.split()[4] == str(path) for line in mounts)


async def sh(command: str, *, check: bool = True) -> trio.CompletedProcess:
    result = await trio.run_process(["sh", "-c", command], capture_stdout=True,
                                    capture_stderr=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{command!r} failed: {result.stderr.decode()}")
    return result


def records_in(dd_stderr: bytes) -> str:
    match = re.search(rb"^(\d+\+\d+) records in", dd_stderr, re.M)
    assert match, dd_stderr
    return match.group(1).decode()


@pytest.mark.parametrize("block", [10 * KiB, 64 * KiB, 1 * MiB], ids=["10k", "64k", "1M"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dd_writes_one_record_per_block_and_reads_them_back(
    tmp_path: Path, block: int, transport: tuple[str, int]
) -> None:
    count = 3
    data = os.urandom(block * count)
    (tmp_path / "in").write_bytes(data)

    async def body(paths, handlers) -> None:
        node = paths["backer0"]
        await sh(f"dd if={tmp_path}/in of={node} bs={block} 2>/dev/null")
        assert handlers["backer0"].records == [data[i:i + block] for i in range(0, len(data),
                                                                                 block)]
        # A bigger buffer still gets one record per read(2): "0+3 records in".
        result = await sh(f"dd if={node} of={tmp_path}/out bs=4M")
        assert records_in(result.stderr) == f"0+{count}"
        assert (tmp_path / "out").read_bytes() == data
        assert handlers["nbacker0"].records == []

    serve(tmp_path, body, transport=transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dd_small_buffer_over_big_records_is_enomem(tmp_path: Path, transport) -> None:
    async def body(paths, handlers) -> None:
        handlers["backer0"].records = [bytes(64 * KiB)]
        result = await sh(f"dd if={paths['backer0']} of=/dev/null bs=10k", check=False)
        assert result.returncode != 0
        assert b"Cannot allocate memory" in result.stderr
        assert handlers["backer0"].reads == [(10 * KiB, True)]

    serve(tmp_path, body, transport=transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cat_reads_every_record(tmp_path: Path, transport) -> None:
    # cat reads with a 128 KiB buffer: records up to that size come back whole.
    records = [os.urandom(n) for n in (10240, 1, 131072, 65536)]

    async def body(paths, handlers) -> None:
        handlers["nbacker0"].records = list(records)
        result = await sh(f"cat {paths['nbacker0']}")
        assert result.stdout == b"".join(records)

    serve(tmp_path, body, transport=transport)


CLIENT = r"""
import errno, fcntl, json, os, struct, sys
node = sys.argv[1]
out = {}
fd = os.open(node, os.O_RDWR)
out["written"] = [os.write(fd, b"first record"), os.write(fd, bytes(200000))]
buf = bytearray(48)
fcntl.ioctl(fd, 0x80306D02, buf, True)
out["mtget"] = list(struct.unpack("<qqqqqii", buf))
fcntl.ioctl(fd, 0x40086D01, struct.pack("<hxxi", 6, 1))
try:
    fcntl.ioctl(fd, 0x24B)
except OSError as exc:
    out["fdflush"] = exc.errno
try:
    os.lseek(fd, 10240, os.SEEK_CUR)
except OSError as exc:
    out["lseek"] = exc.errno
out["read"] = [len(os.read(fd, 100)), len(os.read(fd, 1 << 20)), len(os.read(fd, 100))]
os.close(fd)
st = os.stat(node)
out["mode"], out["size"] = st.st_mode, st.st_size
fd = os.open(node, os.O_WRONLY | os.O_TRUNC)
os.close(fd)
print(json.dumps(out))
"""


@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
def test_python_client_io_and_ioctls(tmp_path: Path, transport) -> None:
    fuse = transport[0] == "fuse"

    async def body(paths, handlers) -> None:
        result = await trio.run_process([sys.executable, "-c", CLIENT, str(paths["backer0"])],
                                        capture_stdout=True, capture_stderr=True, check=False)
        assert result.returncode == 0, result.stderr.decode()
        out = json.loads(result.stdout)
        keeper = handlers["backer0"]
        assert out["written"] == [12, 200000]
        assert out["mtget"] == [0x72, 0, 0, 0x41000000, 0, 0, 2]
        assert (MTIOCTOP, mtop("MTREW"), 0) in keeper.ioctls
        assert out["fdflush"] == errno.ENOTTY
        assert out["read"] == [12, 200000, 0]
        if fuse:
            assert out["lseek"] == errno.ESPIPE  # so tar reads instead of skipping
            assert out["mode"] == 0o100660 and out["size"] == 0
        else:
            assert stat.S_ISCHR(out["mode"])
        # O_TRUNC (open + SETATTR on FUSE) never erases anything
        assert keeper.records == [b"first record", bytes(200000)]
        assert keeper.opens[-1] & os.O_TRUNC == 0
        assert keeper.releases == 2

    serve(tmp_path, body, transport=transport)


@pytest.mark.skipif(shutil.which("mt") is None, reason="mt-st is not installed")
@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
def test_mt_reaches_the_handler(tmp_path: Path, transport) -> None:
    async def body(paths, handlers) -> None:
        await sh(f"mt -f {paths['nbacker0']} rewind")
        assert handlers["nbacker0"].ioctls == [(MTIOCTOP, mtop("MTREW"), 0)]
        result = await sh(f"mt -f {paths['nbacker0']} status")
        assert b"block number=0" in result.stdout.replace(b"  ", b" ")

    serve(tmp_path, body, transport=transport)


OPEN_AS = """
import errno, os, sys
try:
    os.close(os.open(sys.argv[1], os.O_RDWR))
    print(0)
except OSError as exc:
    print(exc.errno)
"""


@needs_fuse
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv is not installed")
def test_fuse_nodes_are_for_owner_and_group_only(tmp_path: Path) -> None:
    """Only the nodes' owner and group may open them, as with CUSE nodes under the udev
    rule; everyone else is refused by the kernel before the handler sees an OPEN."""
    group = 4242

    async def open_as(node: Path, *groups: int) -> int:
        who = ["setpriv", "--reuid=65534", "--regid=65534"]
        who += [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
        result = await trio.run_process([*who, sys.executable, "-c", OPEN_AS, str(node)],
                                        capture_stdout=True, check=True)
        return int(result.stdout)

    async def body(paths, handlers) -> None:
        node = paths["nbacker0"]
        # stat(2) from a worker thread: the kernel asks this very loop for the answer
        info = await trio.to_thread.run_sync(node.stat)
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o660, 0, group)
        assert await open_as(node) == errno.EACCES
        assert handlers["nbacker0"].opens == []
        assert await open_as(node, group) == 0
        assert len(handlers["nbacker0"].opens) == 1

    # the test's tmp dir is root-only: mount where others can reach the files
    public = Path(tempfile.mkdtemp(prefix="backerd-access-"))
    try:
        public.chmod(0o755)
        serve(public, body, fuse_access={"uid": 0, "gid": group, "permissions": 0o660})
    finally:
        shutil.rmtree(public)


@needs_fuse
def test_listing_and_unmount_on_cancel(tmp_path: Path) -> None:
    async def body(paths, handlers) -> None:
        result = await sh(f"ls {paths['backer0'].parent}")
        assert result.stdout.split() == [b"backer0", b"nbacker0"]

    root = serve(tmp_path, body)
    assert root.is_dir() and list(root.iterdir()) == []


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar is not installed")
@pytest.mark.parametrize("blocking", [20, 2048], ids=["b20", "b2048"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tar_round_trip(tmp_path: Path, transport, blocking: int) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(3 * MiB + 12345))
    (src / "small.txt").write_text("a tape file\n")
    out = tmp_path / "out"
    out.mkdir()

    async def body(paths, handlers) -> None:
        node = paths["backer0"]
        await sh(f"tar -b {blocking} -cf {node} -C {tmp_path} src")
        record = blocking * 512
        assert {len(r) for r in handlers["backer0"].records} == {record}
        listing = await sh(f"tar -b {blocking} -tf {node}")
        assert sorted(listing.stdout.split()) == [b"src/", b"src/big.bin", b"src/small.txt"]
        await sh(f"tar -b {blocking} -xf {node} -C {out}")

    serve(tmp_path, body, transport=transport)
    for name in ("big.bin", "small.txt"):
        assert (out / "src" / name).read_bytes() == (src / name).read_bytes()


class GatedKeeper(RecordKeeper):
    """Reads wait until the test opens the gate, as a tape read waits for the deck."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = trio.Event()
        self.waiting = trio.Event()

    async def read(self, size: int, exact: bool) -> bytes:
        self.waiting.set()
        await self.gate.wait()
        return await super().read(size, exact)


@pytest.mark.skipif(shutil.which("mt") is None, reason="mt-st is not installed")
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_waiting_reader_does_not_block_other_nodes(tmp_path: Path, transport) -> None:
    async def body(paths, handlers) -> None:
        slow = handlers["backer0"]
        assert isinstance(slow, GatedKeeper)
        slow.records = [b"late record"]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sh, f"dd if={paths['backer0']} of={tmp_path}/late bs=10k")
            await slow.waiting.wait()
            result = await sh(f"mt -f {paths['nbacker0']} status")  # answered meanwhile
            assert b"block number=0" in result.stdout.replace(b"  ", b" ")
            slow.gate.set()
        assert (tmp_path / "late").read_bytes() == b"late record"

    serve(tmp_path, body, transport=transport, keepers={"backer0": GatedKeeper()})

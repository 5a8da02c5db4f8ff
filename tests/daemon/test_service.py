"""The daemon's own parts: config, node handlers, status socket, service lifecycle."""

from __future__ import annotations

import errno
import grp
import json
import pwd
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from backerd.daemon import config as cfg
from backerd.daemon.control import NotRunning, query, serve_control
from backerd.daemon.node import Unit
from backerd.errors import ConfigError, TapeError, UsageError
from testkit.guards import escaped_assertions
from testkit.stwire import MTGET_SIZE, MTIOCGET, MTIOCTOP, mtop, parse_mtget

# -- config ------------------------------------------------------------------------


def test_default_config_is_one_sim_unit(tmp_path: Path) -> None:
    env = {"BACKERD_STATE_DIR": str(tmp_path / "state"), "BACKERD_RUNTIME_DIR": str(tmp_path)}
    c = cfg.load_config(None, environ=env)
    assert len(c.units) == 1
    u = c.units[0]
    assert (u.number, u.deck, u.rewinding_node, u.non_rewinding_node) == (
        0, "sim", "backer0", "nbacker0")
    assert u.cassette == tmp_path / "state" / "backer0.cassette"
    assert c.fuse_root == tmp_path / "dev"
    assert c.control_socket == tmp_path / "control.sock"
    assert c.transport == "auto"


def test_default_dirs_without_environment() -> None:
    c = cfg.parse_config({}, environ={})
    assert c.state_dir == Path("/var/lib/backerd")
    assert c.fuse_root == Path("/run/backerd/dev")


def test_config_file_units(tmp_path: Path) -> None:
    f = tmp_path / "b.toml"
    f.write_text(
        'state_dir = "/srv/b"\ntransport = "fuse"\nfuse_max_pages = 256\n'
        'watchdog_stall = 1800\n'
        '[[unit]]\nnumber = 2\nmode = "phe"\ncassette = "two.img"\nrealtime = true\n'
        '[[unit]]\nnumber = 5\nname = "attic VCR"\n'
    )
    c = cfg.load_config(f, environ={})
    assert [u.number for u in c.units] == [2, 5]
    assert c.units[0].cassette == Path("/srv/b/two.img")
    assert c.units[0].standard == "pal" and c.units[0].realtime
    assert c.units[1].non_rewinding_node == "nbacker5" and c.units[1].name == "attic VCR"
    assert c.fuse_max_pages == 256 and c.source == f
    assert c.watchdog_stall == 1800
    assert cfg.parse_config({}, environ={}).watchdog_stall == 300  # the default


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        ('colour = "red"\n', "colour"),
        ('[[unit]]\nmode = "xyz"\n', "unit[0].mode"),
        ('[[unit]]\nnumber = "0"\n', "unit[0].number"),
        ('[[unit]]\nnumber = true\n', "unit[0].number"),
        ('[[unit]]\n[[unit]]\nnumber = 0\n', "unit[1].number"),
        ('[[unit]]\ndeck = "lirc9"\n', "unit[0].deck"),
        ('[[unit]]\nspeed = 2\n', "unit[0].speed"),
        ('[[unit]]\nlength = "3h"\n', "unit[0].length"),
        ('[[unit]]\nnoise = "errors=lots"\n', "unit[0].noise"),
        ('transport = "usb"\n', "transport"),
        ("fuse_max_pages = 1000\n", "fuse_max_pages"),
        ("watchdog_stall = 5\n", "watchdog_stall"),
        ("watchdog_stall = 10.5\n", "watchdog_stall"),
        ("unit = 3\n", "unit"),
        ('fuse_mode = "0999"\n', "fuse_mode"),
        ("fuse_mode = 660\n", "fuse_mode"),
        ('fuse_group = "no-such-group-here"\n', "fuse_group"),
        ("fuse_owner = true\n", "fuse_owner"),
        ("fuse_owner = -1\n", "fuse_owner"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, text: str, culprit: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        cfg.load_config(f, environ={})
    assert f"{f}: {culprit}" in info.value.message
    assert "\n" not in info.value.message


def test_fuse_nodes_default_to_root_group_tape_0660(tmp_path: Path) -> None:
    try:
        tape = grp.getgrnam("tape").gr_gid
    except KeyError:
        tape = 0  # no tape group here: root's
    access = cfg.parse_config({}, environ={}).fuse_access
    assert (access.uid, access.gid, access.mode) == (0, tape, 0o660)
    f = tmp_path / "c.toml"
    f.write_text('fuse_owner = "nobody"\nfuse_group = 4242\nfuse_mode = "0640"\n')
    access = cfg.load_config(f, environ={}).fuse_access
    assert (access.uid, access.gid, access.mode) == (pwd.getpwnam("nobody").pw_uid, 4242,
                                                     0o640)


def test_config_not_toml_or_missing(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        cfg.load_config(f, environ={})
    with pytest.raises(ConfigError, match="no such configuration file"):
        cfg.load_config(tmp_path / "none.toml", environ={})


def test_overrides(tmp_path: Path) -> None:
    c = cfg.parse_config({}, environ={}).with_overrides(
        cassette=tmp_path / "c.img", fuse_root=tmp_path / "mnt", realtime=True)
    assert c.units[0].cassette == tmp_path / "c.img" and c.units[0].realtime
    assert c.fuse_root == tmp_path / "mnt"
    two = cfg.parse_config({"unit": [{"number": 0}, {"number": 1}]}, environ={})
    with pytest.raises(UsageError, match="exactly one unit"):
        two.with_overrides(cassette=tmp_path / "c.img")


# -- node handlers -----------------------------------------------------------------


class RecordingDrive:
    """A fake Drive: records calls and the thread each ran in, and catches overlap."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.threads: set[int] = set()
        self.gate = gate
        self._busy = threading.Lock()
        self.is_open = False
        self.status_calls = 0

    def _enter(self, *call: Any) -> None:
        if not self._busy.acquire(blocking=False):
            raise AssertionError("drive called concurrently")
        self.calls.append(call)
        self.threads.add(threading.get_ident())

    def open(self, rewind_on_close: bool, flags: int) -> None:
        self._enter("open", rewind_on_close, flags)
        try:
            if self.is_open:
                raise TapeError("busy", errno=errno.EBUSY)
            self.is_open = True
        finally:
            self._busy.release()

    def read(self, size: int, exact: bool = True) -> bytes:
        self._enter("read", size, exact)
        self._busy.release()
        return b"x" * size

    def write(self, data: bytes) -> int:
        self._enter("write", bytes(data))
        try:
            if self.gate is not None:
                self.gate.wait(30)  # held until the test lets go
            return len(data)
        finally:
            self._busy.release()

    def ioctl(self, cmd: int, arg: bytes, out_size: int) -> bytes:
        self._enter("ioctl", cmd)
        self._busy.release()
        if cmd == 0xBAD:
            raise ValueError("a bug below the node")
        return bytes(out_size)

    def close(self) -> None:
        self._enter("close")
        self.is_open = False
        self._busy.release()

    def status(self) -> dict[str, Any]:
        if self._busy.locked():
            raise AssertionError("status asked while a drive call runs")
        self.status_calls += 1
        return {"file": 0, "block": sum(c[0] == "write" for c in self.calls)}


@pytest.fixture(autouse=True)
def _fakes_fail_loudly() -> Iterator[None]:
    """A fake drive's assertion becomes EIO in the Unit: make it fail the test too."""
    with escaped_assertions():
        yield


def make_unit(number: int = 0, drive: RecordingDrive | None = None) -> Unit:
    uc = cfg.UnitConfig(number=number, cassette=Path(f"/nonexistent/{number}.img"))
    return Unit(uc, drive or RecordingDrive())


def test_nodes_share_the_unit_drive_and_run_off_the_loop() -> None:
    drive = RecordingDrive()
    unit = make_unit(drive=drive)
    assert set(unit.nodes) == {"backer0", "nbacker0"}

    async def main() -> None:
        n = unit.nodes["nbacker0"]
        await n.open(0)
        assert unit.open_node == "nbacker0"
        with pytest.raises(TapeError) as busy:
            await unit.nodes["backer0"].open(0)
        assert busy.value.errno == errno.EBUSY
        assert await n.write(b"abc") == 3
        assert await n.read(5, False) == b"xxxxx"
        assert unit.snapshot == {"file": 0, "block": 1}
        await n.release()
        assert unit.open_node is None

    main_thread = threading.get_ident()
    trio.run(main)
    assert [c[0] for c in drive.calls] == ["open", "open", "write", "read", "close"]
    assert drive.calls[0] == ("open", False, 0)
    assert main_thread not in drive.threads


def test_status_snapshot_is_taken_when_asked_and_never_during_a_call() -> None:
    gate = threading.Event()
    drive = RecordingDrive(gate)
    unit = make_unit(drive=drive)
    node = unit.nodes["nbacker0"]
    gate.set()

    async def main() -> None:
        await node.open(0)
        taken = drive.status_calls
        for _ in range(50):
            await node.write(b"record")
        assert drive.status_calls == taken  # serving records does not pay for status
        assert unit.snapshot == {"file": 0, "block": 50}
        assert unit.snapshot == {"file": 0, "block": 50}
        assert drive.status_calls == taken + 1
        gate.clear()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.write, b"held")
            await trio.testing.wait_all_tasks_blocked()
            assert unit.snapshot == {"file": 0, "block": 50}  # the last finished request's
            gate.set()
        assert unit.snapshot == {"file": 0, "block": 51}

    trio.run(main)


def test_rewinding_node_opens_with_rewind_on_close() -> None:
    drive = RecordingDrive()
    unit = make_unit(drive=drive)
    trio.run(unit.nodes["backer0"].open, 2)
    assert drive.calls == [("open", True, 2)]


def test_internal_error_becomes_eio() -> None:
    unit = make_unit()
    with pytest.raises(TapeError) as info:
        trio.run(unit.nodes["backer0"].ioctl, 0xBAD, b"", 0)
    assert info.value.errno == errno.EIO


def test_slow_unit_does_not_stall_another_unit_or_its_own_queue() -> None:
    """While unit 0 encodes a long write, unit 1 answers; unit 0's next request waits."""
    gate = threading.Event()
    slow_drive = RecordingDrive(gate)
    slow, fast = make_unit(0, slow_drive), make_unit(1)
    order: list[str] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            async def slow_write() -> None:
                await slow.nodes["nbacker0"].write(b"big record")
                order.append("slow write done")

            async def queued_ioctl() -> None:
                await slow.nodes["nbacker0"].ioctl(1, b"", 0)
                order.append("queued ioctl done")

            nursery.start_soon(slow_write)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(queued_ioctl)
            await fast.nodes["nbacker1"].ioctl(1, b"", 48)
            order.append("other unit answered")
            await trio.testing.wait_all_tasks_blocked()
            assert order == ["other unit answered"]
            gate.set()

    trio.run(main)
    assert order == ["other unit answered", "slow write done", "queued ioctl done"]


def test_shutdown_closes_an_open_drive() -> None:
    drive = RecordingDrive()
    closed: list[bool] = []
    uc = cfg.UnitConfig(number=0, cassette=Path("/nonexistent"))
    unit = Unit(uc, drive, on_shutdown=lambda: closed.append(True))

    async def main() -> None:
        await unit.nodes["nbacker0"].open(1)
        await unit.nodes["nbacker0"].write(b"data")
        await unit.shutdown()

    trio.run(main)
    assert [c[0] for c in drive.calls] == ["open", "write", "close"]
    assert closed == [True] and unit.open_node is None


# -- status socket -----------------------------------------------------------------


def test_status_socket_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run" / "control.sock"
    replies: list[Any] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_control, path, lambda: {"units": [{"number": 0}]})
            replies.append(await trio.to_thread.run_sync(query, path))
            replies.append(await trio.to_thread.run_sync(query, path, "frobnicate"))
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert replies[0] == {"units": [{"number": 0}]}
    assert "unknown request" in replies[1]["error"]
    assert not path.exists()  # removed on exit
    with pytest.raises(NotRunning, match="no daemon is running"):
        query(path)


def test_stale_socket_is_replaced_and_live_one_refused(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "control.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: a killed daemon's leftover

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_control, path, lambda: {"ok": True})
            with pytest.raises(Exception, match="already running"):
                await serve_control(path, lambda: {})
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_status_output_is_json_serialisable_with_paths(tmp_path: Path) -> None:
    from backerd.daemon.service import Service, TransportChoice

    c = cfg.parse_config({}, environ={"BACKERD_RUNTIME_DIR": str(tmp_path)})
    svc = Service(c, [make_unit()], TransportChoice("fuse", "test"))
    status = json.loads(json.dumps(svc.status()))
    unit = status["units"][0]
    assert unit["nodes"] == {"rewinding": f"{tmp_path}/dev/backer0",
                             "non_rewinding": f"{tmp_path}/dev/nbacker0"}
    assert unit["transport"] == "fuse" and unit["position"] == {"file": 0, "block": 0}
    cuse = Service(c, [make_unit()], TransportChoice("cuse", "test")).status()
    assert cuse["units"][0]["nodes"]["non_rewinding"] == "/dev/nbacker0"


def test_demo_offline_fallback_round_trip(capsys: pytest.CaptureFixture[str]) -> None:
    from backerd.cli.demo import offline_round_trip

    offline_round_trip("nls")
    out = capsys.readouterr().out
    assert "encoded 300000 bytes in mode nls" in out
    assert "decoded 300000 bytes: identical to the original" in out


@pytest.mark.parametrize(
    ("transport", "present", "modprobe_creates", "kind", "loads"),
    [
        ("fuse", True, False, "fuse", False),  # FUSE asked for: CUSE not even looked at
        ("auto", True, False, "cuse", False),
        ("auto", False, True, "cuse", True),  # modprobe cuse made /dev/cuse appear
        ("auto", False, False, "fuse", True),  # no CUSE to be had: the fallback
        ("cuse", True, False, "cuse", False),
        ("cuse", False, True, "cuse", True),
    ],
)
def test_transport_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str,
                          present: bool, modprobe_creates: bool, kind: str,
                          loads: bool) -> None:
    from backerd.daemon import service

    device = tmp_path / "cuse"
    if present:
        device.touch()
    loaded: list[bool] = []

    async def fake_modprobe() -> str:
        loaded.append(True)
        if modprobe_creates:
            device.touch()
            return "loaded with modprobe"
        return "modprobe cuse failed: not found"

    monkeypatch.setattr(service, "CUSE_DEVICE", device)
    monkeypatch.setattr(service, "_load_cuse_module", fake_modprobe)
    choice = trio.run(service.choose_transport,
                      cfg.parse_config({"transport": transport}, environ={}))
    assert choice.kind == kind
    assert bool(loaded) == loads
    if kind == "fuse" and transport == "auto":
        assert choice.reason == f"{device} missing (modprobe cuse failed: not found)"


def test_cuse_insisted_on_but_missing_names_the_fix(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from backerd.daemon import service
    from backerd.errors import HardwareUnavailable

    async def fake_modprobe() -> str:
        return "modprobe unavailable: No such file or directory"

    monkeypatch.setattr(service, "CUSE_DEVICE", tmp_path / "cuse")
    monkeypatch.setattr(service, "_load_cuse_module", fake_modprobe)
    with pytest.raises(HardwareUnavailable, match='set transport = "auto" to fall back'):
        trio.run(service.choose_transport, cfg.parse_config({"transport": "cuse"}, environ={}))


def test_noisy_sim_unit_reads_back_exactly_and_counts_corrections(tmp_path: Path) -> None:
    import os

    from backerd.daemon.service import open_sim_unit

    f = tmp_path / "noisy.toml"
    f.write_text(f'state_dir = "{tmp_path}"\n'
                 f'[[unit]]\ncassette = "{tmp_path / "c.cassette"}"\nmode = "nls"\n'
                 'noise = "seed=5,errors=3"\n')
    config = cfg.load_config(f, environ={}).units[0]
    assert config.noise == "seed=5,errors=3"
    unit = open_sim_unit(config)
    drive = unit.drive
    blocks = [bytes((i * 7 + j) % 256 for j in range(10240)) for i in range(12)]
    drive.open(False, os.O_RDWR)
    for b in blocks:
        drive.write(b)
    drive.close()
    drive.open(True, os.O_RDONLY)
    drive.ioctl(MTIOCTOP, mtop("MTREW"), 0)
    assert [drive.read(1 << 20) for _ in blocks] == blocks
    status = parse_mtget(drive.ioctl(MTIOCGET, b"", MTGET_SIZE))
    assert status["erreg"] & 0xFFFF > 0  # the noise was there and was corrected
    drive.close()
    trio.run(unit.shutdown)

"""mt-st, dd and cpio against the served nodes."""

from __future__ import annotations

import random
from pathlib import Path

from testkit.systemtest import Daemon, parse_mt_status, same_tree


def test_mt_status_file_and_block_numbers(daemon: Daemon, tmp_path: Path) -> None:
    status = parse_mt_status(daemon.mt(daemon.nrew, "status"))
    assert (status["file"], status["block"]) == (0, 0)
    assert {"BOT", "ONLINE"} <= status["bits"]

    blocks = tmp_path / "blocks"
    blocks.write_bytes(random.Random(5).randbytes(5 * 10240))
    for _ in range(2):  # two files of five 10 KiB blocks each
        daemon.run("dd", f"if={blocks}", f"of={daemon.nrew}", "bs=10240")
    status = parse_mt_status(daemon.mt(daemon.nrew, "status"))
    assert (status["file"], status["block"]) == (2, 0)
    assert "BOT" not in status["bits"]

    daemon.mt(daemon.nrew, "rewind")
    assert "BOT" in parse_mt_status(daemon.mt(daemon.nrew, "status"))["bits"]
    daemon.mt(daemon.nrew, "fsr", "3")
    status = parse_mt_status(daemon.mt(daemon.nrew, "status"))
    assert (status["file"], status["block"]) == (0, 3)

    daemon.mt(daemon.nrew, "fsf", "1")
    status = parse_mt_status(daemon.mt(daemon.nrew, "status"))
    assert (status["file"], status["block"]) == (1, 0)
    assert "EOF" in status["bits"]

    daemon.mt(daemon.nrew, "eod")
    status = parse_mt_status(daemon.mt(daemon.nrew, "status"))
    assert status["file"] == 2 and "EOD" in status["bits"]

    daemon.mt(daemon.nrew, "bsf", "1")  # BOT side of the last filemark: end of file 1
    status = parse_mt_status(daemon.mt(daemon.nrew, "status"))
    assert status["file"] == 1


def test_mt_tell_counts_blocks_and_filemarks(daemon: Daemon, tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.write_bytes(bytes(4 * 4096))
    daemon.run("dd", f"if={data}", f"of={daemon.nrew}", "bs=4096")  # 4 blocks + filemark
    daemon.mt(daemon.nrew, "rewind")
    assert "At block 0." in daemon.mt(daemon.nrew, "tell")
    daemon.mt(daemon.nrew, "fsf", "1")
    assert "At block 5." in daemon.mt(daemon.nrew, "tell")


def test_rewinding_node_rewinds_on_close(daemon: Daemon, tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.write_bytes(b"x" * 10240)
    daemon.run("dd", f"if={data}", f"of={daemon.rew}", "bs=10240")
    status = parse_mt_status(daemon.mt(daemon.nrew, "status"))
    assert (status["file"], status["block"]) == (0, 0) and "BOT" in status["bits"]
    daemon.run("dd", f"if={data}", f"of={daemon.nrew}", "bs=10240")
    assert parse_mt_status(daemon.mt(daemon.nrew, "status"))["file"] == 1


def test_dd_64k_round_trip(daemon: Daemon, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(random.Random(64).randbytes(1_000_000))  # 15 full blocks + a short one
    result = daemon.run("dd", f"if={src}", f"of={daemon.nrew}", "bs=64k")
    assert b"15+1 records out" in result.stderr
    daemon.mt(daemon.nrew, "rewind")
    back = tmp_path / "back.bin"
    result = daemon.run("dd", f"if={daemon.nrew}", f"of={back}", "bs=64k")
    assert b"15+1 records in" in result.stderr  # one read = one block, never merged
    assert back.read_bytes() == src.read_bytes()


def test_cpio_round_trip(daemon: Daemon, tree: Path, tmp_path: Path) -> None:
    names = "\n".join(sorted(str(p.relative_to(tree.parent)) for p in [tree, *tree.rglob("*")]))
    daemon.run("cpio", "-o", "-H", "newc", "-O", daemon.rew, input=names.encode() + b"\n",
               cwd=tree.parent)
    out = tmp_path / "out"
    out.mkdir()
    daemon.run("cpio", "-i", "-d", "-I", daemon.rew, cwd=out)
    assert same_tree(tree, out / "src") == []


def test_cpio_5120_byte_blocks(daemon: Daemon, tree: Path, tmp_path: Path) -> None:
    names = "\n".join(sorted(str(p.relative_to(tree.parent)) for p in [tree, *tree.rglob("*")]))
    daemon.run("cpio", "-o", "-B", "-H", "newc", "-O", daemon.rew,
               input=names.encode() + b"\n", cwd=tree.parent)
    out = tmp_path / "out"
    out.mkdir()
    daemon.run("cpio", "-i", "-B", "-d", "-I", daemon.rew, cwd=out)
    assert same_tree(tree, out / "src") == []


def test_drive_options_need_privilege(daemon: Daemon) -> None:
    # st: MTSETDRVBUFFER only for CAP_SYS_ADMIN (root here); anyone else gets EPERM
    daemon.mt(daemon.nrew, "stsetoptions", "two-fms")
    daemon.mt(daemon.nrew, "stclearoptions", "two-fms")
    nobody = daemon.run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "mt", "-f", daemon.nrew, "stsetoptions", "two-fms", ok=False)
    assert nobody.returncode != 0
    # FUSE nodes are root:tape 0660 and CUSE nodes root-only until udev rules say
    # otherwise, so nobody's open is refused (were it allowed, the ioctl would be)
    assert b"not permitted" in nobody.stderr or b"Permission denied" in nobody.stderr

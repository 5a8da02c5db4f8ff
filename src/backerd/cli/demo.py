"""``backerd demo``: the main job end to end on a simulated VCR, narrated.

Starts ``backerd serve`` on a fresh cassette in a temporary directory (the FUSE fallback
there, or real CUSE devices with --cuse), writes two archives with GNU tar on the
non-rewinding node, shows ``mt status``, rewinds, lists both archives, goes to end of
data, extracts and compares, then stops the daemon. When the device cannot be served
here (no FUSE/CUSE, not root, tools missing) it says why and runs an offline encode/
decode round trip instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from backerd.errors import BackerError

START_TIMEOUT = 60.0  # seconds for the daemon to come up (a hang guard)


class DemoFailed(BackerError):
    """A step of the demo did not do what it should."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", default="nhs", help="Backer mode of the cassette (default nhs)")
    parser.add_argument("--cuse", action="store_true",
                        help="serve real /dev/backer0 and /dev/nbacker0 through CUSE")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (cassette, logs) afterwards")


def say(text: str = "") -> None:
    print(text, flush=True)


def _why_not_served(cuse: bool) -> str | None:
    """None when the device can be served here, else the reason it cannot."""
    for tool in ("tar", "mt"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install mt-st tar)"
    if os.geteuid() != 0:
        return "serving the device needs root (mount/CUSE)"
    if cuse and not os.path.exists("/dev/cuse"):
        return "/dev/cuse is missing (modprobe cuse; or run without --cuse)"
    if not cuse and not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    return None


def _sample_tree(root: Path, name: str, seed: int) -> Path:
    rng = random.Random(seed)
    top = root / name
    (top / "notes").mkdir(parents=True)
    (top / "README.txt").write_text(f"{name}: backed up on a VHS cassette by backerd\n")
    for i in range(3):
        (top / "notes" / f"note{i}.txt").write_text(f"note {i} of {name}\n" * (50 * (i + 1)))
    (top / "data.bin").write_bytes(rng.randbytes(200_000 + 50_000 * seed))
    return top


class Demo:
    def __init__(self, work: Path, mode: str, cuse: bool) -> None:
        self.work = work
        self.mode = mode
        self.cuse = cuse
        self.log = work / "backerd.log"
        self.env = dict(os.environ, BACKERD_STATE_DIR=str(work / "state"),
                        BACKERD_RUNTIME_DIR=str(work / "run"))
        self.env.pop("NOTIFY_SOCKET", None)
        self.config = work / "backerd.toml"
        transport = "cuse" if cuse else "fuse"
        self.config.write_text(f'transport = "{transport}"\n[[unit]]\nmode = "{mode}"\n')
        self.cassette = work / "demo.cassette"
        self.proc: subprocess.Popen[bytes] | None = None
        self.nodes: dict[str, str] = {}

    def backerd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "backerd", *args]

    def sh(self, *cmd: str | Path, show: bool = True) -> str:
        argv = [str(c) for c in cmd]
        shown = " ".join("backerd" if a == sys.executable else a for a in argv)
        shown = shown.replace("backerd -m backerd", "backerd")
        say(f"$ {shown}")
        result = subprocess.run(argv, capture_output=True, text=True, env=self.env,
                                cwd=self.work)
        output = (result.stdout + result.stderr).rstrip()
        if show and output:
            say("  " + output.replace("\n", "\n  "))
        if result.returncode != 0:
            raise DemoFailed(f"{shown} failed with exit status {result.returncode}")
        return result.stdout

    @contextlib.contextmanager
    def daemon(self) -> Iterator[None]:
        from backerd.daemon.control import NotRunning, query

        argv = self.backerd("serve", "--config", str(self.config), "--cassette",
                            str(self.cassette), "--fuse-root", str(self.work / "dev"))
        say(f"$ backerd serve --cassette {self.cassette} --fuse-root {self.work / 'dev'} &")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if self.proc.poll() is not None:
                    raise DemoFailed("backerd serve stopped at start:\n" + self.log.read_text())
                with contextlib.suppress(NotRunning):
                    status = query(Path(self.env["BACKERD_RUNTIME_DIR"]) / "control.sock")
                    self.nodes = status["units"][0]["nodes"]
                    if all(os.path.exists(p) for p in self.nodes.values()):
                        break
                if time.monotonic() > deadline:
                    raise DemoFailed("backerd serve did not come up:\n" + self.log.read_text())
                time.sleep(0.05)
            say("  " + self.log.read_text().rstrip().replace("\n", "\n  "))
            yield
        finally:
            self.stop()

    def stop(self) -> None:
        if self.proc is None:
            return
        say("$ kill -TERM <backerd>")
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = -9
        self.proc = None
        root = self.work / "dev"
        if os.path.ismount(root):
            subprocess.run(["umount", "-l", str(root)], check=False)
        tail = self.log.read_text().rstrip().splitlines()[-2:]
        say("  " + "\n  ".join(tail))
        if rc != 0:
            raise DemoFailed(f"backerd serve exited with status {rc}")
        say(f"  backerd exited with status {rc}")

    def run(self) -> None:
        docs = _sample_tree(self.work, "documents", 1)
        photos = _sample_tree(self.work, "photos", 2)
        say(f"A fresh simulated cassette, mode {self.mode}; two directories to back up.\n")
        with self.daemon():
            n = self.nodes["non_rewinding"]
            say(f"\nThe non-rewinding node is {n}; write two archives, one after the other:")
            self.sh("tar", "-cvf", n, "-C", self.work, docs.name)
            self.sh("tar", "-cvf", n, "-C", self.work, photos.name)
            self.sh("mt", "-f", n, "status")
            say("\nRewind and list both archives (tar stops inside an archive: mt fsf 1 "
                "steps over its filemark):")
            self.sh("mt", "-f", n, "rewind")
            self.sh("tar", "-tvf", n)
            self.sh("mt", "-f", n, "fsf", "1")
            self.sh("tar", "-tvf", n)
            say("\nGo to end of data, as before appending another archive:")
            self.sh("mt", "-f", n, "eod")
            self.sh("mt", "-f", n, "status")
            say("\nRestore the second archive and compare it with the original:")
            self.sh("mt", "-f", n, "rewind")
            self.sh("mt", "-f", n, "fsf", "1")
            restore = self.work / "restore"
            restore.mkdir()
            self.sh("tar", "-xf", n, "-C", restore)
            self.sh("diff", "-r", photos, restore / photos.name)
            say("  identical")
            say("\nWhat the daemon reports:")
            self.sh(*self.backerd("status"))
        say("\nThe cassette after the session:")
        self.sh(*self.backerd("cassette", "info", str(self.cassette)))


def offline_round_trip(mode: str) -> None:
    """Encode sample bytes into a raw Backer stream and decode them back, in-process."""
    from backerd.format.player import Player
    from backerd.format.recorder import Recorder

    data = random.Random(7).randbytes(300_000)
    recorder = Recorder(mode)
    raw = recorder.write(data) + recorder.close()
    say(f"encoded {len(data)} bytes in mode {mode} into {recorder.fields_emitted} fields "
        f"({len(raw)} raw bytes)")
    player = Player(mode)
    first, last = player.feed(raw), player.finish()
    back = first.data + last.data
    if back != data:
        raise DemoFailed("the offline round trip did not give the original bytes back")
    say(f"decoded {len(back)} bytes: identical to the original")


def run(args: argparse.Namespace) -> int:
    reason = _why_not_served(args.cuse)
    if reason is not None:
        say(f"backerd demo: the tape device cannot be served here: {reason}.")
        say("Running the offline encode/decode round trip instead.\n")
        offline_round_trip(args.mode)
        return 0
    work = Path(tempfile.mkdtemp(prefix="backerd-demo-"))
    try:
        Demo(work, args.mode, args.cuse).run()
        say("\nDemo finished: two archives written, listed, found again and restored "
            "byte-exact.")
    finally:
        if args.keep:
            say(f"(kept {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0

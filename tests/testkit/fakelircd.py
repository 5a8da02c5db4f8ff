"""A fake lircd on a unix socket: lircd's reply packets, broadcasts and SIGHUP packets.

Whatever it transmits goes to a ``Buttons`` object: the simulated deck of the LIRC
session tests, or a log of IR codes while ``serve --emulate`` moves the emulated VCR.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Protocol


class Buttons(Protocol):
    KEYS: tuple[str, ...]

    def button(self, key: str) -> bool:
        """Press ``key``; False if the deck has no such button."""
        ...


class FakeLircd:
    """lircd on a unix socket, for one remote; chatty like the real one.

    Every SEND_ONCE of a key the ``vcr`` knows presses that button (``vcr.button``);
    LIST answers the ``vcr.KEYS``. Broadcasts and SIGHUP packets come between replies.
    """

    def __init__(self, path: Path, vcr: Buttons, remote: str = "vcr") -> None:
        self.path, self.vcr, self.remote = path, vcr, remote
        self.commands: list[str] = []
        self.drop_after: int | None = None  # close the connection after this many commands
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(4)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # a client gone: its thread ends
            self._talk(conn)

    def _talk(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                command = line.decode()
                with self._lock:  # one deck, whichever client presses its buttons
                    self.commands.append(command)
                    answer = self._answer(command)
                conn.sendall(answer)
                if self.drop_after is not None and len(self.commands) >= self.drop_after:
                    self.drop_after = None
                    return  # lircd restarted

    def _answer(self, command: str) -> bytes:
        words = command.split()
        ok, data = False, [f'unknown command: "{command}"']
        if len(words) in (3, 4) and words[0] == "SEND_ONCE":
            if words[1] != self.remote:
                data = [f'unknown remote: "{words[1]}"']
            elif self.vcr.button(words[2]):
                ok, data = True, []
            else:
                data = [f'unknown command: "{words[2]}"']
        if len(words) == 2 and words[0] == "LIST":
            if words[1] == self.remote:
                ok, data = True, [f"{i:016x} {k}" for i, k in enumerate(self.vcr.KEYS)]
            else:
                data = [f'unknown remote: "{words[1]}"']
        n = len(self.commands)
        chatter = b"000000000000a1b2 00 KEY_VOLUMEUP tv\n" if n % 3 == 0 else b""
        chatter += b"BEGIN\nSIGHUP\nEND\n" if n % 5 == 0 else b""
        reply = ["BEGIN", command, "SUCCESS" if ok else "ERROR"]
        if data:
            reply += ["DATA", str(len(data)), *data]
        reply.append("END")
        body = "".join(x + "\n" for x in reply).encode()
        # A broadcast may arrive before the reply or right after it.
        return chatter + body if n % 2 else body + chatter

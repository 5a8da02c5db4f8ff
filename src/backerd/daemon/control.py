"""The status socket: a unix stream socket under the runtime directory, JSON replies.

Protocol: the client sends one line and the daemon answers one JSON object followed by
a newline and closes the connection. The line is ``status``, a JSON object naming a
``request`` and its arguments (``{"request": "label", ...}``), or words whose first one
names the request (``deck ready 0``, handed over as ``{"request": "deck", "args":
["ready", "0"]}``). Requests other than status are a table the service passes in; since
they change what the daemon does, only root and the daemon's own user or group may send
them (SO_PEERCRED). The server side is a trio task; the client side (``query``) is plain
blocking sockets, and trio is imported only by the server, so ``backerd status`` starts
fast.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backerd.errors import BackerError, HardwareUnavailable, UsageError

if TYPE_CHECKING:
    import trio

REQUEST_LIMIT = 4096
CLIENT_TIMEOUT = 10.0  # seconds
_SERVER_READ_TIMEOUT = 5.0

# A request handler gets the words after its name and answers a JSON-able dict.
RequestHandler = Callable[[list[str]], dict[str, Any]]


class NotRunning(BackerError):
    """No daemon answers on the control socket."""


def _socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(path))
        except OSError:
            return False
        return True


Requests = Mapping[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]]


def word_request(handler: RequestHandler) -> Callable[[dict[str, Any]], Awaitable[dict]]:
    """A request table entry for a handler of words (``deck ready 0``)."""

    async def answer(body: dict[str, Any]) -> dict[str, Any]:
        args = body.get("args", [])
        return handler([str(a) for a in args] if isinstance(args, list) else [])

    return answer


def _peer_may_act(sock: Any) -> bool:
    """True for root and the daemon's own user or group (peer credentials)."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return False
    _pid, uid, gid = struct.unpack("3i", raw)
    return uid in (0, os.getuid()) or gid == os.getgid()


def _request_body(command: str) -> dict[str, Any] | None:
    """The request a line names: a JSON object, or words; None for anything else."""
    if command.startswith("{"):
        try:
            body = json.loads(command)
        except ValueError:
            return None
        return body if isinstance(body, dict) and isinstance(body.get("request"), str) else None
    words = command.split()
    return {"request": words[0], "args": words[1:]} if words else None


async def _answer(command: str, status: Callable[[], dict[str, Any]],
                  requests: Requests, may_act: Callable[[], bool]) -> dict[str, Any]:
    if command in ("", "status"):
        return status()
    body = _request_body(command)
    if body is not None and body["request"] in requests:
        if not may_act():
            return {"error": f"not allowed to send {body['request']!r} requests (only root "
                             "and the daemon's user or group may)"}
        try:
            return await requests[body["request"]](body)
        except BackerError as exc:
            return {"error": exc.message, "exit_status": exc.exit_status}
    known = ", ".join(["status", *sorted(requests)])
    return {"error": f"unknown request {command[:80]!r} (known: {known})"}


async def _handle(stream: trio.SocketStream, status: Callable[[], dict[str, Any]],
                  requests: Requests) -> None:
    import trio

    async with stream:
        request = b""
        with trio.move_on_after(_SERVER_READ_TIMEOUT):
            while b"\n" not in request and len(request) < REQUEST_LIMIT:
                chunk = await stream.receive_some(REQUEST_LIMIT)
                if not chunk:
                    break
                request += chunk
        line, newline, _ = request.partition(b"\n")
        if len(line) > REQUEST_LIMIT or (not newline and len(request) >= REQUEST_LIMIT):
            reply: dict[str, Any] = {  # never cut to a shorter, different request
                "error": f"request longer than {REQUEST_LIMIT} bytes: refused",
                "exit_status": UsageError.exit_status}
        else:
            command = line.strip().decode("utf-8", "replace")
            reply = await _answer(command, status, requests,
                                  lambda: _peer_may_act(stream.socket))
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(json.dumps(reply, default=str).encode() + b"\n")


async def ensure_not_running(path: Path) -> None:
    """Refuse to start a second daemon on the same runtime directory."""
    import trio

    if (path.exists() or path.is_symlink()) and await trio.to_thread.run_sync(
        _socket_answers, path
    ):
        raise HardwareUnavailable(
            f"another backerd is already running (its control socket {path} answers)",
            errno=errno.EBUSY,
        )


async def serve_control(
    path: Path,
    status: Callable[[], dict[str, Any]],
    requests: Requests | None = None,
    *,
    group: int | None = None,
    task_status: trio.TaskStatus[None] | None = None,
) -> None:
    """Answer requests on ``path`` until cancelled; remove the socket on exit. With
    ``group``, only root and that group may connect (0660), as to the tape nodes."""
    import trio

    path.parent.mkdir(parents=True, exist_ok=True)
    await ensure_not_running(path)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # stale: left by a daemon that was killed
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(str(path))
        if group is None:
            os.chmod(path, 0o666)  # status is read-only information: anyone may ask
        else:
            os.chmod(path, 0o660)
            try:
                os.chown(path, -1, group)
            except PermissionError:  # no CAP_CHOWN and not a member: root only, then
                logging.getLogger("backerd").warning(
                    "control socket %s: cannot give it group %d; only root may connect",
                    path, group)
        sock.listen(16)
    except OSError as exc:
        sock.close()
        raise HardwareUnavailable(f"cannot create control socket {path}: {exc.strerror}") from None
    listener = trio.SocketListener(sock)
    try:
        if task_status is not None:
            task_status.started()
        await trio.serve_listeners(lambda s: _handle(s, status, requests or {}), [listener])
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock.close()


def query(path: Path, request: str = "status", *, timeout: float = CLIENT_TIMEOUT) -> Any:
    """Ask the daemon behind ``path``; return its decoded JSON reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise NotRunning(f"no daemon is running (nothing answers on {path})") from None
        except PermissionError:
            raise NotRunning(f"not allowed to connect to {path}") from None
        except OSError as exc:  # a directory, a path under a file, not a socket
            raise NotRunning(f"no daemon answers on {path}: {exc.strerror}") from None
        try:
            s.sendall(request.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            raise NotRunning(f"the daemon did not answer on {path} within {timeout:g} s") from None
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        raise NotRunning(f"the daemon sent a malformed answer on {path}") from None


class RequestFailed(BackerError):
    """The daemon refused a request; carries the daemon's exit status."""


def ask(path: Path, request: dict[str, Any], *, timeout: float = CLIENT_TIMEOUT) -> Any:
    """Send a JSON request; its reply, or RequestFailed with the daemon's message."""
    reply = query(path, json.dumps(request), timeout=timeout)
    if isinstance(reply, dict) and "error" in reply:
        exc = RequestFailed(str(reply["error"]))
        status = reply.get("exit_status")
        if isinstance(status, int):
            exc.exit_status = status
        raise exc
    return reply

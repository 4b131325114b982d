"""The control channel: commands reach a running ``serve`` over a Unix socket.

Usage::

    path = socket_path(repo_path, cfg.server.control_socket)
    status = request(path, "status")                 # NoServer when none runs
    request(path, "republish", {"within_ns": n})     # ControlError: the server's one-line error

Protocol: one request per connection. The client sends one JSON object on one line,
``{"cmd": NAME, "args": {...}}``; the server answers one line, ``{"ok": true, "result": ...}``
or ``{"ok": false, "error": "one line"}``, and closes. The same framing (with an ``id``) runs
between the supervisor and each of its processes (``server/channel.py``).

Rules: the socket is made by the supervisor, mode 0660 (the repository's group may use it), at
``control.sock`` in the repository unless the config says otherwise; its path must fit the
kernel's 107 bytes; a socket file nobody answers on is stale and replaced, one somebody answers
on means a server runs already.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from pathlib import Path
from typing import Any, Final

from ipmirror.errors import Conflict, InvalidInput, IpmirrorError

MAX_PATH: Final = 107  # sun_path is 108 bytes with its NUL
MAX_LINE: Final = 1 << 20
DEFAULT_NAME: Final = "control.sock"


class NoServer(IpmirrorError):
    """No server answers on the control socket."""


class ControlError(IpmirrorError):
    """The server answered a request with an error."""


def socket_path(repo: Path, configured: str = "") -> Path:
    """The control socket of the repository at ``repo`` (``configured`` relative to it)."""
    p = repo / (configured or DEFAULT_NAME)
    if len(os.fsencode(p)) > MAX_PATH:
        raise InvalidInput(f"control socket path {str(p)!r} is longer than {MAX_PATH} bytes; set "
                           "a shorter one with 'ipmirror config set server.control_socket PATH'")
    return p


def encode(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except ValueError:
        raise InvalidInput("control message is not JSON") from None
    if not isinstance(obj, dict):
        raise InvalidInput("control message is not a JSON object")
    return obj


def listen(path: Path) -> socket.socket:
    """The listening control socket at ``path`` (mode 0660); Conflict if a server answers there."""
    with contextlib.suppress(NoServer):
        request(path, "ping", timeout=2)
        raise Conflict(f"a server is running already on this repository (control socket {path})")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # stale: nobody answered
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)
    try:
        sock.bind(os.fsencode(path))
        os.chmod(path, 0o660)
        sock.listen(64)
    except OSError as e:
        sock.close()
        raise InvalidInput(f"cannot make the control socket {path}: {e.strerror}") from None
    finally:
        os.umask(old)
    sock.setblocking(False)
    return sock


def request(path: Path, cmd: str, args: dict[str, Any] | None = None, timeout: float = 60) -> Any:
    """Send one command to the server on ``path``; its result. NoServer if none answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(os.fsencode(path))
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK):
                raise NoServer(f"no server is running (no answer on {path})") from None
            raise IpmirrorError(f"cannot reach the server on {path}: {e.strerror}") from None
        sock.sendall(encode({"cmd": cmd, "args": args or {}}))
        buf = b""
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise NoServer(f"the server on {path} closed the connection without an answer")
            buf += chunk
            if len(buf) > MAX_LINE:
                raise IpmirrorError("control answer too long")
    except TimeoutError:
        raise IpmirrorError(f"the server on {path} did not answer within {timeout:g}s") from None
    finally:
        sock.close()
    reply = decode(buf.split(b"\n", 1)[0])
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error", "failed")))
    return reply.get("result")

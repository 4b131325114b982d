"""A child process's end of its channel to the supervisor (a socketpair, JSON lines).

Usage (in a worker or the service process, on its event loop)::

    ch = Channel(sock, {"status": status}, on_close=stop.set)
    await ch.start()
    ch.event("ready")          # tells the supervisor this process is serving

The supervisor sends ``{"id": N, "cmd": NAME, "args": {...}}``; each request runs as its own
task (a long command never holds up ``status``) and is answered ``{"id": N, "ok": ...}``.
End of file means the supervisor is gone: ``on_close`` runs, and the process stops rather
than outlive it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any

from ipmirror.errors import IpmirrorError
from ipmirror.server.control import MAX_LINE, decode, encode
from ipmirror.server.plan import Command

log = logging.getLogger("ipmirror.serve")


class Channel:
    def __init__(self, sock: socket.socket, handlers: Mapping[str, Command],
                 on_close: Callable[[], None]) -> None:
        self.sock = sock
        self.handlers = handlers
        self.on_close = on_close
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        reader, self._writer = await asyncio.open_unix_connection(sock=self.sock, limit=MAX_LINE)
        self._task = asyncio.create_task(self._read(reader))

    def event(self, name: str, **data: Any) -> None:
        if self._writer is not None:
            self._writer.write(encode({"event": name, **data}))

    async def close(self) -> None:
        for t in (self._task, *self._requests):
            if t is not None:
                t.cancel()
        if self._writer is not None:
            self._writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                t = asyncio.create_task(self._answer(line))
                self._requests.add(t)
                t.add_done_callback(self._requests.discard)
        except (ConnectionError, ValueError):
            pass
        self.on_close()

    async def _answer(self, line: bytes) -> None:
        rid: object = None
        try:
            msg = decode(line)
            rid = msg.get("id")
            cmd = str(msg.get("cmd"))
            handler = self.handlers.get(cmd)
            if handler is None:
                raise IpmirrorError(f"unknown command {cmd!r}")
            args = msg.get("args") or {}
            reply = {"id": rid, "ok": True, "result": await handler(args)}
        except IpmirrorError as e:
            reply = {"id": rid, "ok": False, "error": str(e)}
        except Exception as e:
            log.exception("control command failed")
            reply = {"id": rid, "ok": False, "error": f"internal error: {type(e).__name__}: {e}"}
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(encode(reply))

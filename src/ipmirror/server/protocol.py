"""The HTTP connection of a worker: aiohttp's protocol with limits for hostile clients.

Usage (server/worker.py)::

    await GuardedSite(runner, sock, header_timeout=10.0).start()

Rules (docs/design.md, "Gateway limits"):
1. Headers in time: a connection must deliver a complete request head within ``header_timeout``
   seconds of connecting, or of the first byte of a following request, or it is closed (slow
   or partial headers hold no connection for long). Idle keep-alive connections are aiohttp's
   ``keepalive_timeout``'s business; bodies and responses under way are not timed here.
2. Bounded write buffers: the transport's high-water mark is ``WRITE_HIGH``, so a response
   writer waits (aiohttp's ``drain``) once that much is queued for a client that does not read:
   a stalled reader pins the piece being written (one block, at most ~1 MiB) and no more.
3. Memory given back: a worker allocates from one malloc arena (``one_arena``), and a closed
   connection schedules (at most once a second) a garbage collection, for a connection cut
   mid-write leaves its block in a cycle (frames, traceback), then glibc's ``malloc_trim``.
   Without these, blocks read on the thread pool stay in per-thread arenas whose free tops
   ``malloc_trim`` does not touch, below the trim threshold ``cli/common.tune_malloc`` raises
   for ``add`` (measured: 200 stalled readers of a 16 MB file left a worker ~215 MB larger for
   good; now it is back within a few MB a second after they leave).
4. A malformed request (a 4xx from the parser) gets a short fixed answer that never repeats what
   was received, is logged as one line without a traceback, and closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import socket
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

WRITE_HIGH = 64 << 10
WRITE_LOW = 16 << 10
log = logging.getLogger("ipmirror.serve")


M_ARENA_MAX = -8


def one_arena() -> None:
    """Make every thread of this process allocate from glibc's main arena (rule 3); call before
    the thread pool starts. Does nothing where malloc is not glibc's."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)


class Trimmer:
    """Collects garbage cycles and runs ``malloc_trim(0)`` a second after it was asked to, at
    most once a second."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float = 1.0) -> None:
        self._loop = loop
        self._delay = delay
        self._handle: asyncio.TimerHandle | None = None
        self._trim: Any = None
        with contextlib.suppress(OSError, AttributeError):
            self._trim = ctypes.CDLL(None).malloc_trim  # glibc only

    def soon(self) -> None:
        if self._handle is None and self._trim is not None:
            self._handle = self._loop.call_later(self._delay, self._run)

    def _run(self) -> None:
        self._handle = None
        gc.collect()  # a connection cut mid-write leaves its block in a cycle (frames, traceback)
        self._trim(0)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class GuardedHandler(RequestHandler):
    """One connection (rules 1-4)."""

    def __init__(self, manager: web.Server, *, header_timeout: float, trimmer: Trimmer | None = None,
                 **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._trimmer = trimmer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if isinstance(transport, asyncio.WriteTransport):
            transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)
        if self._trimmer is not None:
            self._trimmer.soon()

    def data_received(self, data: bytes) -> None:
        n = self._request_count
        super().data_received(data)
        if self._request_count > n:  # a request head is complete
            self._disarm()
        elif data and self._payload_parser is None and not self._request_in_progress:
            self._arm()  # bytes of a request head: it must be complete in time

    def _arm(self) -> None:
        if self._header_timer is None and self._header_timeout > 0:
            self._header_timer = self._loop.call_later(self._header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self._request_in_progress and not self._messages:
            self.force_close()

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        what = type(exc).__name__ if exc is not None else "bad request"
        log.info("malformed request from %s: %s %s", request.remote or "-", status, what)
        if request.writer.output_size > 0:
            raise ConnectionError("response already under way")
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        resp = web.Response(status=status, text=f"{status} {phrase}\n")
        resp.force_close()
        return resp


class GuardedSite(web.SockSite):
    """``web.SockSite`` whose connections are :class:`GuardedHandler`."""

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, *, header_timeout: float,
                 **kwargs: Any) -> None:
        super().__init__(runner, sock, **kwargs)
        self._header_timeout = header_timeout
        self._trimmer: Trimmer | None = None

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        timeout = self._header_timeout
        trimmer = self._trimmer = Trimmer(loop)

        def factory() -> GuardedHandler:
            return GuardedHandler(server, loop=loop, header_timeout=timeout, trimmer=trimmer,
                                  **server._kwargs)

        self._server = await loop.create_server(factory, sock=self._sock, backlog=self._backlog)

    async def stop(self) -> None:
        if self._trimmer is not None:
            self._trimmer.cancel()
        await super().stop()

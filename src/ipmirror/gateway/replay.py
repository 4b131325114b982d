"""Replayed answers: a plain ``200`` for a small immutable file, kept so that the next plain
request for the same URL skips the general path (negotiation, path resolution, header assembly)
and aiohttp's header handling: the status line and headers are serialized once per URL.

Usage::

    app[REPLAY] = Replay()
    resp = app[REPLAY].answer(request, backend)       # first thing in the content handler
    app[REPLAY].remember(request, cid, size, headers)  # by the general path, as it answers

Rules:

1. Only what the general path would answer identically is replayed: ``/ipfs/`` (content under a
   CID never changes), GET or HEAD, no query, none of ``Range``, ``If-None-Match``, ``If-Range``
   or ``Cache-Control`` in the request, an ``Accept`` that negotiates to the plain response, and a
   file that is one raw block held in the store. Its bytes are read from the store on every
   request (microseconds) through the backend, which checks them against their hash
   (store/verified.py); a block gone since (GC) or found damaged sends the request down the
   general path (which answers 500 for a damaged one) and drops the entry: nothing here ever
   holds or replays a block's bytes.
2. The headers are the ones the general path built for this very URL (``remember`` is called by
   it, keyed by the raw request path, which determines ``X-Ipfs-Path``), plus what the error
   middleware and aiohttp add to every such response: CORS, ``Vary``, ``Content-Length``,
   ``Server`` and a ``Date`` (formatted once a second).
3. ``serve`` puts :func:`replay_first` in front of the application, so a replay skips aiohttp's
   routing and middlewares too; the content handler asks again (apps served otherwise).
4. A keep-alive HTTP/1.1 request gets a :class:`Prebuilt` answer: the remembered head, the date
   and the body go out in one ``writelines`` (with uvloop a ``writev``: the body is not copied
   again). Other requests (HTTP/1.0, ``Connection: close``) get an ordinary ``web.Response`` with
   the same headers, so aiohttp writes their ``Connection`` header as usual.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11

from ipmirror.codec.cid import CID, RAW
from ipmirror.errors import Corrupt, InvalidInput
from ipmirror.gateway.backend import Backend
from ipmirror.gateway.headers import decorate
from ipmirror.gateway.negotiate import plain_accept

_SKIP = ("Range", "If-None-Match", "If-Range", "Cache-Control", "Expect")
_DRAIN_ABOVE: Final = 1 << 16  # bytes queued in the transport before a replay waits for the client


class _Clock:
    """``Date: …\\r\\n\\r\\n`` (the end of the head), formatted once a second."""

    second = -1
    line = b""

    @classmethod
    def date_end(cls) -> bytes:
        s = int(time.time())
        if s != cls.second:
            cls.line = f"Date: {email.utils.formatdate(s, usegmt=True)}\r\n\r\n".encode()
            cls.second = s
        return cls.line


class Prebuilt(web.StreamResponse):
    """A complete small answer written at once: ``head`` (status line and headers but Date, each
    ended by CRLF), the Date line, and ``body`` unless the request is HEAD. Always keep-alive:
    only used for keep-alive HTTP/1.1 requests."""

    def __init__(self, head: bytes, body: bytes, send_body: bool) -> None:
        super().__init__(status=200)
        self._head = head
        self._body_bytes = body if send_body else b""
        self._sent = 0
        self._done = False

    @property
    def prepared(self) -> bool:
        return self._done

    @property
    def keep_alive(self) -> bool:
        return True

    @property
    def body_length(self) -> int:
        return self._sent  # like aiohttp's: the bytes written, headers included

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._done:
            return None
        self._done = True
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        date = _Clock.date_end()
        body = self._body_bytes
        self._sent = len(self._head) + len(date) + len(body)
        if body and _WRITEV.get(type(transport), False):
            transport.writelines((self._head, date, body))
        else:
            transport.write(b"".join((self._head, date, body)))
        if transport.get_write_buffer_size() > _DRAIN_ABOVE:
            await request.writer.drain()
        return None

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        raise RuntimeError("a Prebuilt response is complete")

    async def write_eof(self, data: bytes = b"") -> None:
        return None


# transports whose writelines hands the buffers to the kernel as they are (uvloop: writev);
# asyncio's joins them (3.11) or had bugs doing otherwise (3.12 before 3.12.9)
_WRITEV: dict[type, bool] = {}


def _note_transport(transport: object) -> None:
    t = type(transport)
    if t not in _WRITEV:
        _WRITEV[t] = t.__module__.startswith("uvloop")


class _Entry:
    __slots__ = ("cid", "head", "headers", "size")

    def __init__(self, cid: CID, size: int, headers: dict[str, str]) -> None:
        self.cid = cid
        self.size = size
        self.headers = headers
        self.head: bytes | None = None  # serialized on the first replay


class Replay:
    """Answers by raw request path below ``/ipfs/``; at most ``max_entries`` (oldest dropped)."""

    def __init__(self, max_entries: int = 16384) -> None:
        self._max = max_entries
        self._items: dict[str, _Entry] = {}

    @staticmethod
    def _eligible(request: web.BaseRequest) -> bool:
        """A plain request (rule 1; that the path is below ``/ipfs/`` is checked by ``remember``,
        so ``answer`` works before routing too)."""
        if request.method not in ("GET", "HEAD") or request.query_string:
            return False
        h = request.headers
        if any(k in h for k in _SKIP):
            return False
        accept = h.getall("Accept", [])
        if not accept:
            return True
        try:
            return plain_accept(tuple(accept)).format == ""
        except InvalidInput:  # the general path answers that (406)
            return False

    def answer(self, request: web.BaseRequest, backend: Backend) -> web.StreamResponse | None:
        """The replayed response, or None (not eligible, not seen, or the block is gone)."""
        if not self._items or not self._eligible(request):
            return None
        e = self._items.get(request.raw_path)
        if e is None:
            return None
        try:
            body = backend.get_stored(e.cid)
        except Corrupt:
            body = None
        if body is None or len(body) != e.size:
            self._items.pop(request.raw_path, None)
            return None
        if request.version != HttpVersion11 or not request.keep_alive:
            resp = web.Response(body=body, headers={**e.headers, "X-Ipfs-Path": request.path})
            decorate(request, resp)  # before routing no middleware does it (it does no harm twice)
            return resp
        if e.head is None:
            try:
                e.head = _serialize(request, e.headers, len(body))
            except ValueError:  # a header aiohttp would refuse: the general path says so
                return None
            _note_transport(request.transport)
        return Prebuilt(e.head, body, request.method != "HEAD")

    def remember(self, request: web.Request, cid: CID, size: int, headers: dict[str, str]) -> None:
        """Keep the general path's headers for a plain 200 it is sending from memory."""
        if cid.codec != RAW or request.match_info.get("ns") != "ipfs" or not self._eligible(request):
            return
        key = request.raw_path
        if key not in self._items and len(self._items) >= self._max:
            del self._items[next(iter(self._items))]
        self._items[key] = _Entry(cid, size, dict(headers))


def _serialize(request: web.BaseRequest, headers: dict[str, str], size: int) -> bytes:
    """``HTTP/1.1 200 OK`` and the headers the general path's answer has, but Date."""
    resp = web.Response(headers={**headers, "X-Ipfs-Path": request.path})
    decorate(request, resp)  # CORS and Vary, as the error middleware adds them
    h = resp.headers
    h["Content-Length"] = str(size)
    h.setdefault("Content-Type", "application/octet-stream")
    h.setdefault("Server", SERVER_SOFTWARE)
    lines = ["HTTP/1.1 200 OK\r\n"]
    for k, v in h.items():
        if k.lower() in ("date", "connection", "transfer-encoding"):
            continue
        if "\r" in k or "\n" in k or "\r" in v or "\n" in v:
            raise ValueError(f"newline in header {k!r}")
        lines.append(f"{k}: {v}\r\n")
    return "".join(lines).encode("utf-8")


REPLAY: web.AppKey[Replay] = web.AppKey("replay", Replay)


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def replay_first(replay: Replay, backend: Backend, handler: Handler) -> Handler:
    """``handler`` (the server's: aiohttp's routing, middlewares, the application) preceded by
    ``replay``: a replayed answer skips routing and the middleware chain (~10% of its CPU).

    Usage (once the runner is set up, before the site starts)::

        runner.server.request_handler = replay_first(app[REPLAY], backend, runner.server.request_handler)
    """
    answer = replay.answer

    async def first(request: web.BaseRequest) -> web.StreamResponse:
        resp = answer(request, backend)
        return resp if resp is not None else await handler(request)

    return first

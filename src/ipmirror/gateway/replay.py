"""Replayed answers: the headers of a plain ``200`` for a small immutable file, kept so that the
next plain request for the same URL skips the general path (negotiation, path resolution, header
assembly): ~15% of a small file's CPU.

Usage::

    app[REPLAY] = Replay()
    resp = app[REPLAY].answer(request, backend)       # first thing in the content handler
    app[REPLAY].remember(request, cid, size, headers)  # by the general path, as it answers

Rules:

1. Only what the general path would answer identically is replayed: ``/ipfs/`` (content under a
   CID never changes), GET or HEAD, no query, none of ``Range``, ``If-None-Match``, ``If-Range``
   or ``Cache-Control`` in the request, an ``Accept`` that negotiates to the plain response, and a
   file that is one raw block held in the store. Its bytes are read from the store on every
   request (microseconds); a block gone since (GC) sends the request down the general path.
2. The headers are the ones the general path built for this very URL (``remember`` is called by
   it), with ``X-Ipfs-Path`` set per request; the error middleware then adds CORS and ``Vary``
   as it does to every response.
"""

from __future__ import annotations

from aiohttp import web

from ipmirror.codec.cid import CID, RAW
from ipmirror.gateway.backend import Backend
from ipmirror.gateway.common import plain_accept

_SKIP = ("Range", "If-None-Match", "If-Range", "Cache-Control")


class Replay:
    """Headers by raw request path below ``/ipfs/``; at most ``max_entries`` (oldest dropped)."""

    def __init__(self, max_entries: int = 16384) -> None:
        self._max = max_entries
        self._items: dict[str, tuple[CID, int, dict[str, str]]] = {}

    @staticmethod
    def _eligible(request: web.Request) -> bool:
        if request.method not in ("GET", "HEAD") or request.query_string:
            return False
        if request.match_info.get("ns") != "ipfs":
            return False
        h = request.headers
        if any(k in h for k in _SKIP):
            return False
        accept = h.getall("Accept", [])
        if not accept:
            return True
        try:
            return plain_accept(tuple(accept)).format == ""
        except web.HTTPException:  # the general path answers that (406)
            return False

    def answer(self, request: web.Request, backend: Backend) -> web.Response | None:
        """The replayed response, or None (not eligible, not seen, or the block is gone)."""
        if not self._items or not self._eligible(request):
            return None
        entry = self._items.get(request.match_info.get("rest", ""))
        if entry is None:
            return None
        cid, size, headers = entry
        body = backend.get_stored(cid)
        if body is None or len(body) != size:
            return None
        h = headers.copy()
        h["X-Ipfs-Path"] = request.path
        return web.Response(body=body, headers=h)

    def remember(self, request: web.Request, cid: CID, size: int, headers: dict[str, str]) -> None:
        """Keep the general path's headers for a plain 200 it is sending from memory."""
        if cid.codec != RAW or not self._eligible(request):
            return
        key = request.match_info.get("rest", "")
        if key not in self._items and len(self._items) >= self._max:
            del self._items[next(iter(self._items))]
        self._items[key] = (cid, size, dict(headers))


REPLAY: web.AppKey[Replay] = web.AppKey("replay", Replay)

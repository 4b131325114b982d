"""Response headers every gateway handler shares: CORS and ``Vary`` on every response, ETag
matching, ``Content-Disposition``.

Usage::

    decorate(request, response)          # by the error middleware, start_stream and replays
    etag_matches(request.headers.get("If-None-Match"), etag)
    headers["Content-Disposition"] = content_disposition(filename, attachment=True)

Rules kept here: every response gets the CORS headers; content and routing answers also get
``Vary: Accept`` (they are negotiated). ``decorate`` is applied once per response, by whoever
sends it (see app.py), not by aiohttp's ``on_response_prepare`` signal (~10 µs a request).
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

from aiohttp import web

CORS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Range, User-Agent, X-Requested-With",
    "Access-Control-Expose-Headers": "Content-Range, Content-Length, X-Ipfs-Path, X-Ipfs-Roots, "
                                     "X-Chunked-Output, X-Stream-Output",
}


def decorate(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Headers every response gets: CORS, and ``Vary: Accept`` on content and routing answers.
    The error middleware applies it to returned responses, ``start_stream`` to streamed ones."""
    h = response.headers
    for k, v in CORS.items():
        h.setdefault(k, v)
    if request.path.startswith(("/ipfs/", "/ipns/", "/routing/")):
        vary = h.get("Vary", "")
        if "accept" not in vary.lower():
            h["Vary"] = f"{vary}, Accept" if vary else "Accept"


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (weakly: ``W/`` is ignored) or is ``*``."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    tags = [x.strip() for x in header.split(",")]
    return etag in tags or ("W/" + etag) in tags or etag.removeprefix("W/") in tags


def content_disposition(filename: str, attachment: bool) -> str:
    """``inline|attachment; filename="…"; filename*=UTF-8''…``: the ASCII form has every other
    character (and ``"``, ``\\``, controls) replaced by ``_``, one for one (path-gateway.md)."""
    kind = "attachment" if attachment else "inline"
    ascii_name = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"

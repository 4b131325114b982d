"""Signed IPNS records over HTTP: ``/ipns/{name}?format=ipns-record`` (trustless-gateway.md) and
``GET``/``PUT /routing/v1/ipns/{name}`` (http-routing-v1.md, IPIP-513).

Usage (routes are set up in app.py)::

    app.router.add_get("/routing/v1/ipns/{name}", routing_get)

Rules kept here:

- A record is served only while it is valid (an expired one is "no record"); the bytes are the
  ones we hold, unchanged, for the client to verify. Caches may keep it for its TTL, never past
  its end of validity; the ETag is a hash of the bytes.
- The gateway form takes any name we can map to an IPNS name (``k51…``, ``12D3KooW…``, a local
  key, a mirror); routing v1 takes IPNS names only. A missing record is 404 on the gateway and,
  per IPIP-513, ``200`` with a ``text/plain`` body on routing v1.
- ``PUT`` needs no token: a record authenticates itself. It is taken if it verifies for the name
  now and is newer than ours (400 if invalid, 409 if not newer; the very record we hold is 200).
"""

from __future__ import annotations

import email.utils
import hashlib
import time

from aiohttp import web

from ipmirror.codec import ipns
from ipmirror.codec.peerid import PeerID
from ipmirror.errors import Conflict, InvalidInput, InvalidRecord, NotFound, UnsupportedFormat
from ipmirror.gateway.backend import Backend
from ipmirror.gateway.headers import content_disposition, etag_matches
from ipmirror.gateway.negotiate import IPNS_RECORD_TYPE, Negotiated
from ipmirror.gateway.streaming import run_blocking

MAX_BODY = 16 << 10  # a record is at most 10 KiB; a little room for a clear 400 over a 413
NO_RESULT_MAX_AGE = 15


def _cache_headers(raw: bytes, now_ns: int) -> dict[str, str]:
    data = ipns.RecordData.decode(ipns.decode(raw).data or b"")
    remaining = max(0, (data.eol_ns - now_ns) // ipns.SECOND)
    max_age = min(data.ttl // ipns.SECOND, remaining)
    return {"ETag": f'"{hashlib.sha256(raw).hexdigest()[:32]}"',
            "Cache-Control": f"public, max-age={max_age}, stale-while-revalidate={remaining - max_age}, "
                             f"stale-if-error={remaining - max_age}",
            "Expires": email.utils.formatdate(data.eol_ns / ipns.SECOND, usegmt=True),
            "Content-Type": IPNS_RECORD_TYPE, "X-Content-Type-Options": "nosniff", "Vary": "Accept"}


async def serve_ipns_record(request: web.Request, backend: Backend, namespace: str, head: str,
                            rest: list[str], fmt: Negotiated) -> web.StreamResponse:
    """``/ipns/{name}`` with ``?format=ipns-record`` or ``Accept: application/vnd.ipfs.ipns-record``."""
    if namespace != "ipns" or rest:
        raise web.HTTPBadRequest(text="IPNS records are served for /ipns/{name} only (no /ipfs/, no "
                                      "path below the name)\n")
    name = await run_blocking(lambda: backend.ipns_name(head))
    raw = await run_blocking(lambda: backend.ipns_record(name))
    headers = {**_cache_headers(raw, time.time_ns()),
               **fmt.content_location(request.rel_url.raw_path, request.query),
               "X-Ipfs-Path": request.path,
               "Content-Disposition": content_disposition(request.query.get("filename")
                                                          or f"{name}.ipns-record", True)}
    if etag_matches(request.headers.get("If-None-Match"), headers["ETag"]):
        return web.Response(status=304, headers=headers)
    return web.Response(body=raw, headers=headers)


def _routing_name(request: web.Request) -> PeerID:
    text = request.match_info["name"]
    try:
        return PeerID.parse(text)
    except (InvalidInput, UnsupportedFormat) as e:
        raise web.HTTPBadRequest(text=f"{text[:100]!r} is not an IPNS name: {e}\n") from None


async def routing_get(request: web.Request, backend: Backend) -> web.StreamResponse:
    """``GET /routing/v1/ipns/{name}``."""
    accept = request.headers.get("Accept", "")
    if accept and "*/*" not in accept and IPNS_RECORD_TYPE not in accept:
        raise web.HTTPNotAcceptable(text=f"retry with 'Accept: {IPNS_RECORD_TYPE}'\n")
    name = _routing_name(request)
    now = time.time_ns()
    last_modified = {"Last-Modified": email.utils.formatdate(now / ipns.SECOND, usegmt=True),
                     "Vary": "Accept"}
    try:
        raw = await run_blocking(lambda: backend.ipns_record(name))
    except NotFound as e:
        return web.Response(text=f"no record found: {e}\n", headers={
            **last_modified, "Cache-Control": f"public, max-age={NO_RESULT_MAX_AGE}"})
    headers = {**_cache_headers(raw, now), **last_modified,
               "Content-Disposition": f'attachment; filename="{name}.ipns-record"'}
    if etag_matches(request.headers.get("If-None-Match"), headers["ETag"]):
        return web.Response(status=304, headers=headers)
    return web.Response(body=raw, headers=headers)


async def routing_put(request: web.Request, backend: Backend) -> web.StreamResponse:
    """``PUT /routing/v1/ipns/{name}``: store a record made elsewhere."""
    if IPNS_RECORD_TYPE not in request.headers.get("Content-Type", ""):
        raise web.HTTPNotAcceptable(text=f"send the record with 'Content-Type: {IPNS_RECORD_TYPE}'\n")
    name = _routing_name(request)
    if (request.content_length or 0) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length or 0)
    body = bytearray()
    async for chunk in request.content.iter_chunked(4096):
        body += chunk
        if len(body) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(body))
    raw = bytes(body)
    try:
        await run_blocking(lambda: backend.put_ipns_record(name, raw))
    except InvalidRecord as e:
        raise web.HTTPBadRequest(text=f"invalid record for {name}: {e}\n") from None
    except Conflict as e:
        raise web.HTTPConflict(text=f"{e}\n") from None
    return web.Response(status=200, headers={"Vary": "Accept"})

"""HTTP answers shared by every cache type: an artifact (from the store, or streamed from a fill
it starts or joins), a metadata document (with ``Age``/``Warning`` when stale), and the
``/by-hash/sha256/{hex}`` route.

Usage::

    return await serve_artifact(request, core, cs, Want(url, sha256, size, filename))
    return doc_response(doc, body, content_type)

Rules: a stored artifact answers ``Range`` (gateway/ranges.py: malformed ranges ignored,
unsatisfiable ones 416) with ``X-Ipfs-Path`` and an ``ETag`` naming its CID; an artifact being
filled is sent whole (a ``Range`` is ignored, as HTTP allows). The answer starts once ``HOLD``
bytes arrived, so an artifact smaller than that is verified before anything is sent. A fill that
fails before the answer started is a clean status (502, or 404 when the upstream has no such file);
after, the connection is closed before the end, so the client never holds a complete-looking wrong
file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aiohttp import web

from ipmirror.cache import cas
from ipmirror.cache.core import CacheCore, DocResult
from ipmirror.cache.db import Artifact, CacheSettings
from ipmirror.cache.fill import FillFailed
from ipmirror.codec.cid import CID
from ipmirror.errors import UpstreamError
from ipmirror.gateway.ranges import send_ranged

log = logging.getLogger("ipmirror.cache")
IMMUTABLE = "public, max-age=31536000, immutable"
SMALL = 1 << 20  # stored artifacts up to this size are answered from one read
HOLD = 256 << 10  # bytes of a fill gathered before answering (all of a smaller artifact, verified)


@dataclass(frozen=True, slots=True)
class Want:
    url: str | None  # upstream URL, if known
    sha256: str | None
    size: int | None
    filename: str
    content_type: str = "application/octet-stream"


def _headers(ctype: str, cid: str | None, sha256: str | None) -> dict[str, str]:
    h = {"Content-Type": ctype, "Cache-Control": IMMUTABLE}
    if cid:
        h["X-Ipfs-Path"] = f"/ipfs/{cid}"
        h["ETag"] = f'"{cid}"'
    if sha256:
        h["X-Checksum-Sha256"] = sha256
    return h


async def serve_stored(request: web.Request, core: CacheCore, art: Artifact,
                       ctype: str) -> web.StreamResponse:
    cid = CID.parse(art.cid)
    headers = _headers(ctype, art.cid, art.sha256 if art.verified else None)
    store = core.store
    if art.size <= SMALL:
        data = store.get_stored(cid) if cid.codec == 0x55 else None
        if data is None:
            data = await asyncio.to_thread(lambda: b"".join(cas.read(store, cid, 0, art.size)))
        return await send_ranged(request, headers, art.size, body=data)
    return await send_ranged(request, headers, art.size, read=lambda a, b: cas.read(store, cid, a, b))


async def serve_artifact(request: web.Request, core: CacheCore, cs: CacheSettings,
                         want: Want) -> web.StreamResponse:
    for _ in range(3):
        art = await core.lookup(want.sha256, cs.name, want.filename) if want.sha256 else None
        if art is None and want.sha256 is None and want.url is not None:
            digest = core.db.unverified(want.url)
            art = core.db.artifact(digest) if digest else None
        if art is not None:
            core.count(cs.name, "hits")
            return await serve_stored(request, core, art, want.content_type)
        if core.is_offline(cs):
            raise UpstreamError(f"{want.filename} is not in the cache (offline mode)", 404)
        if want.url is None:
            raise UpstreamError(f"{want.filename}: no upstream URL known", 404)
        if request.method == "HEAD":
            h = _headers(want.content_type, None, want.sha256)
            if want.size is not None:
                h["Content-Length"] = str(want.size)
            return web.Response(headers=h)
        body = await core.fills.join(core.job(cs, want.url, want.sha256, want.size, want.filename))
        if body is None:
            continue  # stored meanwhile
        core.count(cs.name, "misses")
        it = aiter(body)
        first, done = b"", False
        try:  # a small artifact is verified before its answer starts: a mismatch is a clean 502
            while len(first) < HOLD:
                chunk = await anext(it, None)
                if chunk is None:
                    done = True
                    break
                first += chunk
        except FillFailed as e:
            raise UpstreamError(str(e), e.status) from None
        cid = None
        p = core.profile
        if want.sha256 and want.size is not None and p.raw_leaves and p.chunker.kind == "size" \
                and want.size <= p.chunker.size and not (p.inline and want.size <= p.inline_limit):
            cid = str(cas.raw_cid(want.sha256))  # a one-chunk file is the raw block of its hash
        if done:
            return web.Response(body=first, headers=_headers(want.content_type, cid, want.sha256))
        resp = web.StreamResponse(headers=_headers(want.content_type, cid, want.sha256))
        if want.size is not None:
            resp.content_length = want.size
        await resp.prepare(request)
        try:
            if first:
                await resp.write(first)
            async for chunk in it:
                await resp.write(chunk)
        except FillFailed as e:
            log.warning("cache %s: %s cut short: %s", cs.name, want.filename, e)
            if request.transport is not None:
                request.transport.close()
            return resp
        await resp.write_eof()
        return resp
    raise UpstreamError(f"{want.filename}: the cache kept changing under this request", 503)


def doc_response(doc: DocResult, body: bytes, ctype: str) -> web.Response:
    headers = {"Content-Type": ctype, "Vary": "Accept", "Cache-Control": "max-age=60"}
    age = max(0, int(time.time() - doc.fetched_at))
    if age or doc.stale:
        headers["Age"] = str(age)
    if doc.stale:
        headers["Warning"] = doc.warning
    return web.Response(body=body, headers=headers)


async def by_hash(request: web.Request, core: CacheCore) -> web.StreamResponse:
    algo, digest = request.match_info["algo"], request.match_info["digest"].lower()
    if algo != "sha256":
        raise web.HTTPNotFound(text=f"unknown hash algorithm {algo!r} (sha256 is served)\n")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise web.HTTPBadRequest(text="a sha256 digest is 64 hex digits\n")
    art = await core.lookup(digest)
    if art is not None:
        return await serve_stored(request, core, art, "application/octet-stream")
    published = core.db.file_by_hash(digest)
    if published is not None:
        cache, filename, row = published
        cs = core.settings(cache)
        if cs is not None:
            return await serve_artifact(request, core, cs, Want(row.url, digest, row.size, filename))
    cid = cas.raw_cid(digest)
    if await asyncio.to_thread(core.store.has, cid):  # a one-block file some mirror holds
        size = await asyncio.to_thread(core.store.size, cid)
        return await serve_stored(request, core, Artifact(digest, str(cid), size, True, "", digest),
                                  "application/octet-stream")
    raise web.HTTPNotFound(text=f"no artifact with sha256 {digest} is cached or published\n")

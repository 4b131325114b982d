"""The trustless gateway: raw blocks and CAR streams (ipfs/specs trustless-gateway.md, IPIP-402,
IPIP-412, IPIP-523). Also the codec formats (``?format=dag-json`` …) as the block itself, never a
conversion (IPIP-524).

Usage (from the app's ``content`` handler)::

    rec = PathRecorder(backend.get)
    t = resolve_target(backend, Resolver(rec), "ipfs", cid, rest)   # rec.blocks: the path's proof
    return await serve_car(request, backend, t, rec.blocks, negotiated)

Rules kept here:

- A CAR is CARv1, depth-first, and its header root is the CID at the end of the path (as Kubo
  does; the spec leaves roots open and tells clients to ignore them): so ``ipmirror dag import``
  of a ``dag-scope=all`` answer pins exactly the requested DAG. Which blocks it holds, in what
  order (path blocks, target, ``dag-scope``, ``entity-bytes``, ``dups``), is ``dag/select.py``'s.
  Bytes are deterministic for a path and parameters, so the ETag is strong.
- The status is decided once the header, the path blocks and the target block are in hand: a
  missing one is 404, an ``entity-bytes`` range that starts past the end of a file is 400. After
  that the stream is committed to 200; a block missing later cuts the response short (the
  connection closes without the final chunk), as the spec says clients must detect.
- Memory stays bounded: blocks are read one at a time in a worker thread and written in ~256 KiB
  pieces; ``dups=n`` keeps the set of sent multihashes (34 bytes each), as any dedupe must.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from aiohttp import web

from ipmirror.codec.car import encode_frame, encode_header
from ipmirror.codec.cid import CID
from ipmirror.dag.select import SCOPES, ByteRange, Scope, select_car_blocks
from ipmirror.errors import InvalidInput
from ipmirror.gateway.backend import Backend
from ipmirror.gateway.headers import content_disposition, etag_matches
from ipmirror.gateway.negotiate import CODEC_FORMATS, RAW_TYPE, Negotiated
from ipmirror.gateway.ranges import send_ranged
from ipmirror.gateway.streaming import aiter_blocking, batched, run_blocking, start_stream
from ipmirror.gateway.target import Target
from ipmirror.unixfs.exporter import Getter

CHUNK = 256 << 10


class PathRecorder:
    """A block getter that keeps every block it read, in order: the blocks proving a path."""

    def __init__(self, get: Getter) -> None:
        self._get = get
        self.blocks: list[tuple[CID, bytes]] = []

    def __call__(self, cid: CID) -> bytes:
        data = self._get(cid)
        self.blocks.append((cid, data))
        return data


def _trustless_headers(request: web.Request, t: Target, fmt: Negotiated, etag: str, ctype: str,
                       filename: str, attachment: bool = True) -> dict[str, str]:
    attachment = attachment or request.query.get("download") == "true"
    return {**t.headers(request.path), **fmt.content_location(request.rel_url.raw_path, request.query),
            "ETag": etag, "Content-Type": ctype, "X-Content-Type-Options": "nosniff",
            "Content-Disposition": content_disposition(request.query.get("filename") or filename, attachment)}


# -- raw blocks -----------------------------------------------------------------------------------

async def serve_block(request: web.Request, backend: Backend, t: Target,
                      fmt: Negotiated) -> web.StreamResponse:
    """The block at the end of the path, as it is: ``?format=raw``, or a codec format that is the
    block's own codec (anything else would be a conversion: 406). JSON is shown inline, the rest
    is an attachment."""
    if fmt.format == "raw":
        ctype, etag, name = RAW_TYPE, f'"{t.cid}.raw"', f"{t.cid}.bin"
    else:
        if CODEC_FORMATS[fmt.format] != t.cid.codec:
            raise web.HTTPNotAcceptable(text=f"{t.cid} is not {fmt.format}; this gateway does not "
                                             "convert between codecs (fetch ?format=raw)\n")
        ctype, etag, name = fmt.media_type, f'"{t.cid}.{fmt.format}"', f"{t.cid}.{fmt.format.split('-')[-1]}"
    headers = _trustless_headers(request, t, fmt, etag, ctype, name, not name.endswith(".json"))
    headers["Accept-Ranges"] = "bytes"
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    data = await run_blocking(lambda: backend.get(t.cid))
    return await send_ranged(request, headers, len(data), body=data)


# -- CAR ------------------------------------------------------------------------------------------

def car_request(request: web.Request) -> tuple[Scope, ByteRange | None]:
    """``dag-scope`` (default ``all``; ``entity`` when only ``entity-bytes`` is given) and the
    byte range, which counts for ``dag-scope=entity`` only."""
    q = request.query
    asked = q.get("dag-scope") or ("entity" if "entity-bytes" in q else "all")
    scope = next((s for s in SCOPES if s == asked), None)
    if scope is None:
        raise web.HTTPBadRequest(text=f"dag-scope must be block, entity or all, not {asked!r}\n")
    rng = None
    if "entity-bytes" in q and scope == "entity":
        try:
            rng = ByteRange.parse(q["entity-bytes"])
        except InvalidInput as e:
            raise web.HTTPBadRequest(text=f"{e}\n") from None
    return scope, rng


def car_etag(t: Target, scope: str, rng: ByteRange | None, dups: bool) -> str:
    key = f"{t.immutable_path}\0scope={scope}\0range={rng}\0dups={dups}\0order=dfs\0v1"
    return f'"{t.root}.car.{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}"'


async def serve_car(request: web.Request, backend: Backend, t: Target, path_blocks: list[tuple[CID, bytes]],
                    fmt: Negotiated) -> web.StreamResponse:
    scope, rng = car_request(request)
    etag = car_etag(t, scope, rng, fmt.car.dups)
    name = f"{t.root}_{t.steps[-1]}.car" if t.steps else f"{t.root}.car"
    headers = _trustless_headers(request, t, fmt, etag, fmt.car.content_type, name)
    headers["Accept-Ranges"] = "none"
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    chunks = car_chunks(backend.get, t.cid, path_blocks, scope, rng, fmt.car.dups)
    first = await run_blocking(lambda: next(chunks))  # 404/400 still possible here
    resp = web.StreamResponse(status=200, headers=headers)
    await start_stream(request, resp)
    if request.method == "HEAD":
        return resp
    await resp.write(first)
    async for chunk in aiter_blocking(batched(chunks, CHUNK)):
        await resp.write(chunk)
    await resp.write_eof()
    return resp


def car_chunks(get: Getter, target: CID, path_blocks: list[tuple[CID, bytes]], scope: Scope,
               rng: ByteRange | None, dups: bool) -> Iterator[bytes]:
    """The CAR as byte chunks (blocking), blocks as ``dag/select.py`` selects them. The first
    chunk holds the header, the path blocks and the target block; everything that can make the
    request fail with a status happens before it."""
    head, rest = select_car_blocks(get, target, path_blocks, scope, rng, dups)
    yield b"".join([encode_header([target]), *(encode_frame(c, d) for c, d in head)])
    for cid, data in rest:
        yield encode_frame(cid, data)

"""The path gateway: UnixFS files and directories as plain HTTP (ipfs/specs path-gateway.md).

Files stream block by block (never whole), with single and multiple byte ranges, ETag and
If-None-Match, the namespace's caching headers, and ``?filename=`` / ``?download=true``.
Directories redirect to the trailing-slash form, serve ``index.html`` when present, and otherwise
stream an HTML listing row by row (a 500,000-entry HAMT directory starts arriving at once).
"""

from __future__ import annotations

import functools
import html
import mimetypes
import secrets
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from urllib.parse import quote

from aiohttp import web

from ipmirror.codec.cid import CID, RAW
from ipmirror.gateway.backend import Backend
from ipmirror.gateway.common import (
    GatewayConfig,
    Target,
    aiter_blocking,
    content_disposition,
    etag_matches,
    ipfs_headers,
    run_blocking,
    start_stream,
)
from ipmirror.gateway.ranges import Unsatisfiable, parse_range
from ipmirror.gateway.replay import REPLAY
from ipmirror.unixfs import exporter as ex

SNIFF = 512
_NO_QUERY: Mapping[str, str] = MappingProxyType({})
IN_MEMORY = 256 << 10  # files up to this size are answered from memory (see read_stored)
mimetypes.add_type("application/vnd.debian.binary-package", ".deb")
mimetypes.add_type("application/octet-stream", ".whl")
mimetypes.add_type("text/plain", ".metadata")


def sniff(head: bytes) -> str:
    if head.startswith(b"\x89PNG"):
        return "image/png"
    if head.startswith((b"\xff\xd8\xff",)):
        return "image/jpeg"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x1f\x8b"):
        return "application/x-gzip"
    lower = head.lstrip()[:64].lower()
    if lower.startswith((b"<!doctype html", b"<html")):
        return "text/html; charset=utf-8"
    if head and b"\0" not in head:
        try:
            head.decode("utf-8")
            return "text/plain; charset=utf-8"
        except UnicodeDecodeError as e:
            if e.start >= len(head) - 3:  # a character cut at the sniff boundary
                return "text/plain; charset=utf-8"
    return "application/octet-stream"


@functools.lru_cache(maxsize=4096)
def _by_name(name: str) -> str | None:
    t, enc = mimetypes.guess_type(name, strict=False)
    if enc == "gzip" and not t:
        return "application/gzip"
    if t:
        return t + ("; charset=utf-8" if t.startswith("text/") else "")
    return None


def content_type(name: str, head: bytes) -> str:
    """By the name's extension, else sniffed from the first bytes."""
    return _by_name(name) or sniff(head)


async def serve_unixfs(request: web.Request, backend: Backend, cfg: GatewayConfig,
                       t: Target, node: ex.Node | None = None) -> web.StreamResponse:
    """``node``: the target's stat if known (files may come without their bytes)."""
    if node is None:
        node = await run_blocking(lambda: ex.stat(backend.get, t.cid))
    if node.is_dir:
        return await _directory(request, backend, cfg, t, node)
    if node.kind == "symlink":
        target = (node.data.data if node.data else b"") or b""
        return web.Response(body=target, content_type="text/plain",
                            headers={**ipfs_headers(t, request.path), "ETag": f'"{t.cid_text}"'})
    return await serve_file(request, backend, t, node, t.segments[-1] if t.segments else "")


async def serve_file(request: web.Request, backend: Backend, t: Target, node: ex.Node, name: str,
                     extra: dict[str, str] | None = None) -> web.StreamResponse:
    etag = f'"{t.cid_text}"'
    headers = {**ipfs_headers(t, request.path), "ETag": etag, "Accept-Ranges": "bytes", **(extra or {})}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    size = node.size
    body = read_stored(backend, t.cid, size) if size <= IN_MEMORY else None
    if body is not None:
        head = body[:SNIFF]
    else:
        head = b"" if size == 0 else b"".join(await run_blocking(
            lambda: list(ex.read(backend.get, t.cid, 0, min(SNIFF, size)))))
    query = request.query if request.query_string else _NO_QUERY
    filename = query.get("filename")
    headers["Content-Type"] = content_type(filename or name, head)
    if filename or query.get("download") == "true":
        headers["Content-Disposition"] = content_disposition(filename or name or t.cid_text,
                                                             query.get("download") == "true")
    try:
        spans = parse_range(request.headers.get("Range"), size)
    except Unsatisfiable:
        headers["Content-Range"] = f"bytes */{size}"
        return web.Response(status=416, headers=headers)
    if spans is not None and request.headers.get("If-Range") not in (None, etag):
        spans = None  # the client's copy is of another entity: send it whole
    if spans is None:
        if body is not None:
            replay = request.app.get(REPLAY)
            if replay is not None:
                replay.remember(request, t.cid, size, headers)
            return web.Response(body=body, headers=headers)
        return await _stream(request, headers, 200, size, backend, t.cid, [(0, size)])
    if len(spans) == 1:
        a, b = spans[0]
        headers["Content-Range"] = f"bytes {a}-{b - 1}/{size}"
        if body is not None:
            return web.Response(status=206, body=body[a:b], headers=headers)
        return await _stream(request, headers, 206, b - a, backend, t.cid, spans)
    return await _multipart(request, headers, size, backend, t.cid, spans)


class _NotStored(Exception):
    pass


def read_stored(backend: Backend, cid: CID, size: int) -> bytes | None:
    """A small file's bytes, read on the event loop when every block is in the store itself
    (microseconds: copies out of LMDB's map); None if a block needs file I/O or is missing, and
    the caller streams from the thread pool instead."""
    def get(c: CID) -> bytes:
        data = backend.get_stored(c)
        if data is None:
            raise _NotStored
        return data

    if cid.codec == RAW:  # the common case: the file is one raw block
        return backend.get_stored(cid)
    try:
        return b"".join(ex.read(get, cid, 0, size))
    except _NotStored:
        return None


async def _stream(request: web.Request, headers: dict[str, str], status: int, length: int,
                  backend: Backend, cid: CID, spans: list[tuple[int, int]]) -> web.StreamResponse:
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = length
    await start_stream(request, resp)
    if request.method == "HEAD":
        return resp
    for a, b in spans:
        async for chunk in aiter_blocking(ex.read(backend.get, cid, a, b - a)):
            await resp.write(chunk)
    await resp.write_eof()
    return resp


async def _multipart(request: web.Request, headers: dict[str, str], size: int, backend: Backend, cid: CID,
                     spans: list[tuple[int, int]]) -> web.StreamResponse:
    boundary = secrets.token_hex(12)
    ctype = headers.pop("Content-Type")
    parts = [(f"\r\n--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {a}-{b - 1}/{size}"
              "\r\n\r\n").encode() for a, b in spans]
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = sum(len(p) for p in parts) + sum(b - a for a, b in spans) + len(tail)
    headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
    resp = web.StreamResponse(status=206, headers=headers)
    resp.content_length = length
    await start_stream(request, resp)
    if request.method == "HEAD":
        return resp
    for part, (a, b) in zip(parts, spans, strict=True):
        await resp.write(part)
        async for chunk in aiter_blocking(ex.read(backend.get, cid, a, b - a)):
            await resp.write(chunk)
    await resp.write(tail)
    await resp.write_eof()
    return resp


async def _directory(request: web.Request, backend: Backend, cfg: GatewayConfig, t: Target,
                     node: ex.Node) -> web.StreamResponse:
    if not request.path.endswith("/"):
        loc = quote(request.path, safe="/%:@!$&'()*+,;=") + "/"
        raw_query = request.raw_path.partition("?")[2]  # as sent: query_string is decoded
        if raw_query:
            loc += "?" + raw_query
        raise web.HTTPMovedPermanently(loc, headers=ipfs_headers(t, request.path))
    index = await run_blocking(lambda: ex.lookup(backend.get, node, "index.html"))
    if index is not None:
        inode = await run_blocking(lambda: ex.stat(backend.get, index))
        if not inode.is_dir:
            sub = Target(t.namespace, t.head, [*t.segments, "index.html"], index, [*t.roots, index],
                         t.cache_control, t.last_modified)
            return await serve_file(request, backend, sub, inode, "index.html")
    etag = f'"DirIndex-1_CID-{t.cid}"'
    headers = {**ipfs_headers(t, request.path), "ETag": etag, "Content-Type": "text/html; charset=utf-8"}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    resp = web.StreamResponse(status=200, headers=headers)
    await start_stream(request, resp)
    if request.method == "HEAD":
        return resp
    batch: list[str] = []
    async for row in aiter_blocking(_listing(backend, t, node, request.path)):
        batch.append(row.decode())
        if len(batch) >= cfg.listing_chunk:
            await resp.write("".join(batch).encode())
            batch = []
    if batch:
        await resp.write("".join(batch).encode())
    await resp.write_eof()
    return resp


def _listing(backend: Backend, t: Target, node: ex.Node, path: str) -> Iterator[bytes]:
    title = html.escape(path)
    yield (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
           "<style>body{font-family:sans-serif}td{padding:0 1em}td.s{text-align:right}</style></head>"
           f"<body><h1>Index of {title}</h1><p><code>{t.cid}</code></p><table>\n").encode()
    if t.segments:
        yield b'<tr><td><a href="../">..</a></td><td></td><td></td></tr>\n'
    for e in ex.list_dir(backend.get, t.cid, node):
        name = html.escape(e.name)
        href = quote(e.name, safe="")
        yield (f'<tr><td><a href="{href}">{name}</a></td><td class="s">{e.tsize}</td>'
               f'<td><a href="/ipfs/{e.cid}"><code>{e.cid}</code></a></td></tr>\n').encode()
    yield b"</table></body></html>\n"

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
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from urllib.parse import quote

from aiohttp import web

from ipmirror.codec.cid import CID, RAW
from ipmirror.gateway.backend import Backend
from ipmirror.gateway.config import GatewayConfig
from ipmirror.gateway.headers import content_disposition, etag_matches
from ipmirror.gateway.ranges import send_ranged
from ipmirror.gateway.replay import REPLAY
from ipmirror.gateway.streaming import aiter_blocking, run_blocking, start_stream
from ipmirror.gateway.target import Target
from ipmirror.unixfs import exporter as ex
from ipmirror.unixfs.resolve import Resolver

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


async def serve_unixfs(request: web.Request, backend: Backend, resolver: Resolver, cfg: GatewayConfig,
                       t: Target, node: ex.Node | None = None) -> web.StreamResponse:
    """``node``: the target's stat if known (files may come without their bytes)."""
    if node is None:
        node = await run_blocking(lambda: resolver.stat(t.cid))
    if node.is_dir:
        return await _directory(request, backend, resolver, cfg, t, node)
    if node.kind == "symlink":
        target = (node.data.data if node.data else b"") or b""
        return web.Response(body=target, content_type="text/plain",
                            headers={**t.headers(request.path), "ETag": f'"{t.cid_text}"'})
    return await serve_file(request, backend, t, node, t.segments[-1] if t.segments else "")


async def serve_file(request: web.Request, backend: Backend, t: Target, node: ex.Node, name: str,
                     extra: dict[str, str] | None = None) -> web.StreamResponse:
    etag = f'"{t.cid_text}"'
    headers = {**t.headers(request.path), "ETag": etag, "Accept-Ranges": "bytes", **(extra or {})}
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
    if body is not None:
        replay = request.app.get(REPLAY)
        if replay is not None:  # it keeps only what it can replay: a plain request's whole 200
            replay.remember(request, t.cid, size, headers)
        return await send_ranged(request, headers, size, body=body)
    return await send_ranged(request, headers, size, read=lambda a, b: ex.read(backend.get, t.cid, a, b - a))


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


async def _directory(request: web.Request, backend: Backend, resolver: Resolver, cfg: GatewayConfig,
                     t: Target, node: ex.Node) -> web.StreamResponse:
    if not request.path.endswith("/"):
        loc = quote(request.path, safe="/%:@!$&'()*+,;=") + "/"
        raw_query = request.raw_path.partition("?")[2]  # as sent: query_string is decoded
        if raw_query:
            loc += "?" + raw_query
        raise web.HTTPMovedPermanently(loc, headers=t.headers(request.path))
    index = await run_blocking(lambda: resolver.lookup(t.cid, "index.html"))
    if index is not None:
        inode = await run_blocking(lambda: resolver.stat(index))
        if not inode.is_dir:
            sub = Target(t.namespace, t.head, [*t.segments, "index.html"], index, [*t.roots, index],
                         t.cache_control, t.last_modified)
            return await serve_file(request, backend, sub, inode, "index.html")
    etag = f'"DirIndex-1_CID-{t.cid}"'
    headers = {**t.headers(request.path), "ETag": etag, "Content-Type": "text/html; charset=utf-8"}
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

"""``?format=tar``: a UnixFS file or directory tree as a streamed tar (path-gateway.md, IPIP-288).

Usage (from the app's ``content`` handler)::

    return await serve_tar(request, backend, target, negotiated)

Rules kept here:

- The archive holds one top-level entry named by the target's CID (``bafy…/`` and everything
  below it, or the file ``bafy…``), as Kubo writes it. Headers are ustar, with PAX records for
  long or non-ASCII names and large sizes; symlinks stay symlinks; the UnixFS mode and mtime are
  used when the node has them (else 0755/0644/0777 and the time of the request).
- Entry names are joined and normalised (``a/../b`` is ``b``, as Kubo does); a name that leaves
  the top-level directory (``..``, absolute), names the directory itself, holds NUL, or passes
  *through* a symlink written earlier is refused, so extracting never writes outside the tree.
- The status waits for the first 64 KiB (or the end): a bad name or missing block found by then
  is a plain 400/404. Later failures cut the stream short (no end-of-archive, no final chunk).
- ETag is weak (``W/"<cid>.x-tar"``): mtimes of nodes without one are the time of the request.
"""

from __future__ import annotations

import posixpath
import tarfile
import time
from collections.abc import Iterator

from aiohttp import web

from ipmirror.codec.cid import CID, DAG_PB, RAW
from ipmirror.errors import DecodeError, InvalidInput
from ipmirror.gateway.backend import Backend
from ipmirror.gateway.headers import content_disposition, etag_matches
from ipmirror.gateway.negotiate import TAR_TYPE, Negotiated
from ipmirror.gateway.streaming import aiter_blocking, batched, run_blocking, start_stream
from ipmirror.gateway.target import Target
from ipmirror.unixfs import exporter as ex
from ipmirror.unixfs.exporter import Getter

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
HOLD = 64 << 10  # bytes produced before the status is committed
CHUNK = 256 << 10
MAX_DEPTH = 256
DEFAULT_MODES = {"directory": 0o755, "hamt-sharded-directory": 0o755, "symlink": 0o777}


async def serve_tar(request: web.Request, backend: Backend, t: Target, fmt: Negotiated) -> web.StreamResponse:
    etag = f'W/"{t.cid}.x-tar"'
    filename = request.query.get("filename") or f"{t.cid}.tar"
    headers = {**t.headers(request.path), **fmt.content_location(request.rel_url.raw_path, request.query),
               "ETag": etag, "Content-Type": TAR_TYPE, "X-Content-Type-Options": "nosniff",
               "Accept-Ranges": "none", "Content-Disposition": content_disposition(filename, True)}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    if t.cid.codec not in (DAG_PB, RAW):
        raise web.HTTPBadRequest(text=f"{t.cid} is not UnixFS; use ?format=car for other codecs\n")
    if request.method == "HEAD":
        await run_blocking(lambda: ex.stat(backend.get, t.cid))
        return web.Response(headers=headers)
    chunks = aiter_blocking(batched(tar_stream(backend.get, t.cid, int(time.time())), CHUNK))
    held: list[bytes] = []
    size = 0
    async for chunk in chunks:  # errors here still get their own status
        held.append(chunk)
        size += len(chunk)
        if size >= HOLD:
            break
    resp = web.StreamResponse(status=200, headers=headers)
    await start_stream(request, resp)
    await resp.write(b"".join(held))
    async for chunk in chunks:
        await resp.write(chunk)
    await resp.write_eof()
    return resp


def tar_stream(get: Getter, root: CID, now: int) -> Iterator[bytes]:
    """The tar of the UnixFS DAG at ``root`` (blocking), in pieces."""
    writer = _TarWriter(get, str(root), now)
    yield from writer.entry(root, str(root), 0)
    yield b"\0" * (2 * BLOCK)
    written = writer.written + 2 * BLOCK
    yield b"\0" * (-written % RECORD)


class _TarWriter:
    def __init__(self, get: Getter, top: str, now: int) -> None:
        self.get = get
        self.top = top
        self.now = now
        self.symlinks: set[str] = set()
        self.written = 0

    def _header(self, node: ex.Node, name: str, kind: bytes, size: int = 0, link: str = "") -> bytes:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.size = size
        info.linkname = link
        mode = node.mode
        info.mode = (mode & 0o7777) if mode is not None else DEFAULT_MODES.get(node.kind, 0o644)
        mtime = node.mtime
        info.mtime = mtime.seconds if mtime is not None else self.now
        buf = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        self.written += len(buf)
        return buf

    def _check(self, path: str) -> None:
        if "\0" in path:
            raise InvalidInput(f"refusing a tar entry with NUL in its name ({path[:80]!r})")
        if path != self.top and not path.startswith(self.top + "/"):
            raise InvalidInput(f"refusing a tar entry that leaves the root: {path[:200]!r} (use ?format=car)")
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in self.symlinks:
                raise InvalidInput(f"refusing a tar entry below a symlink: {path[:200]!r}")

    def entry(self, cid: CID, path: str, depth: int) -> Iterator[bytes]:
        if depth > MAX_DEPTH:
            raise InvalidInput(f"{path[:200]!r}: directories nested deeper than {MAX_DEPTH}")
        self._check(path)
        node = ex.stat(self.get, cid)
        if node.is_dir:
            yield self._header(node, path, tarfile.DIRTYPE)
            for e in ex.list_dir(self.get, cid, node):
                child = posixpath.normpath(posixpath.join(path, e.name))
                if not e.name or child == path:
                    raise InvalidInput(f"refusing a tar entry named {e.name!r} in {path[:200]!r}")
                yield from self.entry(e.cid, child, depth + 1)
        elif node.kind == "symlink":
            target = (node.data.data if node.data else None) or b""
            yield self._header(node, path, tarfile.SYMTYPE, link=target.decode("utf-8", "surrogateescape"))
            self.symlinks.add(path)
        elif node.kind == "file":
            yield self._header(node, path, tarfile.REGTYPE, node.size)
            n = 0
            for chunk in ex.read(self.get, cid):
                n += len(chunk)
                yield chunk
            if n != node.size:
                raise DecodeError(f"{cid}: the file holds {n} bytes, not the {node.size} it declares")
            pad = -n % BLOCK
            self.written += n + pad
            yield b"\0" * pad
        else:
            raise InvalidInput(f"{path[:200]!r}: a UnixFS {node.kind} node cannot go into a tar")

"""Request plumbing shared by the gateway handlers: content paths, headers, streaming.

A request for ``/ipfs/{cid}/{path}`` or ``/ipns/{name}/{path}`` becomes a :class:`Target`: the
resolved CID, the roots along the path (for ``X-Ipfs-Roots``), and the caching policy of its
namespace (immutable for /ipfs, the record's TTL for /ipns).
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import quote

from aiohttp import web

from ipmirror.codec.cid import CID
from ipmirror.errors import InvalidInput, PathNotFound
from ipmirror.gateway.backend import Backend
from ipmirror.unixfs import exporter as ex

IMMUTABLE = "public, max-age=29030400, immutable"
MAX_PATH = 4096
MAX_SEGMENT = 1024
T = TypeVar("T")


@dataclass
class GatewayConfig:
    public_url: str = ""  # how clients reach us (behind a reverse proxy), for routing answers
    token: str = ""  # required (Bearer) for endpoints that change state, except IPNS record PUT
    listing_chunk: int = 512  # directory listing rows per write
    peer_id: str = ""  # this node's ID for delegated routing answers


@dataclass
class Target:
    """What a request path resolved to. ``segments`` are the request's own components below the
    root (or below the name, for /ipns/); ``roots`` the CID of every step from the root."""

    namespace: str  # "ipfs" | "ipns"
    head: str  # the CID or the name, as requested
    segments: list[str]
    cid: CID
    roots: list[CID] = field(default_factory=list)
    cache_control: str = IMMUTABLE
    last_modified: float | None = None

    @property
    def root(self) -> CID:
        return self.roots[0]


def split_request_path(raw: str) -> list[str]:
    """Path segments below the root, decoded once; ``..``, ``.``, NUL and over-long input refused."""
    if len(raw) > MAX_PATH:
        raise InvalidInput("path too long")
    out = []
    for seg in raw.split("/"):
        if seg == "":
            continue
        if seg in (".", "..") or "\0" in seg or len(seg) > MAX_SEGMENT:
            raise InvalidInput(f"invalid path segment {seg[:40]!r}")
        out.append(seg)
    return out


async def run_blocking(fn: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, fn)


def walk_path(backend: Backend, root: CID, segments: list[str]) -> tuple[CID, list[CID]]:
    """Resolve ``segments`` below ``root``; returns the target and the CID of every step."""
    roots = [root]
    cid = root
    for i, seg in enumerate(segments):
        node = ex.stat(backend.get, cid)
        if not node.is_dir:
            raise PathNotFound(f"{'/'.join(segments[:i]) or root} is not a directory")
        child = ex.lookup(backend.get, node, seg)
        if child is None:
            raise PathNotFound(f"no link named {seg!r} under /ipfs/{root}/{'/'.join(segments[:i])}")
        cid = child
        roots.append(cid)
    return cid, roots


def resolve_target(backend: Backend, namespace: str, head: str, rest: list[str]) -> Target:
    """Resolve ``/{namespace}/{head}/{rest…}`` (blocking: reads blocks)."""
    if namespace == "ipfs":
        root = CID.parse(head)
        cid, roots = walk_path(backend, root, rest)
        return Target("ipfs", head, rest, cid, roots)
    res = backend.resolve_name(head)  # one lookup per request: a new version is seen at once
    cid, roots = walk_path(backend, res.root, res.path + rest)
    return Target("ipns", head, rest, cid, roots, f"public, max-age={res.ttl_s}", res.modified)


def ipfs_headers(t: Target, request_path: str) -> dict[str, str]:
    h = {"X-Ipfs-Path": request_path, "X-Ipfs-Roots": ",".join(str(c) for c in t.roots),
         "Cache-Control": t.cache_control}
    if t.last_modified is not None:
        h["Last-Modified"] = email.utils.formatdate(t.last_modified, usegmt=True)
    return h


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    tags = [x.strip() for x in header.split(",")]
    return etag in tags or ("W/" + etag) in tags


def content_disposition(filename: str, attachment: bool) -> str:
    kind = "attachment" if attachment else "inline"
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


async def aiter_blocking(gen: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Pull a blocking generator from a thread, one item at a time."""
    sentinel = object()

    def nxt() -> object:
        return next(gen, sentinel)

    while True:
        item = await run_blocking(nxt)
        if item is sentinel:
            return
        yield item  # type: ignore[misc]


async def write_all(resp: web.StreamResponse, chunks: AsyncIterator[bytes]) -> None:
    async for c in chunks:
        await resp.write(c)

"""What a content request names: ``/ipfs/{cid}/{path}`` or ``/ipns/{name}/{path}`` becomes a
:class:`Target`, the resolved CID with the roots along the path (``X-Ipfs-Roots``) and the caching
policy of its namespace (immutable for /ipfs, the record's TTL for /ipns).

Usage::

    rest = split_request_path(raw)                      # InvalidInput for ``..``, NUL, …
    t = resolve_target(backend, resolver, "ipfs", head, rest)    # blocking; see pathcache.py
    headers = t.headers(request.path)                   # X-Ipfs-Path, X-Ipfs-Roots, caching

Paths are resolved by unixfs/resolve.py (UnixFS directories and DAG-CBOR links); its errors
(PathNotFound, UnsupportedCodec, …) reach the error middleware in app.py, which maps them to
statuses.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field
from typing import Final

from ipmirror.codec.cid import CID
from ipmirror.errors import InvalidInput
from ipmirror.gateway.backend import Backend
from ipmirror.unixfs.resolve import Resolver

IMMUTABLE: Final = "public, max-age=29030400, immutable"
MAX_PATH: Final = 4096
MAX_SEGMENT: Final = 1024


@dataclass
class Target:
    """What a request path resolved to. ``segments`` are the request's own components below the
    root (or below the name, for /ipns/); ``roots`` the CID of every step from the root;
    ``steps`` every component walked below ``roots[0]`` (for /ipns/: the name's path, then
    ``segments``), so ``/ipfs/{roots[0]}/{steps…}`` is the immutable path."""

    namespace: str  # "ipfs" | "ipns"
    head: str  # the CID or the name, as requested
    segments: list[str]
    cid: CID
    roots: list[CID] = field(default_factory=list)
    cache_control: str = IMMUTABLE
    last_modified: float | None = None
    steps: list[str] = field(default_factory=list)
    texts: tuple[str, str] | None = None  # str(cid) and X-Ipfs-Roots, when known (cached)

    @property
    def root(self) -> CID:
        return self.roots[0]

    @property
    def cid_text(self) -> str:
        return self.texts[0] if self.texts else str(self.cid)

    @property
    def roots_text(self) -> str:
        return self.texts[1] if self.texts else ",".join(str(c) for c in self.roots)

    @property
    def immutable_path(self) -> str:
        return "/".join(["/ipfs", str(self.root), *self.steps])

    def headers(self, request_path: str) -> dict[str, str]:
        """``X-Ipfs-Path``, ``X-Ipfs-Roots``, ``Cache-Control`` and (for /ipns/) ``Last-Modified``."""
        h = {"X-Ipfs-Path": request_path, "X-Ipfs-Roots": self.roots_text,
             "Cache-Control": self.cache_control}
        if self.last_modified is not None:
            h["Last-Modified"] = email.utils.formatdate(self.last_modified, usegmt=True)
        return h


def split_request_path(raw: str) -> list[str]:
    """Path segments below the root, decoded once. Empty and ``.`` segments are dropped (apt asks
    for ``/./Packages`` in flat repositories); ``..``, NUL and over-long input are refused."""
    if len(raw) > MAX_PATH:
        raise InvalidInput("path too long")
    out = []
    for seg in raw.split("/"):
        if seg in ("", "."):
            continue
        if seg == ".." or "\0" in seg or len(seg) > MAX_SEGMENT:
            raise InvalidInput(f"invalid path segment {seg[:40]!r}")
        out.append(seg)
    return out


def resolve_target(backend: Backend, resolver: Resolver, namespace: str, head: str,
                   rest: list[str]) -> Target:
    """Resolve ``/{namespace}/{head}/{rest…}`` with ``resolver`` (blocking: reads blocks). An
    /ipns/ name is looked up on every call: a new version is seen at once."""
    if namespace == "ipfs":
        found = resolver.resolve_path(CID.parse(head), rest)
        return Target("ipfs", head, rest, found.cid, list(found.roots), steps=rest)
    res = backend.resolve_name(head)
    steps = res.path + rest
    found = resolver.resolve_path(res.root, steps)
    return Target("ipns", head, rest, found.cid, list(found.roots), f"public, max-age={res.ttl_s}",
                  res.modified, steps)

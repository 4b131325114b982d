"""Resolved content paths, cached: ``(root, path)`` -> the target's CID, the roots along the way
and the target's UnixFS stat, so a repeated request does no path walk and no thread-pool hop.
A thin layer over unixfs/resolve.py (which caches decoded directories, not whole paths).

Usage::

    paths = PathCache()
    resolver = Resolver(backend.get, NodeCache())
    target, node = await resolve_cached(backend, paths, resolver, "ipfs", head, rest)

Rules:

1. Content under a CID never changes, so an entry never goes stale. ``/ipfs/`` entries are keyed
   by the CID text as requested; ``/ipns/`` names are resolved on every request first (a version
   published by another process is seen at once) and then looked up by the *root CID they
   resolved to*: entries of old versions are simply no longer asked for and age out.
2. Entries hold no file bytes: a raw leaf's stat is kept without its block. The cache is bounded
   by an estimate of its size (key, texts, and the directory or file root node it keeps alive).
3. Failures are not cached (a missing path is looked up again next time; a damaged block, found
   by the backend's hash-on-read check, fails the request and leaves nothing behind).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from ipmirror.codec.cid import CID, DAG_PB, RAW
from ipmirror.errors import Corrupt, IpmirrorError
from ipmirror.gateway.backend import Backend
from ipmirror.gateway.streaming import run_blocking
from ipmirror.gateway.target import Target
from ipmirror.unixfs import exporter as ex
from ipmirror.unixfs.resolve import Resolver

ENTRY_OVERHEAD = 600  # bytes per entry besides the node it holds (key, tuples, texts), roughly


@dataclass(frozen=True, slots=True)
class Walk:
    cid: CID
    roots: tuple[CID, ...]
    texts: tuple[str, str]  # str(cid), X-Ipfs-Roots
    node: ex.Node | None  # the target's stat (raw leaves without their bytes); None: not UnixFS


class PathCache:
    """An LRU map of resolved paths, bounded by bytes; safe to use from several threads."""

    def __init__(self, max_bytes: int = 32 << 20) -> None:
        self._max = max_bytes
        self._size = 0
        self._items: OrderedDict[tuple[str | bytes, tuple[str, ...]], tuple[Walk, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str | bytes, tuple[str, ...]]) -> Walk | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: tuple[str | bytes, tuple[str, ...]], walk: Walk) -> None:
        node = walk.node
        cost = ENTRY_OVERHEAD + sum(map(len, key[1])) + (node.block_size if node and node.pb else 0)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._items[key] = (walk, cost)
            self._size += cost
            while self._size > self._max and self._items:
                _k, (_w, c) = self._items.popitem(last=False)
                self._size -= c

    def __len__(self) -> int:
        return len(self._items)


def _stat(resolver: Resolver, cid: CID) -> ex.Node | None:
    if cid.codec not in (DAG_PB, RAW):
        return None
    try:
        node = resolver.stat(cid)
    except Corrupt:  # a damaged block: the request fails (500) and nothing is cached (rule 3)
        raise
    except IpmirrorError:  # not UnixFS after all: the handler reports it as before
        return None
    if node.raw is not None:  # keep the size, not the bytes
        node = ex.Node(node.cid, node.kind, node.size, None, None, node.block_size)
    return node


def walk(resolver: Resolver, root: CID, steps: list[str]) -> Walk:
    """Resolve ``steps`` below ``root`` and stat the target (blocking: reads blocks)."""
    found = resolver.resolve_path(root, steps)
    cid, roots = found.cid, found.roots
    return Walk(cid, roots, (str(cid), ",".join(str(c) for c in roots)), _stat(resolver, cid))


async def resolve_cached(backend: Backend, paths: PathCache, resolver: Resolver, namespace: str,
                         head: str, rest: list[str]) -> tuple[Target, ex.Node | None]:
    """The target of ``/{namespace}/{head}/{rest…}`` and its stat (None: not UnixFS, or not
    readable as such). A path seen before is answered on the event loop; a new one is walked on
    the thread pool."""
    key: tuple[str | bytes, tuple[str, ...]]
    if namespace == "ipfs":
        key = (head, tuple(rest))
        hit = paths.get(key)
        if hit is None:
            hit = await run_blocking(lambda: walk(resolver, CID.parse(head), rest))
            paths.put(key, hit)
        return Target("ipfs", head, rest, hit.cid, list(hit.roots), steps=rest, texts=hit.texts), hit.node
    res = backend.resolve_name(head)  # every request, on the loop (a stat): new versions are seen at once
    steps = res.path + rest
    key = (res.root.buffer, tuple(steps))
    hit = paths.get(key)
    if hit is None:
        hit = await run_blocking(lambda: walk(resolver, res.root, steps))
        paths.put(key, hit)
    return Target("ipns", head, rest, hit.cid, list(hit.roots), f"public, max-age={res.ttl_s}", res.modified,
                  steps, hit.texts), hit.node

"""Path resolution: the one place a content path below a root CID becomes the CID it names. The
gateway, ``cat``/``get``/``ls``/``dag``/``pin`` and the coming read-only mount all call it.

Usage::

    root, segments = parse_path("/ipfs/bafy…/a/b.txt")    # or CID[/path], ipfs://CID[/path]
    r = Resolver(store.get)                               # reads every block through get
    r = Resolver(store.get, NodeCache())                  # … keeping decoded directories
    found = r.resolve_path(root, segments)                # found.cid; found.roots: every step
    node = r.stat(found.cid)                              # exporter.Node (directories cached)
    child = r.lookup(dir_cid, "name")                     # one step, or None (a mount's lookup)

Rules kept here:

1. A path crosses UnixFS directories (flat and HAMT-sharded alike) and DAG-CBOR blocks (IPLD
   pathing through map keys and list indexes, up to a link). ``found.roots`` holds the CID of
   every step from the root, the root first (the gateway's ``X-Ipfs-Roots``; a step inside one
   DAG-CBOR block repeats that block's CID).
2. Errors are the project's: ``PathNotFound`` for a missing name or field or a non-directory in
   the middle of a path; ``UnsupportedCodec`` for a path that ends inside a DAG-CBOR block (not at
   a link) or a block that is neither UnixFS nor DAG-CBOR where a step is needed; whatever the
   getter raises (``BlockNotFound``) and the decoders raise (``DecodeError``). Nothing here knows
   of HTTP: the gateway maps these to statuses at its boundary.
3. Without a cache every block is read through ``get``, once per step, in path order, so a
   recording getter learns exactly the blocks that prove the path (the CAR handler's use).
4. The cache (:class:`NodeCache`) keeps decoded directory nodes and HAMT shards by CID, with a name
   index for flat directories: content under a CID never changes, so entries never go stale; the
   cache only bounds memory, by the blocks' encoded size (an LRU). Files are never cached (they
   are streamed). One cache may be shared by resolvers over the same blocks, from any thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from ipmirror.codec import dagcbor
from ipmirror.codec.cid import CID, DAG_CBOR
from ipmirror.errors import InvalidInput, PathNotFound, UnsupportedCodec
from ipmirror.unixfs import exporter as ex
from ipmirror.unixfs.exporter import Getter, Node

DEFAULT_CACHE_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class ResolvedPath:
    """Where a path led: ``cid`` at its end, ``roots`` the CID of every step (rule 1)."""

    cid: CID
    roots: tuple[CID, ...]


class NodeCache:
    """Decoded directory nodes (and HAMT shards) by CID, with a name index for flat directories
    (rule 4). Without it every request decodes each directory on its path again: a 2,000-entry
    directory costs ~13 ms of CPU per request (docs/benchmarks.md)."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._max = max_bytes
        self._size = 0
        self._items: OrderedDict[bytes, tuple[Node, dict[str, CID] | None]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def _entry(self, get: Getter, cid: CID) -> tuple[Node, dict[str, CID] | None]:
        key = cid.buffer
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        node = ex.stat(get, cid)
        index = ({lk.name or "": lk.hash for lk in node.pb.links}
                 if node.kind == "directory" and node.pb is not None else None)
        if node.is_dir:  # files are streamed, not cached
            with self._lock:
                if key not in self._items:
                    self._items[key] = (node, index)
                    self._size += node.block_size
                    while self._size > self._max and self._items:
                        _k, (old, _i) = self._items.popitem(last=False)
                        self._size -= old.block_size
        return node, index

    def stat(self, get: Getter, cid: CID) -> Node:
        return self._entry(get, cid)[0]

    def child(self, get: Getter, cid: CID, name: str) -> tuple[Node, CID | None]:
        """The node at ``cid`` and its child ``name`` (None: no such entry, or not a directory)."""
        node, index = self._entry(get, cid)
        if index is not None:
            return node, index.get(name)
        if not node.is_dir:
            return node, None
        return node, ex.lookup(get, node, name, self.stat)


def _where(root: CID, segments: Sequence[str]) -> str:
    return "/".join(["/ipfs", str(root), *segments])


def _ipld_step(value: object, seg: str) -> object:
    if isinstance(value, dict) and seg in value:
        return value[seg]
    if isinstance(value, list) and seg.isdigit() and int(seg) < len(value):
        return value[int(seg)]
    raise PathNotFound(f"no field {seg!r}")


class Resolver:
    """Resolves paths below roots, reading blocks through ``get`` (see the module rules)."""

    __slots__ = ("_cache", "_get")

    def __init__(self, get: Getter, cache: NodeCache | None = None) -> None:
        self._get = get
        self._cache = cache

    def stat(self, cid: CID) -> Node:
        """The UnixFS node at ``cid`` (from the cache for directories, when there is one)."""
        if self._cache is not None:
            return self._cache.stat(self._get, cid)
        return ex.stat(self._get, cid)

    def _child(self, cid: CID, name: str) -> tuple[Node, CID | None]:
        if self._cache is not None:
            return self._cache.child(self._get, cid, name)
        node = ex.stat(self._get, cid)
        return node, ex.lookup(self._get, node, name) if node.is_dir else None

    def lookup(self, parent: CID, name: str) -> CID | None:
        """The entry ``name`` of the directory ``parent``; None if there is none (or ``parent`` is
        not a directory: :meth:`stat` tells)."""
        return self._child(parent, name)[1]

    def resolve_path(self, root: CID, segments: Sequence[str]) -> ResolvedPath:
        """Follow ``segments`` (already split, see :func:`split_path`) below ``root``."""
        roots = [root]
        cid = root
        i = 0
        n = len(segments)
        while i < n:
            if cid.codec == DAG_CBOR:
                cid, i = self._cbor_steps(root, segments, cid, i, roots)
                roots.append(cid)
                continue
            seg = segments[i]
            node, child = self._child(cid, seg)
            if not node.is_dir:
                raise PathNotFound(f"{_where(root, segments[:i])} is not a directory "
                                   f"(cannot resolve {seg!r})")
            if child is None:
                raise PathNotFound(f"no link named {seg!r} under {_where(root, segments[:i])}")
            cid = child
            roots.append(cid)
            i += 1
        return ResolvedPath(cid, tuple(roots))

    def _cbor_steps(self, root: CID, segments: Sequence[str], cid: CID, i: int,
                    roots: list[CID]) -> tuple[CID, int]:
        """Steps through one DAG-CBOR block up to the link they reach: ``(link, next index)``."""
        value: object = dagcbor.decode(self._get(cid))
        while True:
            try:
                value = _ipld_step(value, segments[i])
            except PathNotFound:
                raise PathNotFound(f"no field {segments[i]!r} in {cid} (at "
                                   f"{_where(root, segments[:i + 1])})") from None
            i += 1
            if isinstance(value, CID) or i == len(segments):
                break
            roots.append(cid)  # a step inside the same block
        if not isinstance(value, CID):
            raise UnsupportedCodec(f"{_where(root, segments)} ends inside the DAG-CBOR block {cid}, not at "
                                   "a link; pathing into IPLD data is not supported")
        return value, i


def split_path(path: str) -> list[str]:
    """``a//b/`` -> ``["a", "b"]``."""
    return [p for p in path.split("/") if p]


def parse_path(text: str) -> tuple[CID, list[str]]:
    """``CID[/path]``, ``/ipfs/CID[/path]`` or ``ipfs://CID[/path]`` -> ``(root, segments)``."""
    t = text.strip()
    if t.startswith("/ipfs/"):
        t = t[len("/ipfs/"):]
    elif t.startswith("ipfs://"):
        t = t[len("ipfs://"):]
    head, _, rest = t.partition("/")
    if not head:
        raise InvalidInput(f"{text!r} is not a content path (expected CID[/PATH], /ipfs/CID[/PATH] "
                           "or /ipns/NAME[/PATH])")
    return CID.parse(head), split_path(rest)

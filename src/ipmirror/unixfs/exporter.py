"""Reading UnixFS DAGs: node info, streaming file reads with seeking, directory listings and
single-name lookups (flat and HAMT, transparently). Paths are resolved by unixfs/resolve.py.

Usage::

    info = stat(get, cid)
    for chunk in read(get, cid, offset=1000, length=4096): ...
    for e in list_dir(get, cid): print(e.name, e.cid)
    child = lookup(get, info, "name")                 # a CID, or None

``get`` is any ``Callable[[CID], bytes]`` (a block store's ``get``); nothing here knows where
blocks live. Reads never load a whole file: a read at ``offset`` uses the ``blocksizes`` of each
node to skip whole subtrees without fetching them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ipmirror.codec import dagpb
from ipmirror.codec import unixfs_pb as ufs
from ipmirror.codec.cid import CID, DAG_PB, RAW
from ipmirror.errors import DecodeError, UnsupportedCodec, UnsupportedFormat
from ipmirror.unixfs.hamt import bucket, name_hash

Getter = Callable[[CID], bytes]


@dataclass(frozen=True, slots=True)
class Node:
    cid: CID
    kind: str  # file | directory | hamt-sharded-directory | symlink | raw | metadata
    size: int  # file content bytes (0 for directories)
    data: ufs.UnixFSData | None
    pb: dagpb.PBNode | None
    block_size: int
    raw: bytes | None = None  # the block itself, for raw leaves

    @property
    def is_dir(self) -> bool:
        return self.kind in ("directory", "hamt-sharded-directory")

    @property
    def mode(self) -> int | None:
        return self.data.mode if self.data else None

    @property
    def mtime(self) -> ufs.MTime | None:
        return self.data.mtime if self.data else None


@dataclass(frozen=True, slots=True)
class DirEntry:
    name: str
    cid: CID
    tsize: int


def decode_node(cid: CID, block: bytes) -> Node:
    if cid.codec == RAW:
        return Node(cid, "file", len(block), None, None, len(block), block)
    if cid.codec != DAG_PB:
        raise UnsupportedCodec(f"{cid}: codec 0x{cid.codec:x} is not UnixFS")
    node = dagpb.decode(block)
    if node.data is None:
        raise DecodeError(f"{cid}: dag-pb node without UnixFS data")
    data = ufs.UnixFSData.decode(node.data)
    kind = data.type_name
    size = 0
    if data.type in (ufs.FILE, ufs.RAW):
        kind = "file"
        size = data.filesize if data.filesize is not None else len(data.data or b"")
        if len(data.blocksizes) != len(node.links):
            raise DecodeError(f"{cid}: {len(data.blocksizes)} blocksizes for {len(node.links)} links")
    elif data.type == ufs.SYMLINK:
        size = len(data.data or b"")
    return Node(cid, kind, size, data, node, len(block))


def stat(get: Getter, cid: CID) -> Node:
    return decode_node(cid, get(cid))


def read(get: Getter, cid: CID, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
    """Stream file bytes ``[offset, offset+length)``."""
    node = stat(get, cid)
    if node.kind not in ("file", "raw"):
        raise UnsupportedFormat(f"{cid} is a {node.kind}, not a file")
    end = node.size if length is None else min(node.size, offset + length)
    if offset >= end:
        return
    yield from _read_node(get, node, offset, end)


def _read_node(get: Getter, node: Node, start: int, end: int) -> Iterator[bytes]:
    """Bytes ``[start, end)`` relative to this node's content."""
    if node.pb is None:  # raw block: its bytes came with the node
        assert node.raw is not None
        yield node.raw if (start, end) == (0, len(node.raw)) else node.raw[start:end]
        return
    assert node.data is not None
    inline = node.data.data or b""
    pos = 0
    if inline:
        if start < len(inline):
            yield inline[start:min(end, len(inline))]
        pos = len(inline)
    for link, bsize in zip(node.pb.links, node.data.blocksizes, strict=True):
        lo, hi = pos, pos + bsize
        pos = hi
        if hi <= start:
            continue
        if lo >= end:
            break
        child = stat(get, link.hash)
        yield from _read_node(get, child, max(start, lo) - lo, min(end, hi) - lo)


def list_dir(get: Getter, cid: CID, node: Node | None = None) -> Iterator[DirEntry]:
    """Entries of a directory (flat or HAMT), in link order (HAMT: bucket order)."""
    node = node or stat(get, cid)
    if node.kind == "directory":
        assert node.pb is not None
        for lk in node.pb.links:
            yield DirEntry(lk.name or "", lk.hash, lk.tsize or 0)
        return
    if node.kind != "hamt-sharded-directory":
        raise UnsupportedFormat(f"{cid} is a {node.kind}, not a directory")
    yield from _list_hamt(get, node)


def _list_hamt(get: Getter, node: Node) -> Iterator[DirEntry]:
    assert node.pb is not None and node.data is not None and node.data.fanout
    pad = len(f"{node.data.fanout - 1:X}")
    for lk in node.pb.links:
        name = lk.name or ""
        if len(name) < pad:
            raise DecodeError(f"{node.cid}: HAMT link name {name!r} too short")
        if len(name) == pad:
            child = stat(get, lk.hash)
            if child.kind != "hamt-sharded-directory":
                raise DecodeError(f"{node.cid}: HAMT child {lk.hash} is not a shard")
            yield from _list_hamt(get, child)
        else:
            yield DirEntry(name[pad:], lk.hash, lk.tsize or 0)


def lookup(get: Getter, node: Node, name: str,
           stat_fn: Callable[[Getter, CID], Node] | None = None) -> CID | None:
    """The child ``name`` of a directory node, or None. ``stat_fn`` (default :func:`stat`) reads
    HAMT shards, so a caller may cache them."""
    stat_fn = stat_fn or stat
    if node.kind == "directory":
        assert node.pb is not None
        for lk in node.pb.links:
            if lk.name == name:
                return lk.hash
        return None
    if node.kind != "hamt-sharded-directory":
        return None
    h = name_hash(dagpb.name_bytes(name))
    depth = 0
    cur = node
    while True:
        assert cur.pb is not None and cur.data is not None and cur.data.fanout
        fanout = cur.data.fanout
        bits = fanout.bit_length() - 1
        pad = len(f"{fanout - 1:X}")
        prefix = f"{bucket(h, depth, bits):0{pad}X}"
        nxt: CID | None = None
        for lk in cur.pb.links:
            ln = lk.name or ""
            if not ln.startswith(prefix):
                continue
            if len(ln) == pad:
                nxt = lk.hash
                break
            if ln[pad:] == name:
                return lk.hash
        if nxt is None:
            return None
        cur = stat_fn(get, nxt)
        depth += 1

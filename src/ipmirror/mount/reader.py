"""Per-open file state for the mount: one :class:`FileReader` per ``open``, not one per ``read``.

Usage::

    f = FileReader(tree.block, cid, size, root_node)   # tree.block verifies every block
    f.read(offset, 1 << 20)                            # bytes [offset, offset+size) ∩ the file

Rules kept here:

1. A read descends from the file's root by the ``blocksizes`` of each node (a bisection over
   offsets computed once per node), so it touches only the blocks that hold its bytes.
2. The reader keeps the decoded inner nodes of its file (a bounded map) and the last few leaves,
   so sequential reads smaller than a leaf (the kernel's read-ahead window) read each block once.
3. Concurrent reads of one open file (the kernel sends read-ahead in parallel) are safe: the
   caches are guarded by a lock that is never held while a block is read.
4. A file that is one raw block must be exactly ``size`` bytes long (the size may come from a
   link's ``Tsize``): otherwise reads fail (DecodeError) rather than return a cut file.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ipmirror.codec.cid import CID, RAW
from ipmirror.errors import DecodeError
from ipmirror.unixfs import exporter as ex
from ipmirror.unixfs.exporter import Node

Block = Callable[[CID], bytes]
MAX_INNER = 512  # decoded inner nodes kept per open file (1,024 links each: ~0.5 TiB of 1 MiB leaves)
MAX_LEAVES = 4


@dataclass(frozen=True, slots=True)
class _Inner:
    """A file node's layout: its inline bytes, then its children at ``starts`` (relative)."""

    inline: bytes
    starts: list[int]
    cids: list[CID]
    end: int


def _layout(node: Node) -> _Inner:
    if node.pb is None or node.data is None:  # a raw leaf as the root
        raw = node.raw or b""
        return _Inner(raw, [], [], len(raw))
    inline = node.data.data or b""
    starts, pos = [], len(inline)
    for bsize in node.data.blocksizes:
        starts.append(pos)
        pos += bsize
    return _Inner(inline, starts, [lk.hash for lk in node.pb.links], pos)


class FileReader:
    """Reads of one open file (see the module rules)."""

    def __init__(self, block: Block, cid: CID, size: int, node: Node | None = None) -> None:
        self._block = block
        self.cid = cid
        self.size = size
        self._inner: OrderedDict[bytes, _Inner] = OrderedDict()
        self._leaves: OrderedDict[int, bytes] = OrderedDict()  # absolute start -> bytes
        self._lock = threading.Lock()
        if node is not None and node.pb is not None:
            self._inner[cid.buffer] = _layout(node)

    def _inner_of(self, cid: CID) -> _Inner:
        key = cid.buffer
        with self._lock:
            hit = self._inner.get(key)
            if hit is not None:
                self._inner.move_to_end(key)
                return hit
        inner = _layout(ex.decode_node(cid, self._block(cid)))
        with self._lock:
            self._inner[key] = inner
            if len(self._inner) > MAX_INNER:
                self._inner.popitem(last=False)
        return inner

    def _piece_at(self, pos: int) -> tuple[int, bytes]:
        """``(start, bytes)`` of the leaf (or inline data) holding byte ``pos`` of the file."""
        with self._lock:
            for start, data in self._leaves.items():
                if start <= pos < start + len(data):
                    return start, data
        cid, base = self.cid, 0
        while True:
            if cid.codec == RAW:
                data = self._block(cid)
                if cid == self.cid and len(data) != self.size:
                    raise DecodeError(f"{cid}: the block is {len(data)} bytes, its link said {self.size}")
                break
            inner = self._inner_of(cid)
            rel = pos - base
            if rel < len(inner.inline):
                data = inner.inline
                break
            i = bisect.bisect_right(inner.starts, rel) - 1
            if i < 0 or rel >= inner.end:
                raise DecodeError(f"{self.cid}: offset {pos} is beyond the file's blocks")
            cid, base = inner.cids[i], base + inner.starts[i]
        with self._lock:
            self._leaves[base] = data
            if len(self._leaves) > MAX_LEAVES:
                self._leaves.popitem(last=False)
        return base, data

    def read(self, offset: int, size: int) -> bytes:
        end = min(self.size, offset + size)
        pos = max(0, offset)
        out: list[bytes] = []
        while pos < end:
            start, data = self._piece_at(pos)
            lo, hi = pos - start, min(len(data), end - start)
            if hi <= lo:
                raise DecodeError(f"{self.cid}: a block ends before the file's size says")
            out.append(data[lo:hi])
            pos = start + hi
        return out[0] if len(out) == 1 else b"".join(out)

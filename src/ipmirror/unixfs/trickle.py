"""The trickle layout (Kubo ``--trickle``; ipfs-unixfs-importer ``layout: trickle``).

Shape (Go's recursive ``trickle.Layout``; the JS importer builds the same tree)::

    fill(max_depth):                 # the root is fill(unbounded)
        node = up to max_links leaves
        depth = 1
        while depth < max_depth and leaves remain:
            repeat layer_repeat (4) times while leaves remain:
                node += fill(depth)
            depth += 1
        return File node over node's children (own leaves first, then subtrees)

The root is always a File node, even for a one-chunk file; non-raw leaves are UnixFS ``Raw``
(type 0) nodes, as Kubo writes them; an empty file is a File node without links. Every node
carries the file's mode/mtime when they are recorded. Streaming: memory is O(max_links x depth).
"""

from __future__ import annotations

from collections.abc import Iterator

from ipmirror.codec import unixfs_pb as pb
from ipmirror.unixfs.nodes import BlockMaker, Entry


class TrickleBuilder:
    def __init__(self, maker: BlockMaker, max_links: int, layer_repeat: int, raw_leaves: bool,
                 mode: int | None = None, mtime: pb.MTime | None = None) -> None:
        self._maker = maker
        self._max = max_links
        self._repeat = layer_repeat
        self._raw = raw_leaves
        self._mode = mode
        self._mtime = mtime

    def _leaf(self, chunk: bytes) -> Entry:
        if self._raw:
            return self._maker.raw_leaf(chunk)
        return self._maker.pb_leaf(chunk, pb.RAW)

    def build(self, source: Iterator[bytes]) -> Entry:
        self._src = source
        self._next: bytes | None = next(source, None)
        return self._fill(-1)

    def _take(self) -> bytes | None:
        cur = self._next
        if cur is not None:
            self._next = next(self._src, None)
        return cur

    def _fill(self, max_depth: int) -> Entry:
        children: list[Entry] = []
        while len(children) < self._max and self._next is not None:
            chunk = self._take()
            assert chunk is not None
            children.append(self._leaf(chunk))
        depth = 1
        while (max_depth == -1 or depth < max_depth) and self._next is not None:
            for _ in range(self._repeat):
                if self._next is None:
                    break
                children.append(self._fill(depth))
            depth += 1
        return self._maker.file_node(children, self._mode, self._mtime)

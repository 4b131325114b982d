"""The balanced file DAG layout (Kubo's default), streaming; the trickle layout is trickle.py.

Usage::

    b = BalancedBuilder(maker, max_links=174)
    for leaf in leaves: b.add(leaf)
    root = b.finish()

Leaves are grouped ``max_links`` at a time into File nodes, those nodes again, until
one root remains. Groups are closed lazily (only when one more entry arrives), so the root is
always built by ``finish``. This reproduces Kubo's top-down
``balanced.Layout`` exactly, including its chains of one-child nodes on the last branch
(e.g. 5 leaves at width 2 give ``root(D(A(1,2),B(3,4)), E(C(5)))``). Memory: O(width x depth).
"""

from __future__ import annotations

from ipmirror.codec import unixfs_pb as pb
from ipmirror.unixfs.nodes import BlockMaker, Entry


class BalancedBuilder:
    def __init__(self, maker: BlockMaker, max_links: int, mode: int | None = None,
                 mtime: pb.MTime | None = None) -> None:
        self._maker = maker
        self._max = max_links
        self._levels: list[list[Entry]] = [[]]
        self._mode = mode  # ipfs-unixfs-importer puts mode/mtime on every internal node
        self._mtime = mtime

    def _node(self, children: list[Entry]) -> Entry:
        return self._maker.file_node(children, self._mode, self._mtime)

    def _push(self, level: int, entry: Entry) -> None:
        levels = self._levels
        if level == len(levels):
            levels.append([])
        if len(levels[level]) == self._max:
            self._push(level + 1, self._node(levels[level]))
            levels[level] = []
        levels[level].append(entry)

    def add(self, leaf: Entry) -> None:
        self._push(0, leaf)

    @property
    def empty(self) -> bool:
        return not self._levels[0] and len(self._levels) == 1

    def finish(self) -> Entry:
        """Close every level; returns the root. A file of one leaf is that leaf (the importer
        handles metadata on single-chunk files)."""
        levels = self._levels
        if self.empty:
            raise ValueError("finish() without leaves")
        i = 0
        while i < len(levels) - 1:
            if levels[i]:
                self._push(i + 1, self._node(levels[i]))
                levels[i] = []
            i += 1
        top = levels[-1]
        if len(top) == 1 and len(levels) == 1:
            return top[0]
        return self._node(top)

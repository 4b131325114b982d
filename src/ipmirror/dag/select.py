"""Which blocks a CAR answer holds, and in what order (the trustless gateway's block selection:
ipfs/specs trustless-gateway.md, IPIP-402, IPIP-412).

Usage::

    head, rest = select_car_blocks(get, target, path_blocks, "entity", ByteRange(0, 99), dups=False)
    # head: the path blocks and the target (read and checked now); rest: an iterator of the others

Rules kept here:

- The blocks that prove the path come first, in path order, then the target, then the blocks of
  ``dag-scope``: ``block`` the target only, ``entity`` a file's blocks (those of ``entity-bytes``
  only) or a directory with its HAMT shards (not its entries), ``all`` the whole DAG; depth
  first, in link order.
- ``dups=False`` selects a block once, and a block whose whole subtree was selected already is
  not walked again; one selected for part of a file range is walked again when met.
  ``dups=True`` selects a block every time the walk meets it. Identity CIDs are never selected.
- Whatever can fail the request with a status happens before ``select_car_blocks`` returns: the
  target is read (BlockNotFound) and an ``entity-bytes`` range that starts past the end of a file
  is refused (InvalidInput). A block missing later raises from the iterator.
- Blocks are read one at a time as the iterator advances; ``dups=False`` keeps the set of
  selected multihashes, as any dedupe must.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from ipmirror.codec import unixfs_pb as ufs
from ipmirror.codec.cid import CID, DAG_PB, RAW
from ipmirror.dag.walk import links
from ipmirror.errors import DecodeError, InvalidInput
from ipmirror.unixfs import exporter as ex

Getter = Callable[[CID], bytes]
Block = tuple[CID, bytes]
Scope = Literal["block", "entity", "all"]
SCOPES: tuple[Scope, ...] = ("block", "entity", "all")
_INT = re.compile(r"-?[0-9]{1,19}")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """``entity-bytes=from:to``: inclusive offsets, negative from the end; ``to`` None is ``*``."""

    start: int
    stop: int | None

    @classmethod
    def parse(cls, text: str) -> ByteRange:
        a, sep, b = text.partition(":")
        if not sep or not _INT.fullmatch(a) or not (b == "*" or _INT.fullmatch(b)):
            raise InvalidInput(f"entity-bytes must be FROM:TO (integers, TO may be '*'), not {text!r}")
        start, stop = int(a), None if b == "*" else int(b)
        if stop is not None and (start >= 0) == (stop >= 0) and start > stop:
            raise InvalidInput(f"entity-bytes {text!r}: FROM is after TO")
        return cls(start, stop)

    def resolve(self, size: int) -> tuple[int, int]:
        """``[first, end)`` within a file of ``size`` bytes (clamped; may be empty)."""
        first = max(size + self.start, 0) if self.start < 0 else self.start
        last = size - 1 if self.stop is None else (size + self.stop if self.stop < 0 else self.stop)
        return first, min(last, size - 1) + 1

    def __str__(self) -> str:
        return f"{self.start}:{'*' if self.stop is None else self.stop}"


def select_car_blocks(get: Getter, target: CID, path_blocks: list[Block], scope: Scope,
                      rng: ByteRange | None = None,
                      dups: bool = False) -> tuple[list[Block], Iterator[Block]]:
    """``(head, rest)``: the path blocks and the target, then an iterator of the blocks of
    ``scope`` below the target. Reads the target and checks ``rng`` before returning."""
    sel = _Selection(get, dups)
    data = get(target)
    span: tuple[int, int] | None = None
    node: ex.Node | None = None
    if scope == "entity" and target.codec in (DAG_PB, RAW):
        try:
            node = ex.decode_node(target, data)
        except DecodeError:  # dag-pb but not UnixFS: the block is the entity
            node = None
        if node is not None and rng is not None and node.kind == "file":
            span = rng.resolve(node.size)
            if node.size > 0 and span[0] >= node.size:
                raise InvalidInput(f"entity-bytes={rng} starts past the end of the file ({node.size} bytes)")
    head = [(c, d) for c, d in (*path_blocks, (target, data)) if sel.take(c)]
    return head, _rest(sel, target, data, scope, node, span)


def _rest(sel: _Selection, target: CID, data: bytes, scope: Scope, node: ex.Node | None,
          span: tuple[int, int] | None) -> Iterator[Block]:
    if scope == "block":
        return
    if scope == "all":
        yield from sel.walk_all(target, data)
        return
    if node is None or node.pb is None:  # not UnixFS, or a raw leaf: the block is the entity
        return
    if node.kind == "file":
        first, end = span if span is not None else (0, node.size)
        if first < end:
            yield from sel.file_range(node, first, end)
    elif node.kind == "hamt-sharded-directory":
        yield from sel.hamt_shards(node)


class _Selection:
    """The walk with the ``dups`` rule applied (``sent``: blocks selected; ``done``: blocks whose
    whole subtree was selected)."""

    def __init__(self, get: Getter, dups: bool) -> None:
        self.get = get
        self.dups = dups
        self.sent: set[bytes] = set()
        self.done: set[bytes] = set()

    def take(self, cid: CID) -> bool:
        """Whether to select ``cid`` now (never an identity CID; once with ``dups=False``)."""
        if cid.is_identity:
            return False
        if not self.dups:
            if cid.multihash in self.sent:
                return False
            self.sent.add(cid.multihash)
        return True

    def skip(self, cid: CID) -> bool:
        """True if the subtree under ``cid`` was selected whole already (never with ``dups``)."""
        return not self.dups and cid.multihash in self.done

    def whole(self, cid: CID) -> None:
        """Note that the subtree under ``cid`` is being selected whole."""
        if not self.dups:
            self.done.add(cid.multihash)

    def walk_all(self, root: CID, data: bytes) -> Iterator[Block]:
        """Every block below ``root`` (selected already), depth first, in link order. Without
        ``dups`` a block met again is skipped with its subtree (selected whole the first time)."""
        self.whole(root)
        stack = list(reversed(links(root, data)))
        while stack:
            cid = stack.pop()
            if self.skip(cid):
                continue
            block = self.get(cid)
            if self.take(cid):
                yield cid, block
            self.whole(cid)
            stack.extend(reversed(links(cid, block)))

    def file_range(self, node: ex.Node, first: int, end: int) -> Iterator[Block]:
        """The blocks below a file node (selected already) that hold bytes ``[first, end)``:
        intermediate nodes and leaves overlapping the range, depth first (``blocksizes`` skip the
        rest unread)."""
        assert node.pb is not None and node.data is not None
        sizes = node.data.blocksizes
        if len(sizes) != len(node.pb.links):
            raise DecodeError(f"{node.cid}: {len(sizes)} blocksizes for {len(node.pb.links)} links")
        pos = len(node.data.data or b"")
        for link, size in zip(node.pb.links, sizes, strict=True):
            lo, hi = pos, pos + size
            pos = hi
            if hi <= first or lo >= end:
                if lo >= end:
                    break
                continue
            whole = first <= lo and hi <= end
            if self.skip(link.hash):
                continue  # its whole subtree was selected before (no dups)
            data = self.get(link.hash)
            if self.take(link.hash):
                yield link.hash, data
            child = ex.decode_node(link.hash, data)
            if child.pb is None:
                self.whole(link.hash)
            elif whole:
                yield from self.walk_all(link.hash, data)
            else:
                yield from self.file_range(child, max(first, lo) - lo, min(end, hi) - lo)

    def hamt_shards(self, node: ex.Node) -> Iterator[Block]:
        """The shards below a HAMT directory node (selected already), depth first; not the
        entries."""
        assert node.pb is not None and node.data is not None and node.data.fanout
        pad = len(f"{node.data.fanout - 1:X}")
        for lk in node.pb.links:
            if len(lk.name or "") != pad or self.skip(lk.hash):
                continue
            data = self.get(lk.hash)
            child = ex.decode_node(lk.hash, data)
            if child.data is None or child.data.type != ufs.HAMT_SHARD:
                raise DecodeError(f"{node.cid}: HAMT child {lk.hash} is not a shard")
            if self.take(lk.hash):
                yield lk.hash, data
            self.whole(lk.hash)
            yield from self.hamt_shards(child)

"""HAMT-sharded UnixFS directories (murmur3-x64-64, fanout 256 by default), as boxo builds them.

Usage::

    root = build_hamt(maker, entries, fanout=256, mode=None, mtime=None)
    root = update_hamt(maker, HamtUpdate(prev_root, get, {name: entry_or_None}), ...)  # or None
    for name, cid in iter_hamt(get, root_cid): ...      # reading, see unixfs/exporter.py

Shape rules (what makes the CID):
- An entry's hash is the first 64 bits of murmur3-x64-128 of the name bytes (seed 0), taken as a
  big-endian 8-byte string; each level consumes log2(fanout) bits from the most significant end.
- In a node, a bucket holding one entry links to it with the name ``%02X`` + entry name; a bucket
  holding more gets a child shard (built from the next bits) linked with the bare ``%02X``.
- Links go in bucket order; the node's Data is a HAMTShard with the occupied-bucket bitfield as a
  big-endian integer with leading zero bytes dropped, hashType 0x22 and the fanout.
- The shape depends only on the set of names, so building from a sorted list in one pass is the
  same as boxo's insert-one-at-a-time: no quadratic work and no re-encoding per insert.
- So a bucket none of whose names changed (added, removed or given a new entry) is identical to
  the previous HAMT's bucket: ``update_hamt`` copies that link and descends only into buckets
  with a changed name, re-encoding the shards along changed paths and nothing else. It needs the
  changes only, not the directory's other entries: a bucket's entries are read from the previous
  shards when it has to be rebuilt (a shard that shrinks to one entry collapses into a link).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import mmh3

from ipmirror.codec import dagpb
from ipmirror.codec import unixfs_pb as pb
from ipmirror.codec.cid import CID, DAG_PB
from ipmirror.errors import DecodeError
from ipmirror.unixfs.nodes import BlockMaker, Entry

HASH_BITS = 64


def name_hash(name: bytes) -> int:
    """The 64-bit HAMT hash of a name (murmur3-x64-128's h1)."""
    h1, _h2 = mmh3.hash64(name, 0, True, False)
    return int(h1)


def bucket(h: int, depth: int, bits: int) -> int:
    shift = HASH_BITS - bits * (depth + 1)
    if shift < 0:
        raise ValueError("HAMT hash bits exhausted (names collide in all 64 bits)")
    return (h >> shift) & ((1 << bits) - 1)


def bitfield_bytes(indices: Sequence[int]) -> bytes:
    v = 0
    for i in indices:
        v |= 1 << i
    return v.to_bytes((v.bit_length() + 7) // 8, "big")


def shard_data(indices: Sequence[int], fanout: int, mode: int | None = None,
               mtime: pb.MTime | None = None) -> bytes:
    return pb.UnixFSData(pb.HAMT_SHARD, bitfield_bytes(indices), None, (), pb.MURMUR3_X64_64, fanout,
                         mode, mtime).encode()


def build_hamt(maker: BlockMaker, entries: Sequence[tuple[bytes, Entry]], fanout: int = 256,
               mode: int | None = None, mtime: pb.MTime | None = None) -> Entry:
    bits = fanout.bit_length() - 1
    pad = (fanout - 1).bit_length() + 3 >> 2  # hex digits for a bucket index (2 for 256)
    hashed = [(name_hash(n), n, e) for n, e in entries]
    return _node(maker, hashed, 0, bits, fanout, pad, mode, mtime)


def _node(maker: BlockMaker, items: list[tuple[int, bytes, Entry]], depth: int, bits: int,
          fanout: int, pad: int, mode: int | None, mtime: pb.MTime | None) -> Entry:
    buckets: dict[int, list[tuple[int, bytes, Entry]]] = {}
    for it in items:
        buckets.setdefault(bucket(it[0], depth, bits), []).append(it)
    links: list[dagpb.PBLink] = []
    below = 0
    for idx in sorted(buckets):
        group = buckets[idx]
        prefix = f"{idx:0{pad}X}"
        if len(group) == 1:
            _h, name, e = group[0]
            links.append(dagpb.PBLink(e.cid, prefix + name.decode("utf-8", "surrogateescape"), e.tsize))
            below += e.tsize
        else:
            child = _node(maker, group, depth + 1, bits, fanout, pad, None, None)
            links.append(dagpb.PBLink(child.cid, prefix, child.tsize))
            below += child.tsize
    cid, n = maker.node(shard_data(sorted(buckets), fanout, mode, mtime), links)
    return Entry(cid, n + below, 0)


@dataclass(frozen=True, slots=True)
class HamtUpdate:
    """The previous node of a directory, how to read blocks, and the new entry (None: removed) of
    every name that changed since (naming an unchanged name with its entry is harmless; leaving a
    changed name out is not)."""

    prev: CID
    get: Callable[[CID], bytes | None]
    changes: Mapping[bytes, Entry | None]


class _Rebuild(Exception):
    """The previous HAMT cannot be updated (a block missing or malformed): build it whole."""


def update_hamt(maker: BlockMaker, up: HamtUpdate, fanout: int = 256, mode: int | None = None,
                mtime: pb.MTime | None = None) -> Entry | None:
    """The HAMT after ``up.changes``, made by re-encoding only the shards on the changed names'
    paths and copying every other link of ``up.prev``; None when that is not possible (the
    previous node is not a HAMT of this fanout, or one of the blocks needed is missing)."""
    bits = fanout.bit_length() - 1
    pad = (fanout - 1).bit_length() + 3 >> 2
    prev = _shard(up.get, up.prev, fanout, pad)
    if prev is None:
        return None
    changes = [(name_hash(n), n, e) for n, e in up.changes.items()]
    try:
        return _apply(maker, up.get, prev, changes, 0, bits, fanout, pad, mode, mtime)
    except _Rebuild:
        return None


# A previous shard's links as (name, tsize, CID bytes, encoded link): unchanged links are copied
# as encoded bytes, so updating a shard of ~100 links does not decode and re-encode them all.
_Raw = dagpb.RawLink


def _shard(get: Callable[[CID], bytes | None], cid: CID, fanout: int, pad: int) -> dict[int, _Raw] | None:
    """The links of the HAMT shard at ``cid`` by bucket, if it is one of this fanout; else None."""
    block = get(cid)
    if block is None or cid.codec != DAG_PB:
        return None
    try:
        links, data = dagpb.split(block)
        d = pb.UnixFSData.decode(data)
    except DecodeError:
        return None
    if d.type != pb.HAMT_SHARD or d.fanout != fanout or d.hash_type != pb.MURMUR3_X64_64:
        return None
    out: dict[int, _Raw] = {}
    for link in links:
        prefix = link[0][:pad]
        if len(prefix) != pad or any(c not in "0123456789ABCDEF" for c in prefix):
            return None
        out[int(prefix, 16)] = link
    return out


def _encoded(cid: CID, name: str, tsize: int) -> bytes:
    return dagpb.encode_link(dagpb.PBLink(cid, name, tsize))


def _leaves(get: Callable[[CID], bytes | None], links: dict[int, _Raw], fanout: int,
            pad: int) -> dict[bytes, Entry]:
    """Every entry under a shard."""
    out: dict[bytes, Entry] = {}
    for name, tsize, cid, _raw in links.values():
        if len(name) > pad:
            out[name[pad:].encode("utf-8", "surrogateescape")] = Entry(CID.from_bytes(cid), tsize, 0)
        else:
            sub = _shard(get, CID.from_bytes(cid), fanout, pad)
            if sub is None:
                raise _Rebuild
            out.update(_leaves(get, sub, fanout, pad))
    return out


def _apply(maker: BlockMaker, get: Callable[[CID], bytes | None], links: dict[int, _Raw],
           changes: list[tuple[int, bytes, Entry | None]], depth: int, bits: int, fanout: int, pad: int,
           mode: int | None, mtime: pb.MTime | None) -> Entry:
    dirty: dict[int, list[tuple[int, bytes, Entry | None]]] = {}
    for ch in changes:
        dirty.setdefault(bucket(ch[0], depth, bits), []).append(ch)
    for idx, group in dirty.items():
        prefix = f"{idx:0{pad}X}"
        link = links.get(idx)
        sub = None
        if link is not None and len(link[0]) == pad:
            sub = _shard(get, CID.from_bytes(link[2]), fanout, pad)
            if sub is None:
                raise _Rebuild
            removals = sum(1 for ch in group if ch[2] is None)
            if len(sub) - removals >= 2:  # at least two entries stay: still a shard
                child = _apply(maker, get, sub, group, depth + 1, bits, fanout, pad, None, None)
                links[idx] = (prefix, child.tsize, b"", _encoded(child.cid, prefix, child.tsize))
                continue
        # a bucket that held one entry, none, or a shard that may shrink to one: its entries
        items: dict[bytes, Entry] = {}
        if sub is not None:
            items = _leaves(get, sub, fanout, pad)
        elif link is not None:
            key = link[0][pad:].encode("utf-8", "surrogateescape")
            items[key] = Entry(CID.from_bytes(link[2]), link[1], 0)
        for _h, name, e in group:
            if e is None:
                items.pop(name, None)
            else:
                items[name] = e
        if not items:
            links.pop(idx, None)
        elif len(items) == 1:
            ((only, e),) = items.items()
            text = prefix + only.decode("utf-8", "surrogateescape")
            links[idx] = (text, e.tsize, b"", _encoded(e.cid, text, e.tsize))
        else:
            child = _node(maker, [(name_hash(n), n, e) for n, e in sorted(items.items())], depth + 1, bits,
                          fanout, pad, None, None)
            links[idx] = (prefix, child.tsize, b"", _encoded(child.cid, prefix, child.tsize))
    order = sorted(links)
    data = shard_data(order, fanout, mode, mtime)
    block = dagpb.join([links[i][3] for i in order], data)
    return Entry(maker.make(DAG_PB, block), len(block) + sum(links[i][1] for i in order), 0)

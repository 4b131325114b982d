"""Directory nodes: flat, or a HAMT when the profile's size estimate says so.

Usage::

    entry = build_directory(maker, profile, [(b"name", child_entry), ...], mode=None, mtime=None)

The estimate is computed over the final children (every child counts, subdirectories included,
as Kubo does):
- ``links-bytes``: sum of (name bytes + CID bytes) over the links (boxo v0.11, Kubo 0.22);
- ``block-bytes``: the exact length of the flat directory block that would be written (IPIP-499).
"""

from __future__ import annotations

from collections.abc import Sequence

from ipmirror.codec import dagpb, varint
from ipmirror.codec import unixfs_pb as pb
from ipmirror.unixfs.hamt import HamtUpdate, build_hamt, update_hamt
from ipmirror.unixfs.nodes import BlockMaker, Entry, dir_mode, file_mode
from ipmirror.unixfs.profile import Profile


def dir_data(mode: int | None, mtime: pb.MTime | None) -> bytes:
    return pb.UnixFSData(pb.DIRECTORY, mode=dir_mode(mode), mtime=mtime).encode()


def estimate(profile: Profile, children: Sequence[tuple[bytes, Entry]], data: bytes) -> int:
    if profile.hamt_estimate == "links-bytes":
        return sum(len(n) + len(e.cid.buffer) for n, e in children)
    total = 1 + varint.size(len(data)) + len(data)
    for n, e in children:
        total += dagpb.encoded_link_size(len(e.cid.buffer), len(n), e.tsize)
    return total


def build_directory(maker: BlockMaker, profile: Profile, children: Sequence[tuple[bytes, Entry]],
                    mode: int | None = None, mtime: pb.MTime | None = None,
                    update: HamtUpdate | None = None) -> Entry:
    """``children`` as ``(name bytes, entry)``; names must be unique. With ``update`` (the
    directory's previous node and the names that changed since), a HAMT is rebuilt only along the
    changed names' paths."""
    items = sorted(children, key=lambda c: c[0])
    data = dir_data(mode, mtime)
    if profile.shards(estimate(profile, items, data)):
        if update is not None:
            entry = update_hamt(maker, items, update, profile.hamt_fanout, dir_mode(mode), mtime)
            if entry is not None:
                return entry
        return build_hamt(maker, items, profile.hamt_fanout, dir_mode(mode), mtime)
    links = [dagpb.PBLink(e.cid, n.decode("utf-8", "surrogateescape"), e.tsize) for n, e in items]
    cid, size = maker.node(data, links)
    return Entry(cid, size + sum(e.tsize for _, e in items), 0)


def symlink(maker: BlockMaker, target: bytes, mode: int | None = None,
            mtime: pb.MTime | None = None) -> Entry:
    data = pb.UnixFSData(pb.SYMLINK, target, mode=file_mode(mode), mtime=mtime).encode()
    cid, size = maker.node(data, ())
    return Entry(cid, size, 0)

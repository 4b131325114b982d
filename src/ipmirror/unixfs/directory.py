"""Directory nodes: flat, or a HAMT when the profile's size estimate says so.

Usage::

    entry = build_directory(maker, profile, [(b"name", child_entry), ...], mode=None, mtime=None)
    entry, size = build_directory_sized(...)              # and the estimate, to update it later
    entry, size = update_directory(maker, profile, prev_cid, prev_size, get, changes) or build...

The estimate is computed over the final children (every child counts, subdirectories included,
as Kubo does):
- ``links-bytes``: sum of (name bytes + CID bytes) over the links (boxo v0.11, Kubo 0.22);
- ``block-bytes``: the exact length of the flat directory block that would be written (IPIP-499).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ipmirror.codec import dagpb
from ipmirror.codec import unixfs_pb as pb
from ipmirror.codec.cid import CID, DAG_PB
from ipmirror.errors import DecodeError
from ipmirror.unixfs.hamt import HamtUpdate, build_hamt, update_hamt
from ipmirror.unixfs.nodes import BlockMaker, Entry, dir_mode, file_mode
from ipmirror.unixfs.profile import Profile


def dir_data(mode: int | None, mtime: pb.MTime | None) -> bytes:
    return pb.UnixFSData(pb.DIRECTORY, mode=dir_mode(mode), mtime=mtime).encode()


def link_cost(profile: Profile, name: bytes, e: Entry) -> int:
    """One child's share of the size estimate."""
    if profile.hamt_estimate == "links-bytes":
        return len(name) + len(e.cid.buffer)
    return dagpb.encoded_link_size(len(e.cid.buffer), len(name), e.tsize)


def estimate(profile: Profile, children: Sequence[tuple[bytes, Entry]], data: bytes) -> int:
    base = 0 if profile.hamt_estimate == "links-bytes" else dagpb.encoded_data_size(len(data))
    return base + sum(link_cost(profile, n, e) for n, e in children)


def build_directory(maker: BlockMaker, profile: Profile, children: Sequence[tuple[bytes, Entry]],
                    mode: int | None = None, mtime: pb.MTime | None = None) -> Entry:
    """``children`` as ``(name bytes, entry)``; names must be unique."""
    return build_directory_sized(maker, profile, children, mode, mtime)[0]


def build_directory_sized(maker: BlockMaker, profile: Profile, children: Sequence[tuple[bytes, Entry]],
                          mode: int | None = None, mtime: pb.MTime | None = None) -> tuple[Entry, int]:
    """:func:`build_directory`, and the size estimate that chose flat or HAMT (keep it to
    :func:`update_directory` the node later)."""
    items = sorted(children, key=lambda c: c[0])
    data = dir_data(mode, mtime)
    size = estimate(profile, items, data)
    if profile.shards(size):
        return build_hamt(maker, items, profile.hamt_fanout, dir_mode(mode), mtime), size
    links = [dagpb.PBLink(e.cid, n.decode("utf-8", "surrogateescape"), e.tsize) for n, e in items]
    cid, n = maker.node(data, links)
    return Entry(cid, n + sum(e.tsize for _, e in items), 0), size


def update_directory(maker: BlockMaker, profile: Profile, prev: CID, prev_size: int,
                     get: Callable[[CID], bytes | None],
                     changes: Mapping[bytes, tuple[Entry | None, Entry | None]],
                     mode: int | None = None, mtime: pb.MTime | None = None) -> tuple[Entry, int] | None:
    """The directory whose previous node was ``prev`` (with size estimate ``prev_size``) after
    ``changes`` (name -> (old entry, new entry), None for absent), without looking at its other
    children: when it stays a HAMT, only the shards along the changed names are re-encoded; when
    it stays flat, its unchanged links are copied as encoded bytes. None when the node has to be
    built from all children instead (it switches between flat and HAMT, or the previous node
    cannot be read)."""
    size = prev_size
    for name, (old, new) in changes.items():
        size += (link_cost(profile, name, new) if new is not None else 0) \
            - (link_cost(profile, name, old) if old is not None else 0)
    was, now = profile.shards(prev_size), profile.shards(size)
    if was != now:
        return None  # it switches form: build it from all children
    news = {n: new for n, (_old, new) in changes.items()}
    if now:
        entry = update_hamt(maker, HamtUpdate(prev, get, news), profile.hamt_fanout, dir_mode(mode), mtime)
    else:
        entry = _update_flat(maker, prev, get, news, dir_data(mode, mtime))
    return (entry, size) if entry is not None else None


def _update_flat(maker: BlockMaker, prev: CID, get: Callable[[CID], bytes | None],
                 changes: Mapping[bytes, Entry | None], data: bytes) -> Entry | None:
    """A flat directory node from the previous one: unchanged links copied as encoded bytes,
    changed ones encoded; None if the previous node is not a flat UnixFS directory."""
    block = get(prev)
    if block is None or prev.codec != DAG_PB:
        return None
    try:
        links, old_data = dagpb.split(block)
        if pb.UnixFSData.decode(old_data).type != pb.DIRECTORY:
            return None
    except DecodeError:
        return None
    byname = {name.encode("utf-8", "surrogateescape"): (tsize, raw) for name, tsize, _h, raw in links}
    for name, e in changes.items():
        if e is None:
            byname.pop(name, None)
        else:
            text = name.decode("utf-8", "surrogateescape")
            byname[name] = (e.tsize, dagpb.encode_link(dagpb.PBLink(e.cid, text, e.tsize)))
    order = sorted(byname)
    out = dagpb.join([byname[n][1] for n in order], data)
    return Entry(maker.make(DAG_PB, out), len(out) + sum(byname[n][0] for n in order), 0)


def symlink(maker: BlockMaker, target: bytes, mode: int | None = None,
            mtime: pb.MTime | None = None) -> Entry:
    data = pb.UnixFSData(pb.SYMLINK, target, mode=file_mode(mode), mtime=mtime).encode()
    cid, size = maker.node(data, ())
    return Entry(cid, size, 0)

"""Building UnixFS blocks: the pieces every layout and directory builder shares.

An imported node is described by :class:`Entry` (its CID, the cumulative DAG size that parents put
in the link's Tsize, and the file content size it covers). :class:`BlockMaker` turns encoded
bytes into a CID under a profile (sha2-256, or identity when inlining applies) and hands the block
to a sink.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ipmirror.codec import dagpb
from ipmirror.codec import unixfs_pb as pb
from ipmirror.codec.cid import CID, DAG_PB, RAW, multihash_identity, multihash_sha256
from ipmirror.unixfs.profile import Profile

Sink = Callable[[CID, bytes], object]
RefSink = Callable[[CID, bytes, int, int], object]  # (cid, file path, offset, length)


@dataclass(frozen=True, slots=True)
class Entry:
    """A node made by the importer."""

    cid: CID
    tsize: int  # cumulative size: this block plus everything below (a parent's link Tsize)
    size: int  # file content bytes covered (0 for directories and symlinks)


class BlockMaker:
    """Hashes blocks under a profile and passes them on to ``sink``."""

    __slots__ = ("_inline", "_limit", "_node_version", "sink")

    def __init__(self, profile: Profile, sink: Sink) -> None:
        self._node_version = profile.cid_version
        self._inline = profile.inline
        self._limit = profile.inline_limit
        self.sink = sink

    def make(self, codec: int, block: bytes) -> CID:
        if self._inline and len(block) <= self._limit:
            return CID(1, codec, multihash_identity(block))  # identity: nothing to store
        mh = multihash_sha256(block)
        cid = CID(self._node_version if codec == DAG_PB else 1, codec, mh)
        self.sink(cid, block)
        return cid

    def raw_leaf(self, chunk: bytes) -> Entry:
        return Entry(self.make(RAW, chunk), len(chunk), len(chunk))

    def raw_ref(self, chunk: bytes, ref_sink: RefSink, path: bytes, offset: int) -> Entry:
        """A raw leaf whose bytes stay in ``path`` at ``offset`` (no-copy): only a reference is
        handed on; leaves small enough to inline need none."""
        n = len(chunk)
        if self._inline and n <= self._limit:
            return Entry(CID(1, RAW, multihash_identity(chunk)), n, n)
        cid = CID(1, RAW, multihash_sha256(chunk))
        ref_sink(cid, path, offset, n)
        return Entry(cid, n, n)

    def pb_leaf(self, chunk: bytes, leaf_type: int = pb.FILE) -> Entry:
        block = dagpb.encode_links((), pb.file_leaf(chunk, leaf_type))
        return Entry(self.make(DAG_PB, block), len(block), len(chunk))

    def node(self, data: bytes, links: Sequence[dagpb.PBLink]) -> tuple[CID, int]:
        """Encode a dag-pb node; return its CID and the encoded block length."""
        block = dagpb.encode_links(links, data)
        return self.make(DAG_PB, block), len(block)

    def file_node(self, children: Sequence[Entry], mode: int | None = None,
                  mtime: pb.MTime | None = None) -> Entry:
        """A File node over ``children`` (leaves or other file nodes). Empty children are left
        out, as ipfs-unixfs-importer does."""
        kids = [c for c in children if c.size > 0]
        sizes = tuple(c.size for c in kids)
        total = sum(sizes)
        data = pb.UnixFSData(pb.FILE, None, total, sizes, mode=file_mode(mode), mtime=mtime).encode()
        links = [dagpb.PBLink(c.cid, "", c.tsize) for c in kids]
        cid, n = self.node(data, links)
        return Entry(cid, n + sum(c.tsize for c in kids), total)

    def file_with_data(self, chunk: bytes, mode: int | None, mtime: pb.MTime | None) -> Entry:
        """A one-block File node holding ``chunk`` and metadata (a single-chunk file whose
        metadata cannot live on a raw leaf)."""
        data = pb.UnixFSData(pb.FILE, chunk, len(chunk), mode=file_mode(mode), mtime=mtime).encode()
        cid, n = self.node(data, ())
        return Entry(cid, n, len(chunk))


DEFAULT_FILE_MODE = 0o644
DEFAULT_DIR_MODE = 0o755


def file_mode(mode: int | None) -> int | None:
    """Mode as written on files and symlinks: the default 0644 is left out (ipfs-unixfs)."""
    return None if mode is None or mode == DEFAULT_FILE_MODE else mode


def dir_mode(mode: int | None) -> int | None:
    """Mode as written on directories: the default 0755 is left out (ipfs-unixfs)."""
    return None if mode is None or mode == DEFAULT_DIR_MODE else mode

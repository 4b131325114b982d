"""Cached artifacts as UnixFS files in the block store (blocking code: call it on a thread).

Usage::

    cid = import_artifact(store, profile, fd)        # the file's bytes from offset 0; pinned for "cache"
    raw_cid(sha256_hex)                              # a one-block file's CID follows from its hash
    size_of(store, cid); read(store, cid, start, end)

Rules: artifacts are imported with the repository's profile through the importer's own layout
code, so ``ipfs add`` of the same file with the same profile gives the same CID; each is pinned
with the owner ``cache`` (``repo gc`` keeps it; LRU eviction drops that pin and nothing else's).
A raw block keyed by the sha256 multihash of a file *is* that file, whatever profile stored it:
that is how bytes a mirror or another cache holds are found without going upstream.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ipmirror.codec.cid import CID, RAW, SHA2_256
from ipmirror.codec.varint import encode as varint
from ipmirror.store.base import Store
from ipmirror.unixfs import exporter
from ipmirror.unixfs.chunker import chunks
from ipmirror.unixfs.importer import import_chunks
from ipmirror.unixfs.nodes import BlockMaker
from ipmirror.unixfs.profile import Profile

OWNER = "cache"


def raw_cid(sha256_hex: str) -> CID:
    digest = bytes.fromhex(sha256_hex)
    return CID(1, RAW, varint(SHA2_256) + varint(len(digest)) + digest)


def import_artifact(store: Store, profile: Profile, fd: int) -> CID:
    os.lseek(fd, 0, os.SEEK_SET)
    with store.session() as s:
        maker = BlockMaker(profile, s.put)
        entry = import_chunks(maker, profile, chunks(fd, profile.chunker), None, None)
        s.pin(entry.cid, "recursive", owner=OWNER)
    return entry.cid


def unpin(store: Store, cid: CID) -> bool:
    """Drop the cache's pin; True if nobody else holds one (the blocks go at the next ``repo gc``)."""
    store.pin_rm(cid, owner=OWNER)
    return not store.pin_holders(cid)


def pinned_by_others(store: Store, cid: CID) -> bool:
    return any(h != OWNER for h in store.pin_holders(cid))


def size_of(store: Store, cid: CID) -> int:
    return exporter.stat(store.get, cid).size


def read(store: Store, cid: CID, start: int, end: int) -> Iterator[bytes]:
    return exporter.read(store.get, cid, start, end - start)

"""Updating a HAMT along changed paths gives exactly the HAMT built from scratch, and writes only
the shards on those paths."""

from __future__ import annotations

import bisect
import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _stores import BACKENDS, open_store
from ipmirror.codec import dagpb
from ipmirror.codec.cid import CID
from ipmirror.codec.unixfs_pb import HAMT_SHARD, UnixFSData
from ipmirror.mirror.db import MirrorDB
from ipmirror.mirror.manager import Mirrors
from ipmirror.store.base import Store
from ipmirror.unixfs.directory import dir_data, estimate
from ipmirror.unixfs.hamt import HamtUpdate, bucket, build_hamt, name_hash, update_hamt
from ipmirror.unixfs.importer import AddOptions, Importer
from ipmirror.unixfs.nodes import BlockMaker, Entry
from ipmirror.unixfs.profile import PRESETS

PROFILE = PRESETS["unixfs-v1-2025"]


def leaf(name: bytes, version: int = 0) -> Entry:
    maker = BlockMaker(PROFILE, lambda c, d: None)
    return maker.raw_leaf(hashlib.sha256(name + b"%d" % version).digest())


class Blocks(dict[CID, bytes]):
    def put(self, cid: CID, data: bytes) -> None:
        self[cid] = data


def build(entries: dict[bytes, Entry], fanout: int, blocks: Blocks) -> Entry:
    return build_hamt(BlockMaker(PROFILE, blocks.put), sorted(entries.items()), fanout)


def shard_count(blocks: Blocks, root: CID) -> int:
    n, todo = 0, [root]
    while todo:
        node = dagpb.decode(blocks[todo.pop()])
        n += 1
        todo += [link.hash for link in node.links if link.hash in blocks]
    return n


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 400), fanout=st.sampled_from([8, 16, 256]),
       edits=st.lists(st.tuples(st.sampled_from(["add", "del", "mod"]), st.integers(0, 10**6)),
                      max_size=40),
       extra=st.lists(st.integers(0, 500), max_size=5))
def test_update_equals_rebuild(n: int, fanout: int, edits: list[tuple[str, int]], extra: list[int]) -> None:
    old = {b"pkg-%d" % i: leaf(b"pkg-%d" % i) for i in range(n)}
    blocks = Blocks()
    prev = build(old, fanout, blocks)
    new = dict(old)
    changed: set[bytes] = set()
    names = sorted(old)
    for op, k in edits:
        if op == "add" or not names:
            name = b"new-%d" % k
            new[name] = leaf(name, 1)
        else:
            name = names[k % len(names)]
            if op == "del":
                new.pop(name, None)
            else:
                new[name] = leaf(name, k + 2)
        changed.add(name)
    changed |= {b"pkg-%d" % k for k in extra}  # naming unchanged names too is allowed
    changes = {name: new.get(name) for name in changed}
    got = update_hamt(BlockMaker(PROFILE, Blocks().put), HamtUpdate(prev.cid, blocks.get, changes), fanout)
    assert got == build(new, fanout, Blocks())


def test_only_changed_shards_are_written() -> None:
    old = {b"%064x" % i: leaf(b"%d" % i) for i in range(25_000)}
    blocks = Blocks()
    prev = build(old, 256, blocks)
    total = shard_count(blocks, prev.cid)
    new = dict(old)
    picked = list(old)[:100:2]
    for name in picked[:25]:
        new[name] = leaf(name, 7)
    for name in picked[25:]:
        del new[name]
    new[b"f" * 64] = leaf(b"f", 1)
    changed = {*picked, b"f" * 64}
    written = Blocks()
    got = update_hamt(BlockMaker(PROFILE, written.put),
                      HamtUpdate(prev.cid, blocks.get, {n: new.get(n) for n in changed}), 256)
    assert got == build(new, 256, Blocks())
    assert total > 3000
    assert 0 < len(written) <= 1 + 2 * len(changed)  # the root, and at most two shards per change


def test_shrinking_buckets_collapse() -> None:
    """Removing all but one name of a sub-shard turns it back into a link; all but none drops
    the bucket."""
    entries = {b"n%d" % i: leaf(b"%d" % i) for i in range(200)}
    blocks = Blocks()
    prev = build(entries, 16, blocks)
    root = dagpb.decode(blocks[prev.cid])
    shard = next(link for link in root.links if len(link.name or "") == 1)
    names = [n for n in entries if top_bucket(n, 16) == int(shard.name or "", 16)]
    for keep in (1, 0):
        changes: dict[bytes, Entry | None] = {n: None for n in names[keep:]}
        left = {n: e for n, e in entries.items() if n not in changes}
        got = update_hamt(BlockMaker(PROFILE, Blocks().put), HamtUpdate(prev.cid, blocks.get, changes), 16)
        assert got == build(left, 16, Blocks())


def test_not_a_hamt_or_missing_blocks_give_none() -> None:
    entries = {b"n%d" % i: leaf(b"%d" % i) for i in range(300)}
    blocks = Blocks()
    prev = build(entries, 16, blocks)
    maker = BlockMaker(PROFILE, lambda c, d: None)
    one = {b"n1": leaf(b"x")}
    # another fanout, or a missing root: no update possible
    assert update_hamt(maker, HamtUpdate(prev.cid, blocks.get, one), 256) is None
    assert update_hamt(maker, HamtUpdate(prev.cid, {}.get, one), 16) is None
    # a missing shard on a changed path
    root = dagpb.decode(blocks[prev.cid])
    gone = next(link for link in root.links if len(link.name or "") == 1)
    partial = Blocks({c: d for c, d in blocks.items() if c != gone.hash})
    name = next(n for n in entries if top_bucket(n, 16) == int(gone.name or "", 16))
    assert update_hamt(maker, HamtUpdate(prev.cid, partial.get, {name: leaf(b"y")}), 16) is None
    # ... but not on the changed path: fine
    other = next(n for n in entries if top_bucket(n, 16) != int(gone.name or "", 16))
    entries[other] = leaf(b"z")
    assert update_hamt(maker, HamtUpdate(prev.cid, partial.get, {other: entries[other]}), 16) == \
        build(entries, 16, Blocks())


def top_bucket(name: bytes, fanout: int) -> int:
    return bucket(name_hash(name), 0, fanout.bit_length() - 1)


# -- through mirror sync -----------------------------------------------------------------------

@pytest.fixture(params=BACKENDS)
def hamt_mirror(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, Store, Mirrors, MirrorDB]:
    src = tmp_path / "src" / "flat"
    src.mkdir(parents=True)
    for i in range(6000):
        (src / f"package-{i:05d}.tar.gz").write_bytes(b"%d" % i)
    old = os.stat(src).st_mtime - 10
    for p in [src, *src.iterdir()]:
        os.utime(p, (old, old))
    store = open_store(request.param, tmp_path)
    db = MirrorDB.open(tmp_path / "mirrors")
    mirrors = Mirrors(db, store)
    mirrors.add("m", str(tmp_path / "src"), profile="unixfs-v0-2015")
    return tmp_path / "src", store, mirrors, db


def full_add(src: Path, profile: str = "unixfs-v0-2015") -> str:
    (root,) = Importer(AddOptions(PRESETS[profile])).add_paths([src])
    return str(root.cid)


def test_sync_rewrites_only_changed_shards(hamt_mirror: tuple[Path, Store, Mirrors, MirrorDB]) -> None:
    src, store, mirrors, db = hamt_mirror
    try:
        v1 = mirrors.sync("m")
        assert v1.put_blocks > 6000 + 250  # every file, and the ~260 shards
        flat = src / "flat"
        (flat / "package-00042.tar.gz").write_bytes(b"new bytes")
        (flat / "package-04242.tar.gz").unlink()
        (flat / "package-99999.tar.gz").write_bytes(b"added")
        old = os.stat(flat).st_mtime - 10
        for p in (flat / "package-00042.tar.gz", flat / "package-99999.tar.gz"):
            os.utime(p, (old, old))
        v2 = mirrors.sync("m")
        assert v2.root == full_add(src) and v2.read_files == 2
        # 2 file blocks, the root directory, the root shard and at most 2 more shards per changed
        # name (of about 260)
        assert v2.put_blocks <= 2 + 1 + 1 + 2 * 3
        v3 = mirrors.sync("m")  # no-op
        assert v3.root == v2.root and v3.read_files == 0 and v3.put_blocks == 0
    finally:
        db.close()
        store.close()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("profile", ["unixfs-v0-2015", "unixfs-v1-2025"])
def test_sync_across_the_hamt_threshold(tmp_path: Path, profile: str, backend: str) -> None:
    """A directory that grows into a HAMT, is updated as one, and shrinks back to a flat node:
    every version equals a full add (the size estimate kept in the index stays exact)."""
    src = tmp_path / "src"
    flat = src / "d"
    flat.mkdir(parents=True)
    long = "x" * 200

    def name(i: int) -> str:
        return f"{long}-{i:05d}"

    prof = PRESETS[profile]
    maker = BlockMaker(prof, lambda c, d: None)
    one = maker.raw_leaf(b"1") if prof.raw_leaves else maker.pb_leaf(b"1")
    items = [(name(i).encode(), one) for i in range(3000)]
    limit = bisect.bisect_left(range(3000), True,  # the first count that makes a HAMT
                               key=lambda n: prof.shards(estimate(prof, items[:n], dir_data(None, None))))
    assert 500 < limit < 2000
    store = open_store(backend, tmp_path)
    db = MirrorDB.open(tmp_path / "mirrors")
    try:
        mirrors = Mirrors(db, store)
        mirrors.add("m", str(src), profile=profile)
        old = os.stat(flat).st_mtime - 10
        present: set[int] = set()
        for count in (limit - 100, limit + 50, limit + 100, limit + 30, limit + 5, limit - 1, limit,
                      limit + 40, limit - 200):
            for i in list(present):
                if i >= count:
                    (flat / name(i)).unlink()
                    present.discard(i)
            for i in range(count):
                if i not in present:
                    p = flat / name(i)
                    p.write_bytes(b"%d" % i)
                    os.utime(p, (old, old))
                    present.add(i)
            p = flat / name(count // 2)  # and one modified
            p.write_bytes(b"changed %d" % count)
            os.utime(p, (old, old))
            v = mirrors.sync("m", force=True)  # removes more than --max-delete's 20% at times
            assert v.root == full_add(src, profile), count
            assert is_hamt(store, v.root, "d") == (count >= limit), count
    finally:
        db.close()
        store.close()


def is_hamt(store: Store, root: str, name: str) -> bool:
    top = dagpb.decode(store.get(CID.parse(root)))
    (link,) = [link for link in top.links if link.name == name]
    data = UnixFSData.decode(dagpb.decode(store.get(link.hash)).data or b"")
    return data.type == HAMT_SHARD

"""The one path resolver (unixfs/resolve.py) over trees made by the real importer: flat and HAMT
directories, DAG-CBOR links, the errors it raises, the blocks it reads (in path order, for CAR
proofs) and its decoded-directory cache."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from ipmirror.codec import dagcbor
from ipmirror.codec.cid import CID, DAG_CBOR
from ipmirror.errors import BlockNotFound, InvalidCID, PathNotFound, UnsupportedCodec
from ipmirror.store.memory import MemoryStore
from ipmirror.unixfs import exporter as ex
from ipmirror.unixfs.importer import AddOptions, Importer
from ipmirror.unixfs.profile import PRESETS
from ipmirror.unixfs.resolve import NodeCache, ResolvedPath, Resolver, parse_path, split_path

# shards every directory with more than a few entries, at a fanout small enough for several levels
SHARDING = dataclasses.replace(PRESETS["unixfs-v1-2025"], hamt_threshold=64, hamt_fanout=8)


class Counting:
    """A getter that records every CID it was asked for, in order."""

    def __init__(self, get: Callable[[CID], bytes]) -> None:
        self._get = get
        self.asked: list[CID] = []

    def __call__(self, cid: CID) -> bytes:
        self.asked.append(cid)
        return self._get(cid)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[MemoryStore, CID]:
    """``top/`` with ``a/b/c.txt``, ``big/`` (200 entries, a HAMT) and ``file.txt``."""
    src = tmp_path / "top"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "c.txt").write_bytes(b"c" * 10)
    (src / "big").mkdir()
    for i in range(200):
        (src / "big" / f"entry-{i:03}").write_bytes(str(i).encode())
    (src / "file.txt").write_bytes(b"hello")
    store = MemoryStore()
    (root,) = Importer(AddOptions(SHARDING), lambda c, d: store.put_many([(c, d)])).add_paths([src])
    return store, root.cid


def _children(store: MemoryStore, cid: CID) -> dict[str, CID]:
    return {e.name: e.cid for e in ex.list_dir(store.get, cid)}


@pytest.mark.parametrize("cached", [False, True])
def test_paths_through_flat_and_hamt_directories(tree: tuple[MemoryStore, CID], cached: bool) -> None:
    store, root = tree
    r = Resolver(store.get, NodeCache() if cached else None)
    assert ex.stat(store.get, _children(store, root)["big"]).kind == "hamt-sharded-directory"
    a = _children(store, root)["a"]
    b = _children(store, a)["b"]
    c = _children(store, b)["c.txt"]
    found = r.resolve_path(root, ["a", "b", "c.txt"])
    assert (found.cid, found.roots) == (c, (root, a, b, c))
    assert b"".join(ex.read(store.get, found.cid)) == b"c" * 10
    big = _children(store, root)["big"]
    for i in (0, 77, 199):
        name = f"entry-{i:03}"
        found = r.resolve_path(root, ["big", name])
        assert found.cid == _children(store, big)[name] and found.roots == (root, big, found.cid)
        assert b"".join(ex.read(store.get, found.cid)) == str(i).encode()
        assert r.lookup(big, name) == found.cid
    assert r.resolve_path(root, []) == ResolvedPath(root, (root,))
    assert r.lookup(big, "entry-200") is None and r.lookup(root, "nope") is None
    assert r.stat(big).is_dir and r.stat(c).kind == "file"


@pytest.mark.parametrize("cached", [False, True])
def test_errors_are_the_projects(tree: tuple[MemoryStore, CID], cached: bool) -> None:
    store, root = tree
    r = Resolver(store.get, NodeCache() if cached else None)
    with pytest.raises(PathNotFound, match=f"no link named 'nope' under /ipfs/{root}/a$"):
        r.resolve_path(root, ["a", "nope"])
    with pytest.raises(PathNotFound, match="no link named 'entry-999'"):
        r.resolve_path(root, ["big", "entry-999"])
    with pytest.raises(PathNotFound, match=f"/ipfs/{root}/file.txt is not a directory"):
        r.resolve_path(root, ["file.txt", "x"])
    missing = CID.hash(0x70, b"not stored")
    with pytest.raises(BlockNotFound):
        r.resolve_path(missing, ["x"])
    json_block = CID.hash(0x0129, b"{}")  # dag-json: neither UnixFS nor DAG-CBOR
    store.put_many([(json_block, b"{}")])
    with pytest.raises(UnsupportedCodec):
        r.resolve_path(json_block, ["x"])


def test_dag_cbor_links_are_followed(tree: tuple[MemoryStore, CID]) -> None:
    store, root = tree
    a = _children(store, root)["a"]
    doc = dagcbor.encode({"pkgs": [{"dir": a}], "name": "x"})
    doc_cid = CID.hash(DAG_CBOR, doc)
    store.put_many([(doc_cid, doc)])
    r = Resolver(store.get, NodeCache())
    found = r.resolve_path(doc_cid, ["pkgs", "0", "dir", "b", "c.txt"])
    b = _children(store, a)["b"]
    assert found.cid == _children(store, b)["c.txt"]
    assert found.roots == (doc_cid, doc_cid, doc_cid, a, b, found.cid)  # one root per step
    with pytest.raises(UnsupportedCodec, match="ends inside the DAG-CBOR block"):
        r.resolve_path(doc_cid, ["name"])
    with pytest.raises(UnsupportedCodec):
        r.resolve_path(doc_cid, ["pkgs", "0"])
    with pytest.raises(PathNotFound, match="no field 'nope'"):
        r.resolve_path(doc_cid, ["pkgs", "0", "nope"])
    with pytest.raises(PathNotFound, match="no field '1'"):
        r.resolve_path(doc_cid, ["pkgs", "1"])


def test_uncached_reads_are_the_path_in_order(tree: tuple[MemoryStore, CID]) -> None:
    """Without a cache each step reads its block once, in path order: the CAR handler's proof."""
    store, root = tree
    rec = Counting(store.get)
    found = Resolver(rec).resolve_path(root, ["a", "b", "c.txt"])
    assert rec.asked == list(found.roots[:-1])
    rec.asked.clear()
    found = Resolver(rec).resolve_path(root, ["big", "entry-150"])
    assert rec.asked[:2] == [root, found.roots[1]]  # then the HAMT shards on the way, in order
    shards = rec.asked[2:]
    assert shards and all(ex.stat(store.get, s).kind == "hamt-sharded-directory" for s in shards)


def test_the_cache_keeps_directories_and_is_bounded(tree: tuple[MemoryStore, CID]) -> None:
    store, root = tree
    rec = Counting(store.get)
    r = Resolver(rec, NodeCache())
    first = r.resolve_path(root, ["big", "entry-150"])
    reads = len(rec.asked)
    assert r.resolve_path(root, ["big", "entry-150"]) == first
    assert r.resolve_path(root, ["a", "b", "c.txt"]).cid == _children(store, _children(
        store, _children(store, root)["a"])["b"])["c.txt"]
    assert len(rec.asked) == reads + 2  # a and b only: the root and the shards came from the cache
    smallest = min(ex.stat(store.get, c).block_size for c in r.resolve_path(root, ["a", "b"]).roots)
    small = NodeCache(max_bytes=smallest - 1)  # no directory fits: nothing is kept
    rec2 = Counting(store.get)
    r2 = Resolver(rec2, small)
    c = r2.resolve_path(root, ["a", "b", "c.txt"]).cid
    assert len(small) == 0
    assert r2.resolve_path(root, ["a", "b", "c.txt"]).cid == c and len(rec2.asked) == 6  # read again


def test_parse_path_forms() -> None:
    cid = CID.hash(0x55, b"x")
    for text in (f"{cid}", f"/ipfs/{cid}", f"ipfs://{cid}", f" {cid}/ "):
        assert parse_path(text) == (cid, [])
    assert parse_path(f"/ipfs/{cid}//a/b/") == (cid, ["a", "b"])
    assert split_path("/a//b/c/") == ["a", "b", "c"]
    with pytest.raises(InvalidCID):
        parse_path("/ipfs/not-a-cid/a")

"""CAR block selection (dag/select.py) over a store, without HTTP: order, scopes, entity-bytes,
dups, and that every failure that decides a status happens before anything is selected. (The
gateway's CAR answers are tested end to end in test_gateway_trustless.py.)"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ipmirror.codec.cid import CID, RAW
from ipmirror.dag.select import ByteRange, select_car_blocks
from ipmirror.dag.walk import links, walk
from ipmirror.errors import BlockNotFound, InvalidInput
from ipmirror.store.memory import MemoryStore
from ipmirror.unixfs import exporter as ex
from ipmirror.unixfs.importer import AddOptions, Importer
from ipmirror.unixfs.profile import PRESETS, Chunker

PROFILE = PRESETS["unixfs-v1-2025"].replace(chunker=Chunker.parse("size-100"), max_links=2)


def add(store: MemoryStore, path: Path) -> CID:
    with store.session() as s:
        (root,) = Importer(AddOptions(PROFILE), s.put).add_paths([path])
    return root.cid


def mhs(blocks: list[tuple[CID, bytes]]) -> list[bytes]:
    return [c.multihash for c, _ in blocks]


@pytest.fixture
def tree(tmp_path: Path) -> tuple[MemoryStore, CID, CID]:
    """A directory holding a 1000-byte file (10 leaves under a tree of max 2 links) twice."""
    d = tmp_path / "d"
    d.mkdir()
    data = random.Random(1).randbytes(1000)  # ten different leaves
    (d / "a").write_bytes(data)
    (d / "b").write_bytes(data)
    store = MemoryStore()
    root = add(store, d)
    file_cid = next(lk.hash for lk in ex.decode_node(root, store.get(root)).pb.links)  # type: ignore[union-attr]
    return store, root, file_cid


def test_scope_all_is_the_walk_in_order(tree: tuple[MemoryStore, CID, CID]) -> None:
    store, root, _f = tree
    head, rest = select_car_blocks(store.get, root, [], "all")
    assert mhs(head) == [root.multihash]
    assert mhs(head + list(rest)) == [c.multihash for c, _ in walk(root, store.get)]


def test_dups_sends_a_block_every_time_it_is_met(tree: tuple[MemoryStore, CID, CID]) -> None:
    store, root, f = tree
    once = mhs(list(select_car_blocks(store.get, root, [], "all")[1]))
    every = mhs(list(select_car_blocks(store.get, root, [], "all", dups=True)[1]))
    assert len(set(once)) == len(once) and set(every) == set(once)
    assert every.count(f.multihash) == 2 and len(every) > len(once)  # both names link one file


def test_path_blocks_come_first_and_once(tree: tuple[MemoryStore, CID, CID]) -> None:
    store, root, f = tree
    path = [(root, store.get(root))]
    head, rest = select_car_blocks(store.get, f, path, "block")
    assert mhs(head) == [root.multihash, f.multihash] and list(rest) == []
    head, _ = select_car_blocks(store.get, root, path, "block")
    assert mhs(head) == [root.multihash]  # the target was a path block already


def test_entity_bytes_selects_the_blocks_of_the_range(tree: tuple[MemoryStore, CID, CID]) -> None:
    store, _root, f = tree
    leaves = [c for c, d in walk(f, store.get) if not links(c, d)]
    assert len(leaves) == 10 and all(c.codec == RAW for c in leaves)
    _, rest = select_car_blocks(store.get, f, [], "entity", ByteRange(150, 349))
    got = [c for c, _ in rest]
    assert [c for c in got if c.codec == RAW] == leaves[1:4]  # bytes 150-349: leaves 1, 2, 3
    _, rest = select_car_blocks(store.get, f, [], "entity", ByteRange(-100, None))
    assert [c for c, _ in rest if c.codec == RAW] == leaves[-1:]
    _, whole = select_car_blocks(store.get, f, [], "entity")
    assert [c for c, _ in whole if c.codec == RAW] == leaves


def test_failures_come_before_any_block(tree: tuple[MemoryStore, CID, CID]) -> None:
    store, _root, f = tree
    with pytest.raises(InvalidInput, match="starts past the end"):
        select_car_blocks(store.get, f, [], "entity", ByteRange(1000, None))
    missing = CID.hash(RAW, b"not stored")
    with pytest.raises(BlockNotFound):
        select_car_blocks(store.get, missing, [], "all")


def test_identity_blocks_are_never_selected() -> None:
    ident = CID.identity(RAW, b"inline")
    head, rest = select_car_blocks(MemoryStore().get, ident, [], "all")
    assert head == [] and list(rest) == []


def test_byte_range_parse() -> None:
    assert ByteRange.parse("0:*") == ByteRange(0, None) and str(ByteRange.parse("-5:-1")) == "-5:-1"
    assert ByteRange(2, 5).resolve(4) == (2, 4) and ByteRange(-3, None).resolve(10) == (7, 10)
    for bad in ("5", "a:b", "5:2", "-1:-3"):
        with pytest.raises(InvalidInput):
            ByteRange.parse(bad)

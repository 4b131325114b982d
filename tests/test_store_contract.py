"""One contract suite, run against every block store backend (memory and LMDB)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipmirror.codec.cid import CID, DAG_PB, RAW
from ipmirror.errors import BlockNotFound
from ipmirror.store import gc
from ipmirror.store.lmdb_store import LmdbStore
from ipmirror.store.memory import MemoryStore
from ipmirror.unixfs.importer import AddOptions, Importer
from ipmirror.unixfs.profile import PRESETS


@pytest.fixture(params=["memory", "lmdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
    else:
        s = LmdbStore.open(tmp_path / "blocks")
        yield s
        s.close()


def blk(data: bytes, codec: int = RAW) -> tuple[CID, bytes]:
    return CID.hash(codec, data), data


def test_put_get_has(store: Any) -> None:
    cid, data = blk(b"hello")
    assert not store.has(cid)
    with pytest.raises(BlockNotFound) as ei:
        store.get(cid)
    assert ei.value.cid == cid and str(cid) in str(ei.value)
    assert store.put_many([(cid, data)]) == 1
    assert store.has(cid) and store.get(cid) == data and store.size(cid) == 5


def test_keyed_by_multihash(store: Any) -> None:
    cid, data = blk(b"same bytes")
    store.put_many([(cid, data)])
    assert store.get(cid.with_codec(DAG_PB)) == data  # another codec, same multihash
    assert list(store.iter_keys()) == [cid.multihash]


def test_second_put_writes_nothing(store: Any) -> None:
    cid, data = blk(b"x" * 1000)
    assert store.put_many([(cid, data)]) == 1
    assert store.put_many([(cid, data)]) == 0
    assert store.stat().blocks == 1 and store.stat().block_bytes == 1000


def test_identity_is_never_stored(store: Any) -> None:
    cid = CID.identity(RAW, b"tiny")
    assert store.has(cid) and store.get(cid) == b"tiny"
    store.put_many([(cid, b"tiny")])
    assert store.stat().blocks == 0


def test_pins_only_on_clean_session_end(store: Any) -> None:
    a, da = blk(b"a")
    b, db = blk(b"b")
    with store.session() as s:
        s.put(a, da)
        s.pin(a)
    assert store.pin_kind(a) == "recursive"
    with pytest.raises(RuntimeError), store.session() as s:
        s.put(b, db)
        s.pin(b)
        raise RuntimeError("crash")
    assert store.pin_kind(b) is None
    assert store.has(b)  # what was written is kept (a later add does not redo it)


def test_pin_rm_and_list(store: Any) -> None:
    a, da = blk(b"a")
    store.put_many([(a, da)])
    store.pin_add(a, "direct")
    assert store.pins() == [(a, "direct")]
    assert store.pin_rm(a) and not store.pin_rm(a)
    assert store.pins() == []


def test_pins_have_owners(store: Any) -> None:
    """A pin stays while any owner holds it: a user's pin of a mirror's root survives the
    mirror's unpin, and the other way round; the strongest kind wins."""
    a, da = blk(b"a")
    store.put_many([(a, da)])
    store.pin_add(a, "direct")  # the user's
    with store.session() as s:
        s.pin(a, owner="mirrors")
    assert store.pins() == [(a, "recursive")] and store.pin_holders(a) == ["mirrors", "user"]
    assert store.pin_rm(a, owner="mirrors")
    assert store.pins() == [(a, "direct")] and store.pin_holders(a) == ["user"]
    assert not store.pin_rm(a, owner="mirrors")  # not held by mirrors any more
    store.pin_add(a, owner="mirrors")
    assert store.pin_rm(a) and store.pin_holders(a) == ["mirrors"]  # the user's pin went
    assert gc.collect(store).removed == 0 and store.has(a)
    assert store.pin_rm(a, owner="mirrors") and store.pins() == []


def test_pins_from_before_owners(tmp_path: Path) -> None:
    """A pin stored as just its kind (before owners) is held by nobody in particular: any
    owner's unpin removes it, any owner's pin adopts it."""
    st = LmdbStore.open(tmp_path / "blocks")
    try:
        a, da = blk(b"a")
        b, db = blk(b"b")
        st.put_many([(a, da), (b, db)])
        with st.env.begin(write=True) as txn:
            txn.put(a.buffer, b"recursive", db=st.db_pins)
            txn.put(b.buffer, b"direct", db=st.db_pins)
        assert st.pins() == sorted([(a, "recursive"), (b, "direct")], key=lambda p: p[0].buffer)
        assert st.pin_holders(a) == [""]
        assert st.pin_rm(a, owner="mirrors") and st.pin_kind(a) is None
        st.pin_add(b, "direct", owner="mirrors")
        assert st.pin_holders(b) == ["mirrors"]
    finally:
        st.close()


def test_gc_removes_unpinned_and_keeps_pinned_dags(store: Any, tmp_path: Path) -> None:
    d = tmp_path / "tree"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f").write_bytes(b"f" * 3000)
    (d / "g").write_bytes(b"g" * 10)
    opts = AddOptions(PRESETS["unixfs-v0-2015"].replace(chunker=PRESETS["unixfs-v0-2015"].chunker,
                                                         max_links=2))
    with store.session() as s:
        (root,) = Importer(opts, s.put).add_paths([d])
        s.pin(root.cid)
    junk, dj = blk(b"junk")
    store.put_many([(junk, dj)])
    n_before = store.stat().blocks
    res = gc.collect(store)
    assert res.removed == 1 and store.stat().blocks == n_before - 1
    assert not store.has(junk) and store.has(root.cid)
    assert gc.verify(store).ok


def test_gc_spares_blocks_of_live_sessions(store: Any) -> None:
    a, da = blk(b"in flight")
    old, dold = blk(b"already there")
    store.put_many([(old, dold)])
    with store.session() as s:
        s.put(a, da)
        assert s.has(old)  # reusing an existing block stages it too
        s.checkpoint()  # (a GC in another process waits for the writer's commit anyway)
        gc.collect(store)
        assert store.has(a) and store.has(old)
        s.pin(a)
    gc.collect(store)
    assert store.has(a) and not store.has(old)


def test_gc_sweep_refuses_when_pins_changed(store: Any) -> None:
    a, da = blk(b"a")
    store.put_many([(a, da)])
    epoch, _ = store.gc_snapshot()
    store.pin_add(a)
    assert store.gc_sweep(epoch, [a.multihash]) is None
    assert store.has(a)


def test_verify_finds_missing_blocks(store: Any, tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(bytes(range(256)) * 8)
    p = PRESETS["unixfs-v1-2025"].replace(chunker=PRESETS["unixfs-v1-2025"].chunker.parse("size-512"))
    with store.session() as s:
        (root,) = Importer(AddOptions(p), s.put).add_paths([f])
        s.pin(root.cid)
    assert gc.verify(store).ok
    leaf = next(k for k in store.iter_keys() if k != root.cid.multihash)
    store.delete(CID(1, RAW, leaf))
    rep = gc.verify(store)
    assert not rep.ok and rep.missing and rep.missing[0][0] == root.cid

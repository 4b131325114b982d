"""One contract suite, run against every block store backend (memory and LMDB): the core
(``Blockstore`` with its sessions, ``PinStore``, ``GcStaging``, the repository's ``Store``) on
each, and each declared capability (``NoCopyStore``, ``Compactable``) on every backend that
declares it. Which backend declares what is itself checked, so a capability cannot go missing
unnoticed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from _stores import BACKENDS, open_store
from ipmirror.codec.cid import CID, DAG_PB, RAW
from ipmirror.dag import gc
from ipmirror.errors import BlockNotFound
from ipmirror.store.base import Compactable, GcStaging, NoCopySession, NoCopyStore, Store
from ipmirror.store.filestore import StaleReference
from ipmirror.store.lmdb_store import LmdbStore
from ipmirror.unixfs.importer import AddOptions, Importer
from ipmirror.unixfs.profile import PRESETS

CAPABILITIES: dict[str, set[type]] = {
    "lmdb": {GcStaging, NoCopyStore, Compactable},
    "memory": {GcStaging},
}


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = open_store(request.param, tmp_path)
    yield s
    s.close()


def having(capability: type) -> list[str]:
    return [b for b in BACKENDS if capability in CAPABILITIES[b]]


@pytest.fixture(params=having(NoCopyStore))
def nocopy_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = open_store(request.param, tmp_path)
    assert isinstance(s, NoCopyStore)
    yield s
    s.close()


@pytest.fixture(params=having(Compactable))
def compactable_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = open_store(request.param, tmp_path)
    assert isinstance(s, Compactable)
    yield s
    s.close()


def blk(data: bytes, codec: int = RAW) -> tuple[CID, bytes]:
    return CID.hash(codec, data), data


def test_put_get_has(store: Store) -> None:
    cid, data = blk(b"hello")
    assert not store.has(cid)
    with pytest.raises(BlockNotFound) as ei:
        store.get(cid)
    assert ei.value.cid == cid and str(cid) in str(ei.value)
    assert store.put_many([(cid, data)]) == 1
    assert store.has(cid) and store.get(cid) == data and store.size(cid) == 5


def test_keyed_by_multihash(store: Store) -> None:
    cid, data = blk(b"same bytes")
    store.put_many([(cid, data)])
    assert store.get(cid.with_codec(DAG_PB)) == data  # another codec, same multihash
    assert list(store.iter_keys()) == [cid.multihash]


def test_second_put_writes_nothing(store: Store) -> None:
    cid, data = blk(b"x" * 1000)
    assert store.put_many([(cid, data)]) == 1
    assert store.put_many([(cid, data)]) == 0
    assert store.stat().blocks == 1 and store.stat().block_bytes == 1000


def test_identity_is_never_stored(store: Store) -> None:
    cid = CID.identity(RAW, b"tiny")
    assert store.has(cid) and store.get(cid) == b"tiny"
    store.put_many([(cid, b"tiny")])
    assert store.stat().blocks == 0


def test_pins_only_on_clean_session_end(store: Store) -> None:
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


def test_pin_rm_and_list(store: Store) -> None:
    a, da = blk(b"a")
    store.put_many([(a, da)])
    store.pin_add(a, "direct")
    assert store.pins() == [(a, "direct")]
    assert store.pin_rm(a) and not store.pin_rm(a)
    assert store.pins() == []


def test_pins_have_owners(store: Store) -> None:
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


def test_gc_removes_unpinned_and_keeps_pinned_dags(store: Store, tmp_path: Path) -> None:
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


def test_gc_spares_blocks_of_live_sessions(store: Store) -> None:
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


def test_gc_sweep_refuses_when_pins_changed(store: Store) -> None:
    a, da = blk(b"a")
    store.put_many([(a, da)])
    epoch, _ = store.gc_snapshot()
    store.pin_add(a)
    assert store.gc_sweep(epoch, [a.multihash]) is None
    assert store.has(a)


def test_verify_finds_missing_blocks(store: Store, tmp_path: Path) -> None:
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


# -- more of the core ---------------------------------------------------------------------------

def test_put_one_block_and_iterate(store: Store) -> None:
    a, da = blk(b"one")
    b, db = blk(b"two", DAG_PB)
    assert store.put(a, da) and not store.put(a, da)
    assert store.put(b, db)
    assert sorted(store.iter_keys()) == sorted([a.multihash, b.multihash])
    assert sorted(store.iter_blocks()) == sorted([(a.multihash, da), (b.multihash, db)])
    assert store.delete(a) and not store.delete(a) and not store.has(a)
    with pytest.raises(BlockNotFound):
        store.size(a)


def test_get_stored(store: Store) -> None:
    a, da = blk(b"held")
    store.put(a, da)
    assert store.get_stored(a) == da
    assert store.get_stored(blk(b"absent")[0]) is None
    assert store.get_stored(CID.identity(RAW, b"tiny")) == b"tiny"


def test_session_counts_and_commits_every_batch(store: Store) -> None:
    """Rule 5: a session commits on its own every ``batch_bytes`` and at the end, running
    ``on_commit`` after each; ``puts`` counts every block handed to put."""
    commits: list[int] = []
    blocks = [blk(bytes([i]) * 100) for i in range(5)]
    with store.session(batch_bytes=250, on_commit=lambda: commits.append(store.stat().blocks)) as s:
        for cid, data in blocks:
            s.put(cid, data)
        s.put(*blocks[0])  # present already: counted, not written
        assert s.puts == 6 and s.bytes_written == 500
        assert commits and commits[0] == 3  # the first commit once 300 >= 250 bytes were put
    assert commits[-1] == 5 and len(commits) >= 2


def test_declared_capabilities(store: Store, request: pytest.FixtureRequest) -> None:
    """Each backend declares exactly the capabilities it is known to have (runtime-checkable
    protocols: what ``isinstance`` tells callers), and a NoCopyStore's sessions are NoCopySessions
    (rule 6)."""
    backend = request.node.callspec.params["store"]
    declared = {cap for cap in (GcStaging, NoCopyStore, Compactable) if isinstance(store, cap)}
    assert declared == CAPABILITIES[backend]
    with store.session() as s:
        assert isinstance(s, NoCopySession) == isinstance(store, NoCopyStore)


def test_clear_dead_sessions_with_none_dead(store: Store) -> None:
    with store.session() as s:
        s.put(*blk(b"live"))
        s.checkpoint()
        assert store.clear_dead_sessions() == 0


# -- capability: no-copy references -------------------------------------------------------------

def _ref_block(tmp_path: Path, data: bytes) -> tuple[Path, CID]:
    f = tmp_path / "referenced.bin"
    f.write_bytes(b"head" + data)
    return f, CID.hash(RAW, data)


def test_nocopy_references(nocopy_store: Store, tmp_path: Path) -> None:
    store = nocopy_store
    assert isinstance(store, NoCopyStore)
    data = os.urandom(3000)
    f, cid = _ref_block(tmp_path, data)
    with store.session() as s:
        assert isinstance(s, NoCopySession)
        assert s.put_ref(cid, os.fsencode(f), 4, len(data))
        s.pin(cid, "direct")
    assert store.has(cid) and store.is_ref(cid) and store.get(cid) == data and store.size(cid) == 3000
    assert store.get_stored(cid) is None  # would take file I/O
    assert [mh for mh, _ in store.iter_refs()] == [cid.multihash]
    assert list(store.iter_keys()) == [cid.multihash] and list(store.iter_blocks()) == []
    assert gc.verify(store).ok and gc.verify(store).refs == 1
    f.write_bytes(b"head" + bytes(3000))  # changed behind the store's back: stale, never wrong
    with pytest.raises(StaleReference):
        store.get(cid)
    rep = gc.verify(store)
    assert rep.ok and [mh for mh, _ in rep.stale] == [cid.multihash]


def test_nocopy_reference_of_a_stored_block_is_not_recorded(nocopy_store: Store, tmp_path: Path) -> None:
    store = nocopy_store
    assert isinstance(store, NoCopyStore)
    data = b"copied already"
    f, cid = _ref_block(tmp_path, data)
    store.put(cid, data)
    with store.session() as s:
        assert isinstance(s, NoCopySession)
        assert not s.put_ref(cid, os.fsencode(f), 4, len(data))
    assert not store.is_ref(cid) and list(store.iter_refs()) == []


def test_gc_sweeps_unpinned_references(nocopy_store: Store, tmp_path: Path) -> None:
    store = nocopy_store
    data = os.urandom(100)
    f, cid = _ref_block(tmp_path, data)
    with store.session() as s:
        assert isinstance(s, NoCopySession)
        s.put_ref(cid, os.fsencode(f), 4, len(data))
    assert gc.collect(store).removed == 1 and not store.has(cid) and list(store.iter_refs()) == []


# -- capability: compaction ---------------------------------------------------------------------

def test_compaction_keeps_every_block(compactable_store: Store) -> None:
    store = compactable_store
    assert isinstance(store, Compactable)
    keep = [blk(os.urandom(50_000)) for _ in range(4)]
    junk = [blk(os.urandom(50_000)) for _ in range(40)]
    store.put_many(keep + junk)
    for cid, _ in keep:
        store.pin_add(cid, "direct")
    assert gc.collect(store).removed == 40
    given = store.compact()
    assert given is not None and given >= 0
    assert all(store.get(c) == d for c, d in keep) and store.stat().blocks == 4
    assert store.pins() == sorted(((c, "direct") for c, _ in keep), key=lambda p: p[0].buffer)


# -- LMDB: sessions of processes that died -----------------------------------------------------------

def test_gc_clears_the_staging_of_a_dead_session(tmp_path: Path) -> None:
    """A session whose process was killed leaves its staging behind; GC sees its lock is free,
    clears the staging, and then collects the (unpinned) blocks it wrote."""
    cid, data = blk(b"written by a process that died")
    code = textwrap.dedent(f"""
        import os, sys
        from ipmirror.codec.cid import CID, RAW
        from ipmirror.store.lmdb_store import LmdbStore
        store = LmdbStore.open({str(tmp_path / "blocks")!r})
        s = store.session()
        s.put(CID.hash(RAW, {data!r}), {data!r})
        s.checkpoint()
        os._exit(0)  # dies inside the session
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    st = LmdbStore.open(tmp_path / "blocks")
    try:
        assert st.has(cid)
        with st.env.begin() as txn:
            assert txn.stat(st.db_stage_mh)["entries"] == 1
        assert gc.collect(st).removed == 1 and not st.has(cid)
        with st.env.begin() as txn:
            assert txn.stat(st.db_stage_mh)["entries"] == 0
        assert list((tmp_path / "blocks" / "sessions").iterdir()) == []
    finally:
        st.close()

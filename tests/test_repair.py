"""Repair and recovery, and the store rules (issue #10, points 2 and 3): ``repo verify --repair``
round trips (a later add or mirror sync writes the removed blocks again), a damaged database is a
one-line error and ``repo recover`` salvages the rest, ``block rm`` refuses any block a pin's DAG
holds, and ``pin add``'s check and pin are atomic against GC."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from _cli import CLI, run
from ipmirror.codec.cid import CID, RAW
from ipmirror.dag import gc
from ipmirror.store.lmdb_store import LmdbStore
from ipmirror.unixfs.importer import AddOptions, Importer
from ipmirror.unixfs.profile import from_preset
from test_integrity import flip, used_bytes


def _tree(d: Path, n: int = 3, size: int = 50_000) -> list[bytes]:
    d.mkdir(parents=True, exist_ok=True)
    out = []
    old = time.time() - 3600  # not racily clean: a sync reuses these files without reading them
    for i in range(n):
        data = os.urandom(size)
        (d / f"f{i}.bin").write_bytes(data)
        os.utime(d / f"f{i}.bin", (old, old))
        out.append(data)
    return out


def test_repair_round_trip_with_add(cli: CLI, repo_path: Path, tmp_path: Path) -> None:
    files = _tree(tmp_path / "site")
    root = cli("add", "-Q", "-r", tmp_path / "site").text.strip()
    flip(repo_path, files[1])
    bad = CID.hash(RAW, files[1])
    r = cli("repo", "verify", check=False)
    assert r.rc == 1 and f"damaged: block {bad}" in r.text
    r = cli("repo", "verify", "--repair", check=False)
    assert r.rc == 1 and "removed 1 damaged block" in r.text
    assert f"lost: block {bad}" in r.text and f"needed by {root} (pinned by user)" in r.text
    r = cli("repo", "verify", check=False)
    assert r.rc == 1 and f"missing: block {bad}" in r.text and "damaged" not in r.text
    assert cli("cat", f"{root}/f1.bin", check=False).rc == 1
    assert cli("add", "-Q", "-r", tmp_path / "site").text.strip() == root  # writes it again
    assert cli("repo", "verify").rc == 0
    assert cli("cat", f"{root}/f1.bin").out == files[1]


def test_repair_then_mirror_sync_rewrites(cli: CLI, repo_path: Path, tmp_path: Path) -> None:
    files = _tree(tmp_path / "m")
    cli("mirror", "add", "site", tmp_path / "m")
    cli("mirror", "sync", "site")
    flip(repo_path, files[2])
    r = cli("repo", "verify", check=False)
    assert r.rc == 1 and "(mirror site version 1)" in r.text
    r = cli("repo", "verify", "--repair", check=False)
    assert "the next 'ipmirror mirror sync site' writes" in r.text
    cli("mirror", "sync", "site")  # the files did not change: only the repair makes it read them
    assert cli("repo", "verify").rc == 0
    latest = json.loads(cli("mirror", "log", "site", "--json").text)[-1]["root"]
    assert cli("cat", f"{latest}/f2.bin").out == files[2]


def test_damaged_database_one_line_error_and_recover(cli: CLI, repo_path: Path, tmp_path: Path) -> None:
    d = tmp_path / "many"
    d.mkdir()
    small = {}
    for i in range(400):  # small blocks live inside the database's leaf pages
        data = os.urandom(600)
        (d / f"s{i:03}").write_bytes(data)
        small[i] = data
    root = cli("add", "-Q", "-r", d).text.strip()
    cli("mirror", "add", "site", d)
    cli("key", "gen", "extra")
    raw = used_bytes(repo_path / "blocks")
    off = raw.rfind(small[200][:64])
    assert off > 0
    page = off - off % 4096
    with (repo_path / "blocks" / "data.mdb").open("r+b") as f:  # the page's header and pointers
        f.seek(page + 16)
        f.write(bytes(b ^ 0xFF for b in raw[page + 16:page + 80]))
    r = cli("repo", "verify", check=False)
    assert r.rc == 1
    assert len(r.err.strip().splitlines()) == 1 and "internal error" not in r.err, r.err
    assert "damaged" in r.err and "repo recover" in r.err

    new = tmp_path / "new"
    r = cli("repo", "recover", "--to", new, check=False)
    assert r.rc == 3, r.err
    assert "not saved" in r.text and f"pin {root}" in r.text
    assert "keys" in r.text and "mirror" in r.text
    v = run(new, "repo", "verify", check=False)
    assert v.rc == 1 and "missing" in v.text and "damaged" not in v.text
    car = run(new, "dag", "export", root, check=False)  # stops at the first lost block
    assert car.rc == 1 and "not in the store" in car.err
    present = [i for i in range(400) if small[i][:64] in used_bytes(new / "blocks")]
    assert 300 < len(present) < 400 and 200 not in present  # all but the damaged page's blocks
    assert run(new, "cat", f"{root}/s{present[0]:03}").out == small[present[0]]
    assert "extra" in run(new, "key", "list").text
    assert "site" in run(new, "mirror", "list").text
    assert cli("repo", "recover", "--to", new, check=False).rc == 1  # never into a used path


def test_block_rm_refuses_blocks_of_pinned_trees(cli: CLI, tmp_path: Path) -> None:
    files = _tree(tmp_path / "t", size=3 << 20)  # multi-block files: inner leaves
    root = cli("add", "-Q", "-r", tmp_path / "t").text.strip()
    inner = CID.hash(RAW, files[0][1 << 20:2 << 20])
    r = cli("block", "rm", str(inner), check=False)
    assert r.rc == 1 and f"part of the DAG pinned at {root}" in r.err
    assert cli("repo", "verify").rc == 0
    r = cli("block", "rm", root, check=False)
    assert r.rc == 1 and "is pinned" in r.err
    cli("pin", "rm", root)
    assert cli("block", "rm", str(inner)).rc == 0


def test_pin_add_is_atomic_with_gc(tmp_path: Path) -> None:
    store = LmdbStore.open(tmp_path / "blocks")
    try:
        src = tmp_path / "src"
        _tree(src, n=20, size=2000)
        with store.session() as s:  # unpinned: GC may take every block
            (root,) = Importer(AddOptions(from_preset("unixfs-v1-2025")), s.put).add_paths([str(src)])
        real_get = store.get
        reads = 0
        gc_done = threading.Event()
        removed: list[int] = []

        def slow_get(cid: CID) -> bytes:  # a GC runs while pin add is checking completeness
            nonlocal reads
            reads += 1
            if reads == 5:
                def run_gc() -> None:
                    removed.append(gc.collect(store).removed)
                    gc_done.set()
                threading.Thread(target=run_gc).start()
                gc_done.wait(3)  # it waits for the session (or, before the fix, deletes everything)
            return real_get(cid)

        store.get = slow_get  # type: ignore[method-assign]
        gc.pin_dag(store, root.cid)
        store.get = real_get  # type: ignore[method-assign]
        assert gc_done.wait(30)
        assert store.pin_kind(root.cid) == "recursive"
        assert gc.verify(store).ok and removed == [0]
    finally:
        store.close()

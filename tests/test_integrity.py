"""Integrity on read (issue #10, point 1): bit rot injected into the block database file is never
served by any reader — cat, get, dag export, block get, the gateway's file, raw, CAR and tar
answers, and a replayed (fast-path) answer — and always reported by ``repo verify``.

The damage is made the way disks make it: the test finds a block's bytes in ``blocks/data.mdb``
and flips some of them behind the store's back.
"""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path

import lmdb
import pytest

from _cli import CLI
from _serve import serve
from ipmirror.codec.cid import CID, RAW
from ipmirror.errors import BlockNotFound, Corrupt
from ipmirror.store import verified
from ipmirror.store.memory import MemoryStore
from ipmirror.store.verified import VerifiedBlocks

MiB = 1 << 20


def used_bytes(blocks: Path) -> bytes:
    """The used part of a block database file (the file itself is sparse, as large as the map)."""
    with lmdb.open(str(blocks), readonly=True, lock=False, max_dbs=8) as env:
        n = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    with (blocks / "data.mdb").open("rb") as f:
        return f.read(n)


def flip(repo: Path, content: bytes, at: int = 1000) -> None:
    """Change 4 bytes of ``content`` where it lies in the block database (it must be there once)."""
    db = repo / "blocks" / "data.mdb"
    raw = used_bytes(repo / "blocks")
    off = raw.find(content[:64])
    assert off >= 0, "block bytes not found in data.mdb"
    assert raw.find(content[:64], off + 1) < 0, "block bytes found twice"
    with db.open("r+b") as f:
        f.seek(off + at)
        old = f.read(4)
        f.seek(off + at)
        f.write(bytes(b ^ 0x5A for b in old))


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, bytes, bytes]:
    d = tmp_path / "site"
    d.mkdir()
    small = os.urandom(100_000)
    big = os.urandom(3 * MiB + 5)
    (d / "small.bin").write_bytes(small)
    (d / "big.bin").write_bytes(big)
    return d, small, big


def one_line_corrupt(err: str, cid: CID) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(cid) in lines[0] and "damaged" in lines[0], err


def test_cli_readers_refuse_damaged_blocks(cli: CLI, repo_path: Path, tmp_path: Path,
                                           tree: tuple[Path, bytes, bytes]) -> None:
    d, small, big = tree
    root = cli("add", "-Q", "-r", d).text.strip()
    small_cid = CID.hash(RAW, small)
    leaf2 = CID.hash(RAW, big[2 * MiB:3 * MiB])
    assert cli("cat", f"{root}/small.bin").out == small
    flip(repo_path, small)
    flip(repo_path, big[2 * MiB:3 * MiB])

    r = cli("cat", f"{root}/small.bin", check=False)
    assert r.rc == 1 and r.out == b""
    one_line_corrupt(r.err, small_cid)
    r = cli("cat", f"{root}/big.bin", check=False)
    assert r.rc == 1 and len(r.out) <= 2 * MiB  # never the damaged block's bytes
    one_line_corrupt(r.err, leaf2)
    r = cli("block", "get", str(small_cid), check=False)
    assert r.rc == 1 and r.out == b""
    one_line_corrupt(r.err, small_cid)
    out = tmp_path / "copy"
    r = cli("get", root, "-o", out, check=False)
    assert r.rc == 1 and not out.exists()
    assert "damaged" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("dag", "export", root, check=False)
    assert r.rc == 1 and small not in r.out
    assert "damaged" in r.err and len(r.err.strip().splitlines()) == 1

    r = cli("repo", "verify", check=False)
    assert r.rc == 1
    assert f"damaged: block {small_cid}" in r.text and f"damaged: block {leaf2}" in r.text
    assert f"needed by {root} (pinned by user)" in r.text

    # the opt-out: an operator who trusts their disks gets the bytes as stored
    cfg = repo_path / "config.json"
    c = json.loads(cfg.read_text())
    cfg.write_text(json.dumps({**c, "hash_on_read": False}))
    r = cli("cat", f"{root}/small.bin")
    assert r.rc == 0 and len(r.out) == len(small) and r.out != small
    cfg.write_text(json.dumps({**c, "hash_on_read": "yes"}))
    r = cli("cat", f"{root}/small.bin", check=False)
    assert r.rc == 1 and "hash_on_read" in r.err


def _get(port: int, path: str) -> tuple[int, dict[str, str], bytes, bool]:
    """status, headers, body, and whether the body arrived complete."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        try:
            body, complete = resp.read(), True
        except http.client.IncompleteRead as e:
            body, complete = e.partial, False
        return resp.status, dict(resp.headers), body, complete
    finally:
        conn.close()


def test_gateway_never_serves_damaged_blocks(cli: CLI, repo_path: Path, tmp_path: Path,
                                             tree: tuple[Path, bytes, bytes]) -> None:
    d, small, big = tree
    root = cli("add", "-Q", "-r", d).text.strip()
    small_cid = CID.hash(RAW, small)
    with serve(repo_path, tmp_path / "srv", "--workers", "1") as srv:
        for _ in range(2):  # the second is answered by the replay fast path
            st, h, body, _ok = _get(srv.port, f"/ipfs/{small_cid}")
            assert st == 200 and body == small
        assert _get(srv.port, f"/ipfs/{root}/big.bin")[2] == big
        flip(repo_path, small)
        flip(repo_path, big[2 * MiB:3 * MiB])  # past the headers: the transfer is cut short

        for path in (f"/ipfs/{small_cid}", f"/ipfs/{small_cid}", f"/ipfs/{root}/small.bin",
                     f"/ipfs/{small_cid}?format=raw", f"/ipfs/{small_cid}?format=car",
                     f"/ipfs/{small_cid}?format=tar", f"/ipfs/{root}/small.bin?format=tar"):
            st, h, body, _ok = _get(srv.port, path)
            assert st == 500, (path, st)
            assert "immutable" not in h.get("Cache-Control", ""), path
            assert small[:64] not in body and "damaged" in body.decode(), path
        for path in (f"/ipfs/{root}/big.bin", f"/ipfs/{root}?format=car", f"/ipfs/{root}?format=tar"):
            st, _h, body, complete = _get(srv.port, path)
            assert st == 200 and not complete, path  # headers had gone out: aborted, visibly short
            assert big[2 * MiB + 2000:2 * MiB + 2064] not in body, path
        log = srv.log_text()
        assert log.count(f"damaged block {small_cid}") == 1  # logged once per block, no traceback
        assert "Traceback" not in log
        (worker,) = json.loads(cli("status", "--json").text)["workers"]  # counted, for the status page
        counts = worker["apps"]["gateway"]["integrity"]
        assert counts["hash_on_read"] and counts["damaged_reads"] >= 10
        assert str(small_cid) in counts["damaged"]


# -- the wrapper itself -------------------------------------------------------------------------------

def test_verified_blocks_counts_and_skips_identity_and_refs(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore()
    good, bad = b"good block", b"bad block"
    cg, cb = CID.hash(RAW, good), CID.hash(RAW, bad)
    store.put(cg, good)
    store.put(cb, bad)
    store._blocks[cb.multihash] = b"bad blocK"  # bit rot
    vb = VerifiedBlocks(store)
    assert vb.get(cg) == good and vb.get_stored(cg) == good
    for read in (vb.get, vb.get_stored):
        with pytest.raises(Corrupt, match=str(cb)):
            read(cb)
    assert vb.status() == {"hash_on_read": True, "damaged_reads": 2, "damaged": [str(cb)]}
    with pytest.raises(BlockNotFound):
        vb.get(CID.hash(RAW, b"absent"))
    assert VerifiedBlocks(store, verify=False).get(cb) == b"bad blocK"

    calls: list[bytes] = []
    real = verified.verify_multihash
    monkeypatch.setattr(verified, "verify_multihash", lambda mh, d: calls.append(mh) or real(mh, d))
    ident = CID(1, RAW, b"\x00\x03abc")
    assert vb.get(ident) == b"abc" and vb.get_stored(ident) == b"abc"
    assert calls == []  # identity CIDs are not hashed


def test_verified_blocks_does_not_rehash_nocopy_refs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ipmirror.store.lmdb_store import LmdbStore

    f = tmp_path / "file"
    data = os.urandom(5000)
    f.write_bytes(data)
    cid = CID.hash(RAW, data)
    store = LmdbStore.open(tmp_path / "blocks")
    try:
        with store.session() as s:
            s.put_ref(cid, os.fsencode(f), 0, len(data))
        calls: list[bytes] = []
        real = verified.verify_multihash
        monkeypatch.setattr(verified, "verify_multihash", lambda mh, d: calls.append(mh) or real(mh, d))
        assert VerifiedBlocks(store).get(cid) == data
        assert calls == []  # the store re-hashed the file's bytes already
    finally:
        store.close()

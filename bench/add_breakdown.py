"""Where does the time of a stored ``ipmirror add`` go? An in-process, instrumented experiment.

Usage::

    python bench/add_breakdown.py [--tree DIR] [--profile unixfs-v0-2015] [--runs 3] [--json OUT]

For one profile it measures, each ``--runs`` times (medians printed), each measurement in a fresh
Python process (a long-lived process that already imported once was measurably slower):

``hash only``
    ``Importer(opts, None).add_paths([tree])``: read, chunk, encode, SHA-256; nothing stored.
``stored (instrumented)``
    the same through an LMDB session exactly as ``ipmirror add`` does it, with timers around
    ``LmdbSession.put`` (the thread that owns the write transaction: copies into the
    write-mapped file), ``LmdbSession._commit`` (LMDB commit = msync + fsync of the batch) and
    the session end (final commit, pin, staging cleanup). The rest of the writer thread's wall
    time is spent waiting for hashed blocks.
``LMDB only``
    the blocks of the tree (256 KiB chunks of its files, keyed by their SHA-256, read into memory
    first) put into a fresh store with the same settings and batching: the store's own floor.
``write+fdatasync``
    the same bytes written to one file with ``os.write`` and one ``fdatasync``: the disk floor
    for real (non-zero) data, to compare with ``dd if=/dev/zero``.

Private attributes of the store are wrapped for timing; this is an experiment, not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ipmirror.store import lmdb_store
from ipmirror.store.lmdb_session import LmdbSession
from ipmirror.store.lmdb_store import LmdbStore
from ipmirror.unixfs.importer import AddOptions, Importer
from ipmirror.unixfs.profile import PRESETS
from mirror_tree import TreeSpec, ensure_tree

BENCH_DIR = Path(__file__).resolve().parent
CHUNK = 256 * 1024


class Timer:
    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds += time.perf_counter() - t0
                self.calls += 1
        return timed


def cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def faults() -> int:
    """Major page faults of this process so far (a first write to a page of the map is one)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_majflt


def hash_only(tree: Path, profile: str) -> dict[str, float]:
    u0, s0 = cpu()
    t0 = time.perf_counter()
    Importer(AddOptions(PRESETS[profile], hidden=True), None).add_paths([str(tree)])
    u1, s1 = cpu()
    return {"wall": time.perf_counter() - t0, "user": u1 - u0, "sys": s1 - s0}


def stored(tree: Path, profile: str, scratch: Path) -> dict[str, float]:
    path = scratch / "store"
    shutil.rmtree(path, ignore_errors=True)
    os.sync()
    put_t, end_t, batch_commit_t, end_commit_t = Timer(), Timer(), Timer(), Timer()
    orig_put, orig_commit, orig_end = LmdbSession.put, LmdbSession._commit, LmdbSession.end
    in_end = threading.Event()

    def commit(self: LmdbSession) -> None:
        (end_commit_t if in_end.is_set() else batch_commit_t).wrap(orig_commit)(self)

    def end(self: LmdbSession, ok: bool) -> None:
        in_end.set()
        try:
            orig_end(self, ok)
        finally:
            in_end.clear()

    LmdbSession.put = put_t.wrap(orig_put)  # type: ignore[method-assign]
    LmdbSession._commit = commit  # type: ignore[method-assign]
    LmdbSession.end = end_t.wrap(end)  # type: ignore[method-assign]
    try:
        u0, s0 = cpu()
        f0 = faults()
        t0 = time.perf_counter()
        store = LmdbStore.open(path)
        with store.session() as s:
            # older Importers needed threaded_sink=True to call the sink from this thread only
            kw: dict[str, Any] = ({"threaded_sink": True}
                                  if "threaded_sink" in inspect.signature(Importer).parameters else {})
            imp = Importer(AddOptions(PRESETS[profile], hidden=True), s.put, **kw)
            t_import = time.perf_counter()
            roots = imp.add_paths([str(tree)])
            t_import = time.perf_counter() - t_import
            s.pin(roots[0].cid)
        store.close()
        wall = time.perf_counter() - t0
        u1, s1 = cpu()
    finally:
        LmdbSession.put, LmdbSession._commit, LmdbSession.end = (  # type: ignore[method-assign]
            orig_put, orig_commit, orig_end)
    size = (path / "data.mdb").stat().st_size
    shutil.rmtree(path, ignore_errors=True)
    return {
        "wall": wall, "user": u1 - u0, "sys": s1 - s0,
        "import": t_import,  # add_paths(): the writer thread puts blocks as they are hashed
        "put": put_t.seconds - batch_commit_t.seconds,  # txn.put calls (copy into the map)
        "batch_commits": batch_commit_t.seconds,  # commits every 256 MiB, inside put()
        "writer_waiting": t_import - put_t.seconds,  # writer idle, waiting for hashed blocks
        "end_commit": end_commit_t.seconds,  # final commit (rest of the data + pin)
        "end_other": end_t.seconds - end_commit_t.seconds,  # staging cleanup etc.
        "puts": put_t.calls, "commits": batch_commit_t.calls + end_commit_t.calls,
        "major_faults": faults() - f0, "data_mdb_bytes": size,
    }


def load_blocks(tree: Path) -> list[tuple[bytes, bytes]]:
    blocks: list[tuple[bytes, bytes]] = []
    for dirpath, _dirs, files in os.walk(tree):
        for name in sorted(files):
            with open(os.path.join(dirpath, name), "rb") as f:
                while chunk := f.read(CHUNK):
                    blocks.append((b"\x12\x20" + hashlib.sha256(chunk).digest(), chunk))
    return blocks


def lmdb_only(blocks: list[tuple[bytes, bytes]], scratch: Path) -> dict[str, float]:
    path = scratch / "raw"
    shutil.rmtree(path, ignore_errors=True)
    os.sync()
    u0, s0 = cpu()
    f0 = faults()
    t0 = time.perf_counter()
    store = LmdbStore.open(path)
    env, db = store.env, store.db_blocks
    put_s = commit_s = 0.0
    txn = env.begin(write=True)
    n = 0
    for k, v in blocks:
        t = time.perf_counter()
        txn.put(k, v, db=db)
        put_s += time.perf_counter() - t
        n += len(v)
        if n >= lmdb_store.DEFAULT_BATCH:
            t = time.perf_counter()
            txn.commit()
            commit_s += time.perf_counter() - t
            txn = env.begin(write=True)
            n = 0
    t = time.perf_counter()
    txn.commit()
    commit_s += time.perf_counter() - t
    store.close()
    wall = time.perf_counter() - t0
    u1, s1 = cpu()
    shutil.rmtree(path, ignore_errors=True)
    return {"wall": wall, "user": u1 - u0, "sys": s1 - s0, "put": put_s, "commit": commit_s,
            "major_faults": faults() - f0}


def write_fdatasync(blocks: list[tuple[bytes, bytes]], scratch: Path) -> dict[str, float]:
    p = scratch / "write.bin"
    os.sync()
    t0 = time.perf_counter()
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _, v in blocks:
            os.write(fd, v)
        t1 = time.perf_counter()
        os.fdatasync(fd)
    finally:
        os.close(fd)
    t2 = time.perf_counter()
    p.unlink()
    return {"wall": t2 - t0, "write": t1 - t0, "fdatasync": t2 - t1}


MODES = {"hash only": "hash", "stored (instrumented)": "stored", "LMDB only": "lmdb",
         "write+fdatasync": "write"}


def one(mode: str, tree: Path, profile: str, scratch: Path) -> dict[str, float]:
    """One measurement (run in a fresh process, as the CLI would be)."""
    if mode == "hash":
        return hash_only(tree, profile)
    if mode == "stored":
        return stored(tree, profile, scratch)
    blocks = load_blocks(tree)
    r = lmdb_only(blocks, scratch) if mode == "lmdb" else write_fdatasync(blocks, scratch)
    r["bytes"] = sum(len(v) for _, v in blocks)
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, default=BENCH_DIR / "out" / "tree-1g")
    ap.add_argument("--profile", default="unixfs-v0-2015", choices=sorted(PRESETS))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, metavar="OUT")
    ap.add_argument("--one", choices=sorted(MODES.values()), help=argparse.SUPPRESS)
    ap.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(one(a.one, a.tree, a.profile, a.scratch)))
        return 0
    if a.tree == BENCH_DIR / "out" / "tree-1g":
        ensure_tree(a.tree, TreeSpec())
    tree = a.tree.resolve()
    scratch = Path(tempfile.mkdtemp(prefix="add-breakdown-", dir=tree.parent))
    results: dict[str, list[dict[str, float]]] = {name: [] for name in MODES}
    nbytes = 0
    try:
        for dirpath, _dirs, files in os.walk(tree):  # warm the page cache
            for name in files:
                with open(os.path.join(dirpath, name), "rb") as f:
                    while f.read(1 << 20):
                        pass
                nbytes += os.path.getsize(os.path.join(dirpath, name))
        for r in range(a.runs):
            print(f"round {r + 1}/{a.runs}", file=sys.stderr)
            for name, mode in MODES.items():
                out = subprocess.run([sys.executable, __file__, "--one", mode, "--tree", str(tree),
                                      "--profile", a.profile, "--scratch", str(scratch)],
                                     check=True, capture_output=True, text=True).stdout
                results[name].append(json.loads(out))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"profile {a.profile}, {a.runs} runs, medians (seconds; MB/s = {nbytes} B / wall)")
    for name, runs in results.items():
        keys = [k for k in runs[0] if k != "bytes"]
        med = {k: statistics.median(r[k] for r in runs) for k in keys}
        parts = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) and v < 1000 else f"{k} {v:.0f}"
                          for k, v in med.items())
        print(f"  {name:22s} {nbytes / 1e6 / med['wall']:6.0f} MB/s  {parts}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"profile": a.profile, "bytes": nbytes, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

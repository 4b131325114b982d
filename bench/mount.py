"""Benchmark ``ipmirror mount``: reads and a metadata walk through the FUSE mount against
``ipmirror cat`` and the original files on disk.

Usage::

    python bench/mount.py [--runs 3] [--big-mb 1024] [--files 100000] [--warm-only] [--json OUT]

Steps (everything under ``bench/out/``):

1. Data, generated once and reused while it matches: ``mount-big.bin`` (random bytes, --big-mb
   MiB), ``tree-1g`` (bench/mirror_tree.py, 1 GiB PyPI-shaped, ~1,600 files) and ``tree-100k``
   (bench/sync.py's registry tree: 100,000 files of 1-64 KiB, one 25,000-entry flat directory
   that becomes a HAMT). A fresh repository ``mount-repo`` gets the big file (``add -Q``) and the
   two trees as mirrors ``tree1g`` and ``tree100k`` (one sync each; none of that is timed).
2. Rows, the order rotating per run: the big file read with 1 MiB reads through the mount
   (``MOUNT/ipfs/<cid>``), through ``ipmirror cat <cid> >/dev/null`` and from the original
   file; the 1 GiB tree read file by file (os.walk, 1 MiB reads) through ``MOUNT/ipns/tree1g/``
   and from the original; ``find DIR -printf '%s %i\\n'`` (one stat per entry) over the 100k tree
   through the mount and on disk.
3. Cold rows (the default; needs root): ``echo 3 > /proc/sys/vm/drop_caches`` before every row,
   so the store's pages, the original files and the mount's kernel caches are all cold. No mount
   process runs during a cold row but the measured one, freshly started (its own caches empty):
   a mount keeps the store pages it read mapped, and drop_caches does not drop mapped pages, so
   a mount left running would make a cold ``ipmirror cat`` warm. A warm repeat of each row follows
   (information only). ``--warm-only`` (or not root) measures warm rows only and scores nothing.

Targets (cold medians): big file through the mount >= 0.7x ``ipmirror cat`` and the tree >= 0.5x
the original files (required; exit status 1 if missed); the big file >= 0.8x the original and
the metadata walk <= 3x the disk walk (goals, reported).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mirror_tree
import sync as sync_bench
from add import machine, source_state

BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / "out"
MIB = 1 << 20
CHUNK = 1 << 20
REQUIRED = {"big: mount / cat": 0.7, "tree: mount / original": 0.5}
GOALS = {"big: mount / original": 0.8}
META_GOAL = 3.0  # mount walk <= 3x the disk walk


def ipm(repo: Path, *args: str, stdout: int | None = subprocess.PIPE) -> str:
    env = dict(os.environ, IPMIRROR_PATH=str(repo))
    p = subprocess.run([sys.executable, "-m", "ipmirror", *args], env=env, stdout=stdout,
                       stderr=subprocess.PIPE, text=True, check=False)
    if p.returncode != 0:
        raise SystemExit(f"bench: ipmirror {' '.join(args)} failed: {p.stderr.strip()}")
    return p.stdout or ""


def read_file(path: Path) -> int:
    n = 0
    buf = bytearray(CHUNK)
    with open(path, "rb", buffering=0) as f:
        while k := f.readinto(buf):
            n += k
    return n


def read_tree(root: Path) -> int:
    n = 0
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            p = Path(dirpath) / name
            if not p.is_symlink():
                n += read_file(p)
    return n


def find_walk(root: Path) -> int:
    p = subprocess.run(["find", f"{root}/", "-printf", "%s %i\n"], stdout=subprocess.PIPE, check=True)
    return p.stdout.count(b"\n")


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


class Mount:
    def __init__(self, repo: Path, mp: Path) -> None:
        self.repo, self.mp = repo, mp
        self.mounted = False

    def up(self) -> None:
        if not self.mounted:
            self.mp.mkdir(exist_ok=True)
            ipm(self.repo, "mount", "--daemon", str(self.mp))
            self.mounted = True

    def down(self) -> None:
        if self.mounted:
            ipm(self.repo, "unmount", str(self.mp))
            self.mounted = False


def prepare(big_mb: int, files: int) -> tuple[Path, Path, Path, Path, dict[str, str]]:
    OUT.mkdir(exist_ok=True)
    big = OUT / "mount-big.bin"
    if not big.exists() or big.stat().st_size != big_mb * MIB:
        with open(big, "wb") as f:
            for _ in range(big_mb):
                f.write(os.urandom(MIB))
    tree1g = OUT / "tree-1g"
    mirror_tree.ensure_tree(tree1g, mirror_tree.TreeSpec())
    spec = sync_bench.SyncTreeSpec(files=files)
    tree100k = OUT / (f"tree-{files // 1000}k" if files % 1000 == 0 else f"tree-{files}")
    sync_bench.ensure_tree(tree100k, spec, sync_bench.plan_tree(spec))
    repo = OUT / "mount-repo"
    marker = repo / "bench-mount.json"
    want = {"big": str(big.stat().st_size), "tree1g": str(tree1g), "tree100k": str(tree100k)}
    if marker.exists() and json.loads(marker.read_text()).get("want") == want:
        cids = json.loads(marker.read_text())["cids"]
    else:
        subprocess.run(["rm", "-rf", str(repo)], check=True)
        ipm(repo, "init")
        cids = {"big": ipm(repo, "add", "-Q", str(big)).strip()}
        for name, tree in (("tree1g", tree1g), ("tree100k", tree100k)):
            ipm(repo, "mirror", "add", name, str(tree))
            ipm(repo, "mirror", "sync", name)
        marker.write_text(json.dumps({"want": want, "cids": cids}))
    return big, tree1g, tree100k, repo, cids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--big-mb", type=int, default=1024)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--warm-only", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    cold = not a.warm_only and os.geteuid() == 0
    if not a.warm_only and not cold:
        print("bench: not root, so the page cache cannot be dropped: warm rows only, nothing scored",
              file=sys.stderr)
    big, tree1g, tree100k, repo, cids = prepare(a.big_mb, a.files)
    mount = Mount(repo, OUT / "mount-mp")
    mp = mount.mp
    rows: dict[str, Callable[[], object]] = {
        "big: mount": lambda: read_file(mp / "ipfs" / cids["big"]),
        "big: cat": lambda: ipm(repo, "cat", cids["big"], stdout=subprocess.DEVNULL),
        "big: original": lambda: read_file(big),
        "tree: mount": lambda: read_tree(mp / "ipns/tree1g"),
        "tree: original": lambda: read_tree(tree1g),
        "meta: mount": lambda: find_walk(mp / "ipns/tree100k"),
        "meta: original": lambda: find_walk(tree100k),
    }
    times: dict[str, dict[str, list[float]]] = {"cold": {k: [] for k in rows}, "warm": {k: [] for k in rows}}
    try:
        names = list(rows)
        for r in range(a.runs):
            order = names[r % len(names):] + names[:r % len(names)]
            for key in order:
                if cold:
                    # A running mount keeps the store pages it read mapped, and drop_caches leaves
                    # mapped pages alone: every cold row starts with no mount process, a mount
                    # row with a fresh one.
                    mount.down()
                    if key.endswith("mount"):
                        mount.up()
                    drop_caches()
                    t0 = time.perf_counter()
                    rows[key]()
                    times["cold"][key].append(time.perf_counter() - t0)
                if key.endswith("mount"):
                    mount.up()
                t0 = time.perf_counter()
                rows[key]()
                times["warm"][key].append(time.perf_counter() - t0)
                print(f"run {r + 1} {key}: " + ", ".join(f"{m} {times[m][key][-1]:.2f}s"
                                                        for m in ("cold", "warm") if times[m][key]),
                      file=sys.stderr, flush=True)
    finally:
        mount.down()
    tree_bytes = sum(f.stat().st_size for f in tree1g.rglob("*") if f.is_file())
    sizes = {"big": big.stat().st_size, "tree": tree_bytes}
    med = {m: {k: statistics.median(v) for k, v in t.items() if v} for m, t in times.items()}
    print(f"\nmachine: {machine()}; code {source_state()}; load {os.getloadavg()}")
    for mode in ("cold", "warm"):
        if not med[mode]:
            continue
        print(f"\n{mode} (median of {a.runs}):")
        for k, v in med[mode].items():
            what = k.split(":")[0]
            rate = f"{sizes[what] / v / 1e6:8.1f} MB/s" if what in sizes else ""
            print(f"  {k:16} {v:8.2f} s {rate}")
    failed = False
    if cold:
        c = med["cold"]
        ratios = {"big: mount / cat": c["big: cat"] / c["big: mount"],
                  "big: mount / original": c["big: original"] / c["big: mount"],
                  "tree: mount / original": c["tree: original"] / c["tree: mount"]}
        print("\ntargets (cold; speed ratios):")
        for k, v in ratios.items():
            need = REQUIRED.get(k, GOALS.get(k, 0.0))
            ok = v >= need
            failed |= k in REQUIRED and not ok
            print(f"  {k:24} {v:5.2f}x  {'required' if k in REQUIRED else 'goal'} >= {need}: "
                  f"{'PASS' if ok else 'MISS'}")
        meta = c["meta: mount"] / c["meta: original"]
        print(f"  {'meta: mount / disk time':24} {meta:5.2f}x  goal <= {META_GOAL}: "
              f"{'PASS' if meta <= META_GOAL else 'MISS'}")
    if a.json:
        a.json.write_text(json.dumps({"machine": machine(), "times": times, "medians": med, "cids": cids},
                                     indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

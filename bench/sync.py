"""Benchmark ``ipmirror mirror sync`` on a 100,000-file registry-shaped tree: a full sync, a sync
after 1% of the files changed, a no-op sync, and Kubo 0.22's add of the same tree.

Usage::

    python bench/sync.py [--files 100000] [--seed 1] [--tree DIR] [--runs 3] [--kubo-runs K]
                         [--skip kubo,add] [--json OUT] [--scratch DIR] [--ipmirror CMD] [--freeze-src]

Steps (see bench/README.md for the conventions shared with bench/add.py):

1. Make sure the tree exists. The default ``bench/out/tree-100k`` (``tree-<N>`` for other
   ``--files``) is generated here, deterministically, and reused when its manifest
   (``<tree>.manifest.json``, beside the tree) and its (path, size) listing match. Layout::

       pool/main/<p>/<package>/<package>_<ver>_<arch>.deb, .dsc, .debian.tar.xz   ~75% of the files
       dists/stable/main/by-hash/SHA256/<64 hex digits>                           ~25%, ONE flat dir

   ``<p>`` is the package's first letter, or ``lib`` + the next letter (Debian's pool layout).
   Each package directory holds 10-69 files, so 100,000 files make about 1,900 package
   directories: few enough for Kubo 0.22, which is very slow on many subdirectories. The flat
   directory (25,000 entries at 100,000 files) becomes a HAMT under unixfs-v1-2025; the benchmark
   checks and reports that. File sizes are log-uniform from 1 to 64 KiB; the bytes are SHAKE-128
   of (seed, path, generation); modes 0644, mtimes 2020-01-01T00:00:00Z.
2. Warm the page cache, then per round (fresh repository each time, in a scratch directory on the
   tree's file system):

   a. ``ipmirror mirror add bench TREE --profile unixfs-v1-2025`` (untimed), then the timed full
      ``mirror sync bench --json``. Its root must equal ``ipmirror add --only-hash`` of the tree.
   b. Change 1% of the files: a third rewritten with new bytes (new size), a third deleted, a third
      added (in package directories and in the flat directory alike), chosen deterministically and
      differently in every round. Changed and added files get the mtime 2021-01-01T00:00:00Z, well
      in the past, like rsync would set it (it also keeps them clear of the racily-clean rule);
      unchanged files are not touched. Timed ``mirror sync`` ("1% sync"); its JSON must count
      exactly the files read, added, changed and removed, and its root must equal
      ``ipmirror add --only-hash`` of the changed tree (also timed, as an info row).
   c. Timed no-op ``mirror sync``: nothing read, same root.
   d. Put the tree back as it was (the manifest says "mutated" meanwhile, so an interrupted run
      regenerates the tree next time) and check its listing.

   ``ipmirror add`` (stored, fresh repository) and Kubo 0.22's add (``kubo_cid.py --time`` from
   the reference directory, ``$IPMIRROR_REFERENCE``, default ``../shared/reference``; fresh repo,
   created beforehand; the AddFile call is the time used) of the original tree are measured once
   per round too (Kubo in the first ``--kubo-runs`` rounds only), and so are two floors of a no-op
   sync: ``ipmirror version`` (process start-up and imports) and a plain Python walk that scandirs,
   sorts and lstats the whole tree in-process. ``sync`` runs before every
   measurement; each one records the CPU time other processes used meanwhile (/proc/stat), and
   the ipmirror processes' peak RssAnon and VmHWM (/proc/PID/status every 20 ms).
3. Print medians, files/s, MB/s, the ratios and the targets with PASS/MISS (1% sync <= 3% of the
   full sync, no-op <= 2%, full sync >= 2x faster than Kubo's add: required). Exit status 1 if
   a required check fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from _common import (
    BENCH_DIR,
    FIXED_MTIME,
    MIB,
    Check,
    ProcResult,
    Row,
    busy_cpu_s,
    check_table,
    default_ipmirror,
    df_t,
    ensure_generated,
    finish_dirs,
    freeze_src,
    ipm_env,
    kubo_script,
    listing,
    log,
    machine,
    manifest_path,
    own_cpu_s,
    parse_addfile,
    pick,
    planned_listing,
    read_all,
    read_manifest,
    rmtree,
    run_proc,
    scratch_base,
    settle,
    source_state,
    tree_files,
)

PROFILE = "unixfs-v1-2025"
MIRROR = "bench"
GENERATOR_VERSION = 1
CHANGED_MTIME = 1609459200  # 2021-01-01T00:00:00Z: files changed or added by a round
POOL = "pool/main"
FLAT_DIR = "dists/stable/main/by-hash/SHA256"
SUFFIXES = ("_amd64.deb", "_arm64.deb", "_i386.deb", "_all.deb", ".dsc", ".debian.tar.xz")
SKIPPABLE = ("kubo", "add")
CHANGE_SHARE = 0.01

# targets
ONE_PCT_VS_FULL = 0.03
NOOP_VS_FULL = 0.02
FULL_VS_KUBO = 2.0

_WORDS = (
    "apt", "base", "bind", "boot", "cairo", "core", "curl", "dbus", "dev", "dns", "font", "gcc", "gtk",
    "http", "icu", "image", "kde", "kernel", "krb", "ldap", "llvm", "lua", "mesa", "mysql", "net", "nss",
    "ocaml", "openssl", "pam", "perl", "php", "png", "poppler", "python", "qt", "ruby", "rust", "samba",
    "sdl", "sqlite", "ssh", "systemd", "tcl", "tex", "utils", "vim", "wayland", "xml", "xorg", "zlib",
)


# -- the tree -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncTreeSpec:
    files: int = 100_000
    seed: int = 1
    flat_share: float = 0.25  # share of the files in the one flat directory
    min_kib: int = 1
    max_kib: int = 64
    min_per_package: int = 10
    max_per_package: int = 70  # exclusive


def _size(rng: random.Random, spec: SyncTreeSpec) -> int:
    lo, hi = math.log(spec.min_kib * 1024), math.log(spec.max_kib * 1024)
    return int(math.exp(lo + rng.random() * (hi - lo)))


def _flat_name(seed: int, what: str) -> str:
    return hashlib.sha256(f"ipmirror-sync-bench\0{seed}\0{what}".encode()).hexdigest()


def plan_tree(spec: SyncTreeSpec) -> list[tuple[str, int]]:
    """(relative path, size) of every file, in a fixed order. Only ``Random.random()`` is used,
    whose sequence Python keeps stable across versions."""
    rng = random.Random(f"ipmirror-sync-tree\0{spec.seed}")
    n_flat = round(spec.files * spec.flat_share)
    out = [(f"{FLAT_DIR}/{_flat_name(spec.seed, f'flat{i}')}", _size(rng, spec)) for i in range(n_flat)]
    left = spec.files - n_flat
    k = 0
    span = spec.max_per_package - spec.min_per_package
    while left > 0:
        pkg = f"{pick(rng, _WORDS)}-{pick(rng, _WORDS)}{k}"
        if rng.random() < 0.2:
            pkg = "lib" + pkg
        k += 1
        pdir = f"{POOL}/{pkg[:4] if pkg.startswith('lib') else pkg[0]}/{pkg}"
        n = min(left, spec.min_per_package + int(rng.random() * span))
        left -= n
        for j in range(n):
            v = j // len(SUFFIXES)
            name = f"{pkg}_{v // 10 + 1}.{v % 10}-1{SUFFIXES[j % len(SUFFIXES)]}"
            out.append((f"{pdir}/{name}", _size(rng, spec)))
    return out


def content(seed: int, rel: str, size: int, gen: int = 0) -> bytes:
    """The bytes of a file: generation 0 is the original tree, ``round + 1`` a round's rewrite."""
    return hashlib.shake_128(f"ipmirror-sync-bench\0{seed}\0{rel}\0{gen}".encode()).digest(size)


def write_file(path: Path, data: bytes, mtime: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.fchmod(fd, 0o644)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.utime(path, (mtime, mtime))


def set_state(tree: Path, state: str) -> None:
    m = read_manifest(tree)
    assert m is not None
    m["state"] = state
    manifest_path(tree).write_text(json.dumps(m, indent=2) + "\n")


def tree_matches(tree: Path, spec: SyncTreeSpec) -> bool:
    m = read_manifest(tree)
    if not tree.is_dir() or m is None:
        return False
    if m.get("version") != GENERATOR_VERSION or m.get("spec") != asdict(spec) or m.get("state") != "clean":
        return False
    return listing(tree) == (m.get("files"), m.get("bytes"), m.get("listing_sha256"))


def generate(tree: Path, spec: SyncTreeSpec, plan: Sequence[tuple[str, int]]) -> None:
    t0 = time.perf_counter()
    made: set[Path] = set()
    for rel, size in plan:
        p = tree / rel
        if p.parent not in made:
            p.parent.mkdir(parents=True, exist_ok=True)
            made.add(p.parent)
        write_file(p, content(spec.seed, rel, size), FIXED_MTIME)
    finish_dirs(tree)
    nfiles, nbytes, digest = planned_listing(plan)
    m = {"generator": "bench/sync.py", "version": GENERATOR_VERSION, "spec": asdict(spec), "files": nfiles,
         "bytes": nbytes, "dirs": len({str(Path(r).parent) for r, _ in plan}), "listing_sha256": digest,
         "state": "clean"}
    manifest_path(tree).write_text(json.dumps(m, indent=2) + "\n")
    print(f"bench: wrote {tree}: {nfiles} files, {nbytes} bytes in {time.perf_counter() - t0:.1f}s",
          file=sys.stderr, flush=True)


def ensure_tree(tree: Path, spec: SyncTreeSpec, plan: Sequence[tuple[str, int]]) -> bool:
    """Make sure ``tree`` holds ``spec``'s tree; True if it was (re)generated. A directory without
    our manifest is never deleted."""
    return ensure_generated(tree, lambda: tree_matches(tree, spec), lambda: generate(tree, spec, plan),
                            "bench/sync.py", "choose another --tree")


# -- the 1% change ----------------------------------------------------------------------------------


@dataclass
class Mutation:
    rnd: int
    modify: list[tuple[str, int, int]] = field(default_factory=list)  # path, old size, new size
    delete: list[tuple[str, int]] = field(default_factory=list)  # path, size
    add: list[tuple[str, int]] = field(default_factory=list)  # path, size

    def paths(self) -> list[str]:
        return [p for p, _o, _n in self.modify] + [p for p, _s in [*self.delete, *self.add]]

    def counts(self) -> dict[str, int]:
        flat = sum(1 for p in self.paths() if p.startswith(FLAT_DIR + "/"))
        return {"modified": len(self.modify), "deleted": len(self.delete), "added": len(self.add),
                "in_flat_dir": flat}


def plan_mutation(spec: SyncTreeSpec, plan: Sequence[tuple[str, int]], rnd: int) -> Mutation:
    rng = random.Random(f"ipmirror-sync-mutate\0{spec.seed}\0{rnd}")
    n = max(3, round(len(plan) * CHANGE_SHARE))
    n_mod = n_del = n // 3
    n_add = n - n_mod - n_del
    picked: list[int] = []
    seen: set[int] = set()
    while len(picked) < n_mod + n_del:
        i = int(rng.random() * len(plan))
        if i not in seen:
            seen.add(i)
            picked.append(i)
    m = Mutation(rnd)
    for i in picked[:n_mod]:
        rel, size = plan[i]
        new = _size(rng, spec)
        m.modify.append((rel, size, new if new != size else size + 1))
    m.delete = [plan[i] for i in picked[n_mod:]]
    pkg_dirs = sorted({rel.rsplit("/", 1)[0] for rel, _ in plan if rel.startswith(POOL + "/")})
    for k in range(n_add):
        if rng.random() < spec.flat_share or not pkg_dirs:
            rel = f"{FLAT_DIR}/{_flat_name(spec.seed, f'add{rnd}-{k}')}"
        else:
            d = pick(rng, pkg_dirs)
            rel = f"{d}/{d.rsplit('/', 1)[1]}_99.{rnd}.{k}-1_amd64.deb"
        m.add.append((rel, _size(rng, spec)))
    return m


def apply_mutation(tree: Path, seed: int, m: Mutation) -> None:
    for rel, _old, new in m.modify:
        write_file(tree / rel, content(seed, rel, new, m.rnd + 1), CHANGED_MTIME)
    for rel, _size in m.delete:
        (tree / rel).unlink()
    for rel, size in m.add:
        write_file(tree / rel, content(seed, rel, size, m.rnd + 1), CHANGED_MTIME)


def undo_mutation(tree: Path, seed: int, m: Mutation) -> None:
    for rel, old, _new in m.modify:
        write_file(tree / rel, content(seed, rel, old), FIXED_MTIME)
    for rel, size in m.delete:
        write_file(tree / rel, content(seed, rel, size), FIXED_MTIME)
    for rel, _size in m.add:
        (tree / rel).unlink()
    for d in {str(Path(rel).parent) for rel in m.paths()}:
        os.utime(tree / d, (FIXED_MTIME, FIXED_MTIME))


def stat_walk(path: bytes) -> int:
    """What a no-op sync cannot avoid, in plain Python: scandir every directory, sort the entries
    by name, lstat each one (the importer's walk without the index). Returns the number of files."""
    with os.scandir(path) as it:
        items = sorted(it, key=lambda d: d.name)
    n = 0
    for d in items:
        d.stat(follow_symlinks=False)
        if d.is_dir(follow_symlinks=False):
            n += stat_walk(d.path)
        else:
            n += 1
    return n


# -- the benchmark ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, tree: Path, spec: SyncTreeSpec,
                 plan: list[tuple[str, int]], scratch: Path) -> None:
        self.args = args
        self.tree = tree
        self.spec = spec
        self.plan = plan
        self.scratch = scratch
        self.files = tree_files(tree)
        self.tree_bytes = sum(s for _, s in self.files)
        self.rows: dict[str, Row] = {}
        self.notes: list[str] = []
        self.failures: list[str] = []  # failed correctness checks
        self.roots: dict[str, str] = {}
        self.hamt: dict[str, object] = {}
        self.mutations: list[dict[str, int]] = []
        self.ipmirror: list[str] = args.ipmirror
        self.pythonpath: str | None = None
        if args.freeze_src:
            self.ipmirror = [sys.executable, "-m", "ipmirror"]
            self.pythonpath = freeze_src(scratch)
        self.kubo_script: Path | None = None
        self.skip: set[str] = set(args.skip)
        self.loadavg: list[str] = []
        self._n = 0

    def log(self, msg: str) -> None:
        log(msg)

    def row(self, key: str, label: str) -> Row:
        if key not in self.rows:
            self.rows[key] = Row(key, label)
        return self.rows[key]

    def fresh(self, name: str) -> Path:
        self._n += 1
        p = self.scratch / f"{name}-{self._n}"
        rmtree(p)
        return p

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)
            self.log(f"CHECK FAILED: {what}")

    def env(self, repo: Path) -> dict[str, str]:
        return ipm_env(self.pythonpath, repo)

    def measured(self, key: str, label: str, fn: Callable[[], ProcResult],
                 extra: Callable[[ProcResult], dict[str, object]] | None = None) -> ProcResult:
        """Run ``fn`` after ``sync``; record its wall time, CPU, memory and others' CPU under ``key``."""
        settle()
        busy0, own0 = busy_cpu_s(), own_cpu_s()
        r = fn()
        others = max(0.0, (busy_cpu_s() - busy0) - (own_cpu_s() - own0))
        row = self.row(key, label)
        row.seconds.append(r.seconds)
        row.others_cpu.append(others)
        e: dict[str, object] = {"cpu_user": r.cpu_user, "cpu_sys": r.cpu_sys,
                                "rss_anon_mb": r.rss_anon_kb * 1024 / 1e6,
                                "vm_hwm_mb": r.vm_hwm_kb * 1024 / 1e6}
        if extra is not None:
            e.update(extra(r))
        row.extra.append(e)
        self.log(f"{label}: {r.seconds:.2f}s (user {r.cpu_user:.2f}s sys {r.cpu_sys:.2f}s, "
                 f"RssAnon {r.rss_anon_kb / 1024:.0f} MiB, others' CPU {others:.1f}s)")
        return r

    # -- ipmirror ---------------------------------------------------------------------------------
    def only_hash(self, key: str, label: str) -> str:
        cmd = [*self.ipmirror, "add", "-Q", "--profile", PROFILE, "--only-hash", str(self.tree)]
        r = self.measured(key, label, lambda: run_proc(cmd, env=self.env(self.scratch / "unused-repo"),
                                                       poll_mem=True))
        return r.stdout.strip().splitlines()[-1]

    def stored_add(self) -> None:
        repo = self.fresh("add-repo")
        cmd = [*self.ipmirror, "add", "-Q", "--profile", PROFILE, str(self.tree)]
        r = self.measured("add", f"ipmirror add, stored ({PROFILE})",
                          lambda: run_proc(cmd, env=self.env(repo), poll_mem=True))
        root = r.stdout.strip().splitlines()[-1]
        self.check(root == self.roots["original"], f"ipmirror add root {root} != --only-hash root")
        rmtree(repo)

    def sync(self, repo: Path, key: str, label: str) -> dict[str, object]:
        cmd = [*self.ipmirror, "mirror", "sync", MIRROR, "--json"]
        out: dict[str, object] = {}

        def extra(r: ProcResult) -> dict[str, object]:
            out.update(json.loads(r.stdout.strip().splitlines()[-1]))
            return {k: out[k] for k in ("read_files", "read_bytes", "files", "added", "changed", "removed",
                                        "duration") if k in out}

        self.measured(key, label, lambda: run_proc(cmd, env=self.env(repo), poll_mem=True), extra)
        return out

    def inspect_flat_dir(self, repo: Path, root: str) -> None:
        """Is the flat directory a HAMT in the stored DAG? (``ipmirror ls`` its parent for its CID,
        ``ipmirror block get`` it, decode it with ipmirror's codec.)"""
        from ipmirror.codec.cid import CID
        from ipmirror.unixfs.exporter import decode_node

        parent, name = FLAT_DIR.rsplit("/", 1)
        r = run_proc([*self.ipmirror, "ls", "--json", f"{root}/{parent}"], env=self.env(repo))
        links = json.loads(r.stdout)["Objects"][0]["Links"]
        cid = next(lk["Hash"] for lk in links if lk["Name"] == name)
        blk = subprocess.run([*self.ipmirror, "block", "get", cid], env=self.env(repo), capture_output=True,
                             check=True).stdout
        node = decode_node(CID.parse(cid), blk)
        entries = sum(1 for rel, _ in self.plan if rel.startswith(FLAT_DIR + "/"))
        self.hamt = {"path": FLAT_DIR, "entries": entries, "cid": cid, "kind": node.kind,
                     "fanout": node.data.fanout if node.data is not None else None,
                     "top_block_links": len(node.pb.links) if node.pb is not None else 0,
                     "top_block_bytes": len(blk)}
        self.log(f"flat dir {FLAT_DIR} ({entries} entries): {node.kind}, fanout {self.hamt['fanout']}, "
                 f"{self.hamt['top_block_links']} links in its top block")

    def floors(self) -> None:
        """Two floors of a no-op sync: process start-up with ipmirror's imports, and the stat walk."""
        cmd = [*self.ipmirror, "version"]
        self.measured("startup", "ipmirror version (start-up + imports)",
                      lambda: run_proc(cmd, env=self.env(self.scratch / "unused-repo"), poll_mem=True))
        settle()
        busy0, own0 = busy_cpu_s(), own_cpu_s()
        t0 = time.perf_counter()
        n = stat_walk(os.fsencode(self.tree))
        dt = time.perf_counter() - t0
        others = max(0.0, (busy_cpu_s() - busy0) - (own_cpu_s() - own0))
        self.check(n == len(self.files), f"stat walk found {n} files, expected {len(self.files)}")
        row = self.row("statwalk", "Python scandir+sort+lstat of the tree (in-process, 1 thread)")
        row.seconds.append(dt)
        row.others_cpu.append(others)
        self.log(f"{row.label}: {dt:.3f}s")

    def sync_round(self, rnd: int) -> None:
        repo = self.fresh("sync-repo")
        run_proc([*self.ipmirror, "mirror", "add", MIRROR, str(self.tree), "--profile", PROFILE],
                 env=self.env(repo))
        n = len(self.plan)
        v = self.sync(repo, "full", "mirror sync, full (first version)")
        tag = f"round {rnd + 1}"
        self.check(v.get("root") == self.roots["original"],
                   f"{tag}: full sync root {v.get('root')} != --only-hash root {self.roots['original']}")
        self.check(v.get("read_files") == n and v.get("files") == n,
                   f"{tag}: full sync read {v.get('read_files')} of {v.get('files')} files, expected {n}")
        if not self.hamt:
            self.inspect_flat_dir(repo, str(v["root"]))

        m = plan_mutation(self.spec, self.plan, rnd)
        self.mutations.append(m.counts())
        set_state(self.tree, "mutated")
        try:
            apply_mutation(self.tree, self.spec.seed, m)
            self.log(f"round {rnd + 1}: changed the tree: {m.counts()}")
            v1 = self.sync(repo, "one-pct", f"mirror sync after {CHANGE_SHARE:.0%} changed")
            want = {"read_files": len(m.modify) + len(m.add), "added": len(m.add), "changed": len(m.modify),
                    "removed": len(m.delete), "files": n - len(m.delete) + len(m.add)}
            got = {k: v1.get(k) for k in want}
            self.check(got == want, f"round {rnd + 1}: 1% sync counted {got}, expected {want}")
            label = f"ipmirror add --only-hash (tree after the {CHANGE_SHARE:.0%} change)"
            mutated_root = self.only_hash("hash-mutated", label)
            self.check(v1.get("root") == mutated_root,
                       f"round {rnd + 1}: 1% sync root {v1.get('root')} != --only-hash root {mutated_root}")
            self.check(v1.get("root") != v.get("root"), f"round {rnd + 1}: 1% sync root did not change")

            v2 = self.sync(repo, "noop", "mirror sync, nothing changed")
            quiet = v2.get("added") == v2.get("changed") == v2.get("removed") == 0
            self.check(v2.get("read_files") == 0 and quiet,
                       f"round {rnd + 1}: no-op sync read {v2.get('read_files')} files "
                       f"(+{v2.get('added')} ~{v2.get('changed')} -{v2.get('removed')})")
            self.check(v2.get("root") == v1.get("root"), f"round {rnd + 1}: no-op sync changed the root")
        finally:
            undo_mutation(self.tree, self.spec.seed, m)
        m_ = read_manifest(self.tree)
        assert m_ is not None
        ok = listing(self.tree) == (m_["files"], m_["bytes"], m_["listing_sha256"])
        if not ok:
            raise SystemExit(f"bench: {self.tree} does not match its manifest after the round was undone")
        set_state(self.tree, "clean")
        rmtree(repo)

    # -- Kubo ---------------------------------------------------------------------------------------
    def kubo_setup(self) -> None:
        script, why = kubo_script(self.scratch / "kubo-probe")
        if why is not None:
            self.notes.append(why)
            self.log(why)
        self.kubo_script = script

    def kubo_add(self) -> None:
        assert self.kubo_script is not None
        repo = self.fresh("kubo-repo")
        run_proc([sys.executable, str(self.kubo_script), "--init-only", "--repo", str(repo)])
        cmd = [sys.executable, str(self.kubo_script), "--repo", str(repo), "--time", str(self.tree)]
        settle()
        busy0, own0 = busy_cpu_s(), own_cpu_s()
        r = run_proc(cmd, poll_mem=True)
        others = max(0.0, (busy_cpu_s() - busy0) - (own_cpu_s() - own0))
        addfile = parse_addfile(r.stderr)
        cid = r.stdout.strip().splitlines()[-1]
        old = self.roots.setdefault("kubo", cid)
        self.check(old == cid, f"Kubo root changed between runs ({old} vs {cid})")
        row = self.row("kubo", "Kubo 0.22 add, stored (AddFile call)")
        row.seconds.append(addfile)
        row.others_cpu.append(others)
        row.extra.append({"rss_anon_mb": r.rss_anon_kb * 1024 / 1e6, "vm_hwm_mb": r.vm_hwm_kb * 1024 / 1e6})
        prow = self.row("kubo-process", "Kubo 0.22 add, stored (whole process)")
        prow.seconds.append(r.seconds)
        prow.others_cpu.append(others)
        prow.extra.append({"cpu_user": r.cpu_user, "cpu_sys": r.cpu_sys})
        self.log(f"Kubo add: AddFile {addfile:.2f}s, process {r.seconds:.2f}s, others' CPU {others:.1f}s")
        rmtree(repo)

    # -- driver -------------------------------------------------------------------------------------
    def run(self) -> None:
        if "kubo" not in self.skip:
            self.kubo_setup()
        self.log(f"warming the page cache ({len(self.files)} files, {self.tree_bytes / 1e6:.0f} MB)")
        read_all(self.files)
        self.roots["original"] = self.only_hash("hash", "ipmirror add --only-hash (original tree)")
        kubo_runs = self.args.runs if self.args.kubo_runs is None else self.args.kubo_runs
        for rnd in range(self.args.runs):
            with open("/proc/loadavg") as f:
                self.loadavg.append(f.read().strip())
            self.log(f"round {rnd + 1}/{self.args.runs} (loadavg {self.loadavg[-1]})")
            read_all(self.files)
            kubo = self.kubo_script is not None and rnd < kubo_runs
            add = "add" not in self.skip
            # alternate what comes first, so that no measurement always follows the same one
            if rnd % 2 == 0:
                if kubo:
                    self.kubo_add()
                if add:
                    self.stored_add()
                self.sync_round(rnd)
                self.floors()
            else:
                self.floors()
                self.sync_round(rnd)
                read_all(self.files)
                if add:
                    self.stored_add()
                if kubo:
                    self.kubo_add()


# -- report ---------------------------------------------------------------------------------------


def checks(b: Bench) -> list[Check]:
    r = b.rows

    def med(key: str) -> float:
        return r[key].median if key in r else math.nan

    out: list[Check] = []
    full = med("full")
    for key, name, limit in (("one-pct", f"{CHANGE_SHARE:.0%} sync / full sync", ONE_PCT_VS_FULL),
                             ("noop", "no-op sync / full sync", NOOP_VS_FULL)):
        v = med(key) / full
        out.append(Check("target", name, v, f"<= {limit:.2f}", None if math.isnan(v) else v <= limit))
    v = med("kubo") / full
    out.append(Check("required", "Kubo add (AddFile) / full sync", v, f">= {FULL_VS_KUBO:.2f}",
                     None if math.isnan(v) else v >= FULL_VS_KUBO))
    out.append(Check("required", "sync results (roots = --only-hash; files read, added, changed, removed)",
                     "all rounds" if not b.failures else f"{len(b.failures)} failed: {b.failures[0]}",
                     "all", not b.failures))
    kind = str(b.hamt.get("kind", "-"))
    out.append(Check("info", f"flat dir ({b.hamt.get('entries', '?')} entries) node kind", kind,
                     "hamt-sharded-directory", None if not b.hamt else kind == "hamt-sharded-directory"))
    peak = r["full"].max_of("rss_anon_mb") if "full" in r else math.nan
    out.append(Check("info", "peak RssAnon of the full sync (MB)", peak, "-", None))
    return out


def _num(x: float, fmt: str = ".2f") -> str:
    return "-" if math.isnan(x) else format(x, fmt)


def _sec(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.2f}"


def table(b: Bench) -> str:
    lines = ["| row | median s | files/s | MB/s | runs (s) | in sync() s | files read | CPU user+sys s "
             "| peak RssAnon MB | VmHWM MB | others' CPU s |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    nfiles = len(b.files)
    for row in b.rows.values():
        runs = ", ".join(_sec(s) for s in row.seconds)
        cpu = row.median_of("cpu_user") + row.median_of("cpu_sys")
        read = row.median_of("read_files")
        whole_tree = row.key in ("full", "add", "hash", "kubo", "kubo-process")
        fps = nfiles / row.median if whole_tree else math.nan
        mbps = b.tree_bytes / 1e6 / row.median if whole_tree else math.nan
        others = statistics.median(row.others_cpu) if row.others_cpu else math.nan
        lines.append(f"| {row.label} | {_sec(row.median)} | {_num(fps, '.0f')} | {_num(mbps, '.0f')} | "
                     f"{runs} | {_num(row.median_of('duration'))} | {_num(read, '.0f')} | {_num(cpu)} | "
                     f"{_num(row.max_of('rss_anon_mb'), '.0f')} | {_num(row.max_of('vm_hwm_mb'), '.0f')} | "
                     f"{_num(others, '.1f')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=SyncTreeSpec.files, help="files in the tree (100000)")
    ap.add_argument("--seed", type=int, default=SyncTreeSpec.seed, help="seed of the tree (1)")
    ap.add_argument("--tree", type=Path, help="where the tree goes (default bench/out/tree-100k, tree-<N>)")
    ap.add_argument("--runs", type=int, default=3, help="rounds; medians are reported (3)")
    ap.add_argument("--kubo-runs", type=int, help="rounds that include Kubo's add (default: all)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write raw numbers to OUT")
    ap.add_argument("--skip", type=lambda s: [x for x in s.split(",") if x], default=[],
                    help=f"comma-separated rows to leave out: {','.join(SKIPPABLE)}")
    ap.add_argument("--scratch", type=Path, help="where scratch repos go (same file system as the tree)")
    ap.add_argument("--ipmirror", type=lambda s: s.split(), default=default_ipmirror(),
                    help="ipmirror command (default: the one beside this Python)")
    ap.add_argument("--freeze-src", action="store_true",
                    help="measure a copy of src/ taken at the start (python -m ipmirror from it)")
    a = ap.parse_args(argv)
    if a.runs < 1 or a.files < 100:
        ap.error("--runs must be >= 1 and --files >= 100")
    if bad := set(a.skip) - set(SKIPPABLE):
        ap.error(f"--skip: unknown {sorted(bad)}")

    spec = SyncTreeSpec(files=a.files, seed=a.seed)
    default_name = f"tree-{a.files // 1000}k" if a.files % 1000 == 0 else f"tree-{a.files}"
    tree: Path = (a.tree or BENCH_DIR / "out" / default_name).resolve()
    plan = plan_tree(spec)
    generated = ensure_tree(tree, spec, plan)
    nfiles, nbytes, digest = listing(tree)
    ndirs = sum(1 for _ in os.walk(tree))

    scratch = Path(tempfile.mkdtemp(prefix="sync-bench-", dir=scratch_base(tree, a.scratch)))
    info = machine()
    info["source"] = source_state()
    t0 = time.time()
    try:
        bench = Bench(a, tree, spec, plan, scratch)
        bench.run()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    now = source_state()
    if now != info["source"]:
        what = "measured: the copy taken at the start" if a.freeze_src else "results may mix versions"
        bench.notes.append(f"src/ changed during the run (was {info['source']}, now {now}; {what})")
    kubo_rounds = len(bench.rows["kubo"].seconds) if "kubo" in bench.rows else 0
    if 0 < kubo_rounds < a.runs:
        bench.notes.append(f"Kubo's add was measured in {kubo_rounds} of {a.runs} rounds (--kubo-runs)")
    cs = checks(bench)
    print(f"\ntree: {tree} ({nfiles} files in {ndirs} directories, {nbytes} bytes = {nbytes / MIB:.1f} MiB"
          f"{', generated' if generated else ''}; flat dir {FLAT_DIR}: {bench.hamt.get('entries')} entries, "
          f"{bench.hamt.get('kind')})")
    print(f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['mem_total_gib']} GiB RAM, "
          f"Python {info['python']}, Linux {info['kernel']}; ipmirror source {info['source']}")
    print(f"runs: {a.runs} (medians); profile {PROFILE}; MB = 10^6 bytes; files/s and MB/s = whole tree / "
          f"median s; loadavg at round starts: {' | '.join(bench.loadavg)}")
    print(f"changes per round: {', '.join(json.dumps(m) for m in bench.mutations)}\n")
    print(table(bench))
    print()
    print(check_table(cs))
    for key, cid in sorted(bench.roots.items()):
        print(f"root {key}: {cid}")
    for n in bench.notes:
        print(f"note: {n}")
    for f in bench.failures:
        print(f"failed: {f}")

    if a.json:
        doc = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t0)),
            "command": [sys.argv[0], *(argv if argv is not None else sys.argv[1:])],
            "machine": info,
            "df": df_t(tree),
            "tree": {"path": str(tree), "files": nfiles, "dirs": ndirs, "bytes": nbytes,
                     "listing_sha256": digest, "generated_now": generated, "spec": dataclasses.asdict(spec)},
            "flat_dir": bench.hamt,
            "profile": PROFILE,
            "runs": a.runs,
            "loadavg_per_round": bench.loadavg,
            "mutations": bench.mutations,
            "rows": {k: {"label": r.label, "seconds": r.seconds, "median_s": r.median, "extra": r.extra,
                         "others_cpu_s": r.others_cpu} for k, r in bench.rows.items()},
            "roots": bench.roots,
            "checks": [{"kind": c.kind, "name": c.name, "value": c.value, "target": c.target, "ok": c.ok}
                       for c in cs],
            "failures": bench.failures,
            "notes": bench.notes,
        }
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(doc, indent=2, allow_nan=True) + "\n")
    return 0 if all(c.ok is not False for c in cs if c.kind == "required") else 1


if __name__ == "__main__":
    sys.exit(main())

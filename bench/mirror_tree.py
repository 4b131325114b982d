"""Deterministic, PyPI-shaped synthetic mirror tree for benchmarks.

Usage (also used by ``bench/add.py``)::

    python bench/mirror_tree.py OUT [--size-mb 1024] [--seed 1] [--force]

Layout::

    OUT/packages/<b0>/<b1>/<project>/<project>-<ver>.tar.gz           archive (incompressible bytes)
    OUT/packages/<b0>/<b1>/<project>/<project>-<ver>-py3-none-any.whl archive
    OUT/packages/<b0>/<b1>/<project>/<archive>.metadata              PEP 658 sidecar (text, 1-10 KiB)
    OUT/simple/<project>/index.html                                   PEP 503 page
    OUT/pypi/<project>/json                                           project JSON
    OUT/pypi/<project>/<ver>/json                                     release JSON (text, 1-10 KiB)

``<b0>/<b1>`` are the first two bytes (hex) of the BLAKE2b hash of the project name.
Archive sizes are log-uniform between ``min_kib`` KiB and ``max_mib`` MiB and are drawn until they
add up to exactly ``size_mb`` MiB (the last one is cut to fit); text files come on top (~1%).
1024 MiB gives about 500 archives and 1,600 files.

Determinism: the layout uses only ``random.Random(seed).random()`` (whose sequence Python keeps
stable across versions); archive bytes are SHAKE-128 of (seed, path); text comes from a
``random.Random`` seeded with a string. Modes are 0644/0755 and mtimes 2020-01-01T00:00:00Z.
The same parameters give a byte-identical tree on any machine.

A manifest ``OUT.manifest.json`` (next to OUT, not inside it, so ``add --hidden`` does not see it)
records the parameters and a digest of the (path, size) listing; :func:`ensure_tree` reuses a
tree whose manifest and listing match and regenerates it otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from _common import (
    FIXED_MTIME,
    KIB,
    MIB,
    ensure_generated,
    finish_dirs,
    listing,
    manifest_path,
    pick,
    planned_listing,
)

GENERATOR_VERSION = 1

_WORDS = (
    "async", "binary", "cache", "client", "codec", "config", "crypto", "data", "date", "debug", "docs",
    "event", "fast", "file", "format", "graph", "http", "image", "io", "json", "lazy", "log", "math",
    "mock", "net", "orm", "parse", "path", "plot", "pool", "proto", "queue", "rest", "retry", "schema",
    "serial", "shell", "signal", "sql", "stream", "sync", "table", "task", "test", "text", "time", "toml",
    "tree", "type", "units", "url", "util", "valid", "vector", "web", "xml", "yaml", "zip",
)


@dataclass(frozen=True)
class TreeSpec:
    size_mb: float = 1024.0
    seed: int = 1
    min_kib: float = 1.0
    max_mib: float = 20.0


@dataclass(frozen=True)
class _File:
    rel: str
    kind: str  # "bin" (SHAKE bytes of size n), "text" (words, size n) or "raw" (data given)
    size: int
    data: bytes = b""


def _plan(spec: TreeSpec) -> list[_File]:
    """The list of files to write, in a fixed order."""
    rng = random.Random(spec.seed)
    lo = math.log(spec.min_kib * KIB)
    hi = math.log(spec.max_mib * MIB)
    budget = int(spec.size_mb * MIB)
    out: list[_File] = []
    total = 0
    n = 0
    while total < budget:
        project = f"{pick(rng, _WORDS)}-{pick(rng, _WORDS)}{n:04d}"
        n += 1
        h = hashlib.blake2b(project.encode(), digest_size=8).hexdigest()
        pdir = f"packages/{h[0:2]}/{h[2:4]}/{project}"
        releases: list[tuple[str, list[tuple[str, int]]]] = []
        for r in range(1 + int(rng.random() * 3)):  # 1..3 releases
            ver = f"{int(rng.random() * 4)}.{r}.{int(rng.random() * 12)}"
            dists: list[tuple[str, int]] = []
            for k in range(1 + int(rng.random() * 2)):  # sdist, then maybe a wheel
                if total >= budget:
                    break
                size = min(int(math.exp(lo + rng.random() * (hi - lo))), budget - total)
                total += size
                name = f"{project}-{ver}" + (".tar.gz" if k == 0 else "-py3-none-any.whl")
                out.append(_File(f"{pdir}/{name}", "bin", size))
                out.append(_File(f"{pdir}/{name}.metadata", "text", KIB + int(rng.random() * 9 * KIB)))
                dists.append((name, size))
            out.append(_File(f"pypi/{project}/{ver}/json", "text", KIB + int(rng.random() * 9 * KIB)))
            releases.append((ver, dists))
        links = "".join(
            f'    <a href="../../{pdir}/{name}#sha256={hashlib.sha256(name.encode()).hexdigest()}">'
            f"{name}</a><br/>\n"
            for _, dists in releases for name, _ in dists
        )
        page = f"<!DOCTYPE html>\n<html>\n  <body>\n{links}  </body>\n</html>\n".encode()
        out.append(_File(f"simple/{project}/index.html", "raw", len(page), page))
        meta = {
            "info": {"name": project, "version": releases[-1][0]},
            "releases": {v: [{"filename": nm, "size": sz} for nm, sz in d] for v, d in releases},
        }
        blob = (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode()
        out.append(_File(f"pypi/{project}/json", "raw", len(blob), blob))
    return out


def _text(seed: int, rel: str, size: int) -> bytes:
    rng = random.Random(f"ipmirror-bench-text\0{seed}\0{rel}")
    words: list[str] = []
    n = 0
    while n < size:
        w = pick(rng, _WORDS)
        words.append(w)
        n += len(w) + 1
    return (" ".join(words)[: size - 1] + "\n").encode() if size else b""


def _binary(seed: int, rel: str, size: int) -> bytes:
    return hashlib.shake_128(f"ipmirror-bench-bin\0{seed}\0{rel}".encode()).digest(size) if size else b""


def _content(spec: TreeSpec, f: _File) -> bytes:
    if f.kind == "bin":
        return _binary(spec.seed, f.rel, f.size)
    if f.kind == "text":
        return _text(spec.seed, f.rel, f.size)
    return f.data


def generate(out: Path, spec: TreeSpec, *, log: bool = True) -> dict[str, object]:
    """Write the tree to ``out`` (which must not exist) and its manifest; returns the manifest."""
    t0 = time.perf_counter()
    plan = _plan(spec)
    made: set[str] = set()
    for f in plan:
        p = out / f.rel
        d = str(p.parent)
        if d not in made:
            os.makedirs(d, exist_ok=True)
            made.add(d)
        data = _content(spec, f)
        assert len(data) == f.size, f.rel
        with open(p, "wb") as fh:
            fh.write(data)
        os.chmod(p, 0o644)
        os.utime(p, (FIXED_MTIME, FIXED_MTIME))
    finish_dirs(out)
    nfiles, nbytes, digest = planned_listing((f.rel, f.size) for f in plan)
    manifest: dict[str, object] = {
        "generator": "bench/mirror_tree.py",
        "version": GENERATOR_VERSION,
        "spec": asdict(spec),
        "files": nfiles,
        "archives": sum(1 for f in plan if f.kind == "bin"),
        "dirs": len({str(Path(f.rel).parent) for f in plan}),
        "bytes": nbytes,
        "listing_sha256": digest,
    }
    manifest_path(out).write_text(json.dumps(manifest, indent=2) + "\n")
    if log:
        print(f"mirror_tree: wrote {out}: {nfiles} files ({manifest['archives']} archives), "
              f"{nbytes} bytes ({nbytes / MIB:.1f} MiB) in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return manifest


def matches(out: Path, spec: TreeSpec) -> bool:
    """True if ``out`` holds the tree ``spec`` describes (manifest and (path, size) listing agree)."""
    mp = manifest_path(out)
    if not out.is_dir() or not mp.is_file():
        return False
    try:
        m = json.loads(mp.read_text())
    except (OSError, ValueError):
        return False
    if m.get("version") != GENERATOR_VERSION or m.get("spec") != asdict(spec):
        return False
    return listing(out) == (m.get("files"), m.get("bytes"), m.get("listing_sha256"))


def ensure_tree(out: Path, spec: TreeSpec) -> bool:
    """Make sure ``out`` holds the tree for ``spec``; returns True if it had to be (re)generated.

    A directory without our manifest is never deleted (it may be someone's data): that is an error.
    """
    return ensure_generated(out, lambda: matches(out, spec), lambda: generate(out, spec),
                            "bench/mirror_tree.py")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--size-mb", type=float, default=TreeSpec.size_mb, help="archive bytes, in MiB")
    ap.add_argument("--seed", type=int, default=TreeSpec.seed)
    ap.add_argument("--min-kib", type=float, default=TreeSpec.min_kib)
    ap.add_argument("--max-mib", type=float, default=TreeSpec.max_mib)
    ap.add_argument("--force", action="store_true", help="regenerate even if the tree matches")
    a = ap.parse_args(argv)
    spec = TreeSpec(a.size_mb, a.seed, a.min_kib, a.max_mib)
    if a.force and a.out.exists() and manifest_path(a.out).exists():
        shutil.rmtree(a.out)
        manifest_path(a.out).unlink()
    if not ensure_tree(a.out, spec):
        print(f"mirror_tree: {a.out} already matches; nothing to do", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

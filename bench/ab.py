"""Alternating A/B pairs: run one benchmark script against two installs of ipmirror in turns.

Usage::

    python bench/ab.py --a /work/before/.venv/bin/python --b .venv/bin/python --pairs 3 \\
        --name add -- bench/add.py --runs 1 --skip kubo,cp,floor,dd

Each side is a Python interpreter of a venv with ipmirror installed (``pip install .``, not
editable, so the measured code stays fixed). The benchmark script runs with that interpreter, so
its default ``ipmirror`` (the one beside ``sys.executable``) is that side's. Pairs alternate their
order (A B, B A, A B, …) so that a machine getting busier or quieter does not favour one side.
Every run writes ``--json`` into ``bench/out/ab-<name>-<side><pair>.json``; the figures of each
pair are compared as B/A and the median ratio is printed per figure, with "better"/"worse"
meaning for that figure (time: lower is better; req/s and bytes/s: higher is better).

CPU figures (user + sys of the measured ipmirror process) are printed beside wall times: on a
busy machine they are the steadier comparison. Understood outputs: ``bench/add.py`` and
``bench/sync.py`` (row medians, seconds) and
``bench/gateway.py`` (ipmirror's 1 GiB download bytes/s, small-file req/s and server CPU per
request).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"

Figures = dict[str, tuple[float, bool]]  # name -> (value, higher is better)


def figures(doc: dict[str, Any]) -> Figures:
    """The comparable numbers of one benchmark run's JSON."""
    out: Figures = {}
    if "rows" in doc:  # add.py, sync.py: seconds per row
        for key, row in doc["rows"].items():
            m = row.get("median_s")
            if isinstance(m, (int, float)) and m == m:
                out[f"{key} (s)"] = (float(m), False)
            cpu = [e["cpu_user"] + e["cpu_sys"] for e in row.get("extra") or []
                   if isinstance(e, dict) and "cpu_user" in e and "cpu_sys" in e]
            if cpu:  # CPU time moves far less than wall time on a busy shared machine
                out[f"{key} CPU (s)"] = (statistics.median(cpu), False)
    if "small" in doc and "big" in doc:  # gateway.py: ipmirror's samples
        big = [s["value"] for s in doc["big"].get("ipmirror", [])]
        small = doc["small"].get("ipmirror", [])
        if big:
            out["1 GiB download (MB/s)"] = (statistics.median(big) / 1e6, True)
        if small:
            out["small files (req/s)"] = (statistics.median(s["value"] for s in small), True)
            cpu = [s["extra"]["server_cpu_s"] / s["extra"]["requests"] * 1e6 for s in small
                   if s["extra"].get("requests") and "server_cpu_s" in s["extra"]]
            if cpu:
                out["server CPU per small request (us)"] = (statistics.median(cpu), False)
    return out


def run(python: str, script: list[str], out: Path) -> Figures:
    cmd = [python, *script, "--json", str(out)]
    print(f"$ {' '.join(cmd)}", flush=True)
    t0 = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if not out.exists():
        raise SystemExit(f"ab: {script[0]} wrote no results (exit {r.returncode}): {r.stderr[-2000:]}")
    print(f"  {time.monotonic() - t0:.0f} s", flush=True)
    return figures(json.loads(out.read_text()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="Python of the A (before) install")
    ap.add_argument("--b", required=True, help="Python of the B (after) install")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--name", default="ab", help="name of the output files")
    ap.add_argument("--report-only", action="store_true",
                    help="compare the JSON files a previous run of this --name left in bench/out")
    ap.add_argument("script", nargs=argparse.REMAINDER, help="-- bench/X.py [its options]")
    a = ap.parse_args(argv)
    script = a.script[1:] if a.script[:1] == ["--"] else a.script
    if not script and not a.report_only:
        ap.error("give the benchmark command after --")
    OUT.mkdir(parents=True, exist_ok=True)
    pairs: list[tuple[Figures, Figures]] = []
    for i in range(a.pairs):
        order = ("a", "b") if i % 2 == 0 else ("b", "a")
        got: dict[str, Figures] = {}
        for side in order:
            out = OUT / f"ab-{a.name}-{side}{i + 1}.json"
            if a.report_only:
                got[side] = figures(json.loads(out.read_text()))
                continue
            got[side] = run(a.a if side == "a" else a.b, script, out)
        pairs.append((got["a"], got["b"]))
    names = [n for n in pairs[0][0] if all(n in fa and n in fb for fa, fb in pairs)]
    print(f"\n{a.name}: {a.pairs} alternating pairs, B/A per pair and its median")
    print("| figure | A (median) | B (median) | B/A per pair | median B/A | |")
    print("|---|---:|---:|---|---:|---|")
    for n in names:
        av = [fa[n][0] for fa, _ in pairs]
        bv = [fb[n][0] for _, fb in pairs]
        ratios = [b / x if x else float("nan") for x, b in zip(av, bv, strict=True)]
        med = statistics.median(ratios)
        better = (med >= 1) == pairs[0][0][n][1]
        print(f"| {n} | {statistics.median(av):.4g} | {statistics.median(bv):.4g} | "
              f"{', '.join(f'{r:.3f}' for r in ratios)} | {med:.3f} | {'better' if better else 'worse'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

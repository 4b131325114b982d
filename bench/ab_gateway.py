"""Interleaved A/B of two ``ipmirror serve`` installs on the small-file load of ``bench/gateway.py``.

Usage::

    python bench/ab_gateway.py --a /work/before/.venv/bin/ipmirror --b .venv/bin/ipmirror \\
        [--rounds 8] [--duration 5] [--workers 2] [--json OUT]

Both servers run at the same time, each on its own repository holding the same 2,000 small
files (added by its own ``ipmirror``), and ``wrk -t2 -c64`` drives one and then the other for
``--duration`` seconds, alternating which goes first in each round. Each round gives B/A of the
request rate and of the server CPU per request (utime+stime of serve and its worker processes);
the medians of those ratios are the result. Measuring the two within seconds of each other,
many times, cancels most of what a busy shared machine adds, which whole-benchmark A/B pairs
(``bench/ab.py``), minutes apart, do not.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from gateway import OUT, WRK_LUA, Cpu, find_tool, run_wrk, small_sizes, start_ipmirror


def small_tree(n: int) -> tuple[Path, list[str]]:
    """``n`` files of 1-64 KiB (the sizes of bench/gateway.py's small files), made once."""
    import random

    d = OUT / "abgw-data"
    sizes = small_sizes(n)
    names = [f"{i:04d}.bin" for i in range(n)]
    have = {p.name: p.stat().st_size for p in d.iterdir()} if d.is_dir() else {}
    if have != dict(zip(names, sizes, strict=True)):
        d.mkdir(parents=True, exist_ok=True)
        rnd = random.Random(2)
        for name, size in zip(names, sizes, strict=True):
            (d / name).write_bytes(rnd.randbytes(size))
    return d, names


def add_tree(ipm: str, repo: Path, data: Path) -> str:
    import os
    import shutil

    shutil.rmtree(repo, ignore_errors=True)
    env = dict(os.environ, IPMIRROR_PATH=str(repo))
    out = subprocess.run([ipm, "add", "-Q", "--hidden", str(data)], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"ab_gateway: {ipm} add failed: {out.stderr}")
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="the A (before) ipmirror executable")
    ap.add_argument("--b", required=True, help="the B (after) ipmirror executable")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--duration", type=int, default=5, help="seconds of wrk per side per round")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--small-files", type=int, default=2000)
    ap.add_argument("--json", type=Path, metavar="OUT")
    a = ap.parse_args(argv)
    wrk = find_tool("wrk")
    data, rels = small_tree(a.small_files)
    roots = {side: add_tree(exe, OUT / f"abgw-repo-{side}", data) for side, exe in (("a", a.a), ("b", a.b))}
    if roots["a"] != roots["b"]:
        raise SystemExit(f"ab_gateway: the two installs disagree on the CID: {roots}")
    paths = OUT / "abgw-paths.txt"
    paths.write_text("".join(f"/ipfs/{roots['a']}/{r}\n" for r in rels))
    lua = OUT / "abgw.lua"
    lua.write_text(WRK_LUA % {"paths": paths, "pace_ms": 0})
    servers = {side: start_ipmirror(exe, OUT / f"abgw-repo-{side}", a.workers)
               for side, exe in (("a", a.a), ("b", a.b))}
    rounds: list[dict[str, dict[str, float]]] = []
    try:
        for srv in servers.values():
            run_wrk(wrk, srv.port, lua, a.connections, 2)  # warm-up, not scored
        for i in range(a.rounds):
            got: dict[str, dict[str, float]] = {}
            for side in (("a", "b") if i % 2 == 0 else ("b", "a")):
                srv = servers[side]
                with Cpu(srv) as c:
                    w = run_wrk(wrk, srv.port, lua, a.connections, a.duration)
                    w.update(c.result())
                if w["errors"]:
                    raise SystemExit(f"ab_gateway: {w['errors']:.0f} errors from {side}")
                w["cpu_us"] = w["server_cpu_s"] / w["requests"] * 1e6
                got[side] = w
            rounds.append(got)
            print(f"round {i + 1}: A {got['a']['rps']:.0f} req/s {got['a']['cpu_us']:.1f} us, "
                  f"B {got['b']['rps']:.0f} req/s {got['b']['cpu_us']:.1f} us", flush=True)
            time.sleep(0.5)
    finally:
        for srv in servers.values():
            srv.stop()
    rps = [r["b"]["rps"] / r["a"]["rps"] for r in rounds]
    cpu = [r["b"]["cpu_us"] / r["a"]["cpu_us"] for r in rounds]
    print("\n| figure | A median | B median | B/A per round | median B/A |\n|---|---:|---:|---|---:|")
    figures = (("small files (req/s)", "rps", rps), ("server CPU per request (us)", "cpu_us", cpu))
    for label, key, ratios in figures:
        am = statistics.median(r["a"][key] for r in rounds)
        bm = statistics.median(r["b"][key] for r in rounds)
        print(f"| {label} | {am:.4g} | {bm:.4g} | {', '.join(f'{x:.3f}' for x in ratios)} | "
              f"{statistics.median(ratios):.3f} |")
    if a.json:
        a.json.write_text(json.dumps({"args": vars(a) | {"json": str(a.json)}, "rounds": rounds}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

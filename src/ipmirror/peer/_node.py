"""The trio side of the libp2p host: py-libp2p's host with our identity, identify, ping and guard.

Everything here runs in the thread :class:`ipmirror.peer.host.PeerHost` starts; its coroutines are
reached from other threads only through ``PeerHost.submit``. Security is Noise alone and muxing
Yamux alone (py-libp2p's defaults would add plaintext, SECIO, TLS and mplex); no mDNS, no
bootstrap, no UPnP: the host talks to the peers it is told about and those that dial it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import INetConn
from libp2p.crypto.ed25519 import Ed25519PrivateKey
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.serialization import deserialize_public_key
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.identity.identify.pb.identify_pb2 import Identify
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.peer.peerstore import env_to_send_in_RPC
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from nacl.signing import SigningKey

from ipmirror.codec import varint
from ipmirror.codec.libp2p_key import KeyType, PrivateKey
from ipmirror.codec.peerid import PeerID
from ipmirror.errors import InvalidInput, PeerError
from ipmirror.peer._guard import Guard, Handler, ProtocolViolation, Stream, guarded, install_checked_yamux
from ipmirror.peer.config import HostConfig
from ipmirror.peer.identity import AGENT_VERSION, PROTOCOL_VERSION, PeerConn, PeerIdentity

log = logging.getLogger("ipmirror.peer")

IDENTIFY = "/ipfs/id/1.0.0"
PING = "/ipfs/ping/1.0.0"
MAX_IDENTIFY_BYTES = 64 * 1024
TRANSIENT = (BaseLibp2pError, OSError, EOFError, trio.BrokenResourceError, trio.ClosedResourceError)


def key_pair(key: PrivateKey) -> KeyPair:
    """py-libp2p's key pair for our Ed25519 key (the ``self`` key is always Ed25519)."""
    if key.type is not KeyType.ED25519:
        raise InvalidInput(f"the libp2p host needs an Ed25519 key, not {key.type.label}")
    sk = Ed25519PrivateKey(SigningKey(key.data[:32]))
    return KeyPair(sk, sk.get_public_key())


def parse_peer(peer: str) -> ID:
    """A peer ID in any of its text forms (``12D3KooW…``, ``Qm…``, ``k51…``), checked."""
    return ID(PeerID.parse(peer).multihash)


class Node:
    """One py-libp2p host and the operations :class:`PeerHost` offers, as trio coroutines."""

    def __init__(self, key: PrivateKey, config: HostConfig) -> None:
        self.config = config
        kp = key_pair(key)
        self._nursery: trio.Nursery | None = None
        self.guard = Guard(config, self.spawn)
        self.host = new_host(
            key_pair=kp,
            sec_opt={NOISE_ID: NoiseTransport(kp, noise_privkey=new_x25519_key_pair().private_key)},
            muxer_opt={TProtocol(YAMUX_ID): Yamux},
            connection_config=ConnectionConfig(
                max_connections=config.max_peers * 3, max_connections_per_peer=3,
                min_connections=0, low_watermark=0, high_watermark=config.max_peers * 3,
                inbound_stream_protocol_negotiation_timeout=config.negotiate_timeout,
                dial_timeout=config.dial_timeout),
            negotiate_timeout=int(config.negotiate_timeout),
        )
        network: Any = self.host.get_network()  # the Swarm (its interface type lacks these two)
        install_checked_yamux(network.upgrader.muxer_multistream, self.guard)  # see _guard.py
        # py-libp2p's auto-connector dials peers from the peerstore whenever it has fewer
        # connections than its target, which would redial peers we dropped or cut off: off.
        network.auto_connector.maybe_connect = _no_auto_dials
        self.peer_id = str(self.host.get_id())
        self._stop = trio.Event()
        self.identified: dict[str, PeerIdentity] = {}

    # -- life cycle ---------------------------------------------------------------------------------
    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn)

    async def run(self, started: Callable[[], None]) -> None:
        listen = [multiaddr.Multiaddr(a) for a in self.config.listen]
        for addr in self.config.listen:
            _check_free(addr)
        async with self.host.run(listen_addrs=listen), trio.open_nursery() as nursery:
            self._nursery = nursery
            self.guard.attach(self.host.get_network())
            self.set_handler(IDENTIFY, self._serve_identify)
            if not self.host.get_transport_addrs():
                raise PeerError(f"the libp2p host could not listen on {', '.join(self.config.listen)}")
            started()
            await self._stop.wait()
            with trio.move_on_after(2):  # say goodbye (Yamux GO_AWAY, sockets closed) before cancelling
                network = self.host.get_network()
                for peer in {c.muxed_conn.peer_id for c in network.get_connections()}:
                    with contextlib.suppress(*TRANSIENT):
                        await network.close_peer(peer)
            nursery.cancel_scope.cancel()
        self._nursery = None

    def stop(self) -> None:
        self._stop.set()

    def set_handler(self, protocol: str, handler: Handler) -> None:
        self.host.set_stream_handler(protocol, guarded(handler, self.guard))  # type: ignore[arg-type]

    # -- what we are --------------------------------------------------------------------------------
    def addrs(self) -> list[str]:
        return [str(a) for a in self.host.get_transport_addrs()]

    def protocols(self) -> list[str]:
        return sorted(str(p) for p in self.host.get_mux().get_protocols() if p is not None)

    async def _serve_identify(self, stream: Stream) -> None:
        """Our identify answer (py-libp2p's would name py-libp2p as the agent)."""
        observed = b""
        conn = self._conn_of(stream.peer)
        if conn is not None:
            remote = conn.get_transport_addresses()
            observed = remote[0].to_bytes() if remote else b""
        envelope, _ = env_to_send_in_RPC(self.host)
        msg = Identify(
            protocol_version=PROTOCOL_VERSION, agent_version=AGENT_VERSION,
            public_key=self.host.get_public_key().serialize(),
            listen_addrs=[a.to_bytes() for a in self.host.get_transport_addrs()],
            observed_addr=observed, protocols=self.protocols(), signedPeerRecord=envelope,
        ).SerializeToString()
        await stream.write(varint.encode(len(msg)) + msg)
        await stream.close()

    # -- peers ----------------------------------------------------------------------------------------
    def _live(self, peer: ID | None = None) -> list[INetConn]:
        """Open connections (py-libp2p lists a connection the remote closed for a while longer)."""
        return [c for c in self.host.get_network().get_connections(peer) if not c.is_closed]

    def _conn_of(self, peer: str) -> INetConn | None:
        conns = self._live(parse_peer(peer))
        return conns[0] if conns else None

    def _describe(self, conn: INetConn) -> PeerConn:
        pid = str(conn.muxed_conn.peer_id)
        remote = conn.get_transport_addresses()
        direction = getattr(conn, "direction", None)
        ident = self.identified.get(pid)
        return PeerConn(pid, str(remote[0]) if remote else "",
                        str(getattr(direction, "name", direction) or "unknown").lower(),
                        len(conn.get_streams()), ident.agent_version if ident else None)

    async def peers(self) -> list[PeerConn]:
        seen: dict[str, PeerConn] = {}
        for conn in self._live():
            seen.setdefault(str(conn.muxed_conn.peer_id), self._describe(conn))
        return sorted(seen.values(), key=lambda p: p.peer)

    async def addrs_async(self) -> list[str]:
        return self.addrs()

    async def known_addrs(self) -> dict[str, list[str]]:
        """The addresses we know for each connected peer (its identify listen addresses)."""
        store = self.host.get_peerstore()
        out: dict[str, list[str]] = {}
        for conn in self._live():
            pid = conn.muxed_conn.peer_id
            out[str(pid)] = sorted({str(a) for a in store.addrs(pid)})
        return out

    async def connect(self, addr: str) -> PeerConn:
        try:
            ma = multiaddr.Multiaddr(addr)
            info = info_from_p2p_addr(ma)
        except (ValueError, BaseLibp2pError) as e:
            raise InvalidInput(f"invalid peer address {addr!r} (want /ip4/…/tcp/…/p2p/ID): {e}") from None
        if str(info.peer_id) == self.peer_id:
            raise InvalidInput("that address is this node's own")
        network = self.host.get_network()
        if network.get_connections(info.peer_id) and not self._live(info.peer_id):
            with contextlib.suppress(*TRANSIENT):  # py-libp2p would reuse the dead one and not dial
                await network.close_peer(info.peer_id)
        try:
            with trio.fail_after(self.config.dial_timeout):
                await self.host.connect(info)
        except trio.TooSlowError:
            raise PeerError(f"dialling {addr} timed out after {self.config.dial_timeout:g} s") from None
        except (*TRANSIENT, ValueError) as e:
            raise PeerError(f"cannot connect to {addr}: {str(e) or type(e).__name__}") from None
        conn = self._conn_of(str(info.peer_id))
        if conn is None:
            raise PeerError(f"the connection to {addr} closed at once")
        return self._describe(conn)

    async def disconnect(self, peer: str) -> bool:
        pid = parse_peer(peer)
        if not self._live(pid):
            return False
        await self.host.disconnect(pid)
        return True

    async def open_stream(self, peer: str, protocol: str) -> Stream:
        """A new stream to a connected peer, its protocol negotiated (``PeerError`` if refused)."""
        if self._conn_of(peer) is None:
            raise PeerError(f"not connected to {peer}")
        try:
            with trio.fail_after(self.config.negotiate_timeout):
                return Stream(await self.host.new_stream(parse_peer(peer), [protocol]))  # type: ignore[list-item]
        except trio.TooSlowError:
            raise PeerError(f"{peer} did not accept {protocol} in time") from None
        except TRANSIENT as e:
            raise PeerError(f"{peer} refused {protocol}: {str(e) or type(e).__name__}") from None

    async def identify(self, peer: str) -> PeerIdentity:
        """Ask ``peer`` who it is (identify), check its key against its ID, and remember it."""
        peer = str(parse_peer(peer))
        stream = await self.open_stream(peer, IDENTIFY)
        try:
            with trio.fail_after(self.config.negotiate_timeout):
                raw = await _read_prefixed(stream, MAX_IDENTIFY_BYTES)
        except trio.TooSlowError:
            raise PeerError(f"{peer} sent no identify answer in time") from None
        except ProtocolViolation as e:
            self.guard.disconnect(parse_peer(peer), f"identify: {e}")
            raise PeerError(f"{peer} sent a bad identify answer: {e}") from None
        finally:
            with trio.move_on_after(1):
                with contextlib.suppress(*TRANSIENT):
                    await stream.close()
        msg = Identify()
        try:
            msg.ParseFromString(raw)
            key = deserialize_public_key(msg.public_key) if msg.HasField("public_key") else None
        except Exception as e:  # protobuf's DecodeError and key errors have no common base
            raise PeerError(f"{peer} sent an undecodable identify answer: {e}") from None
        if key is not None and str(ID.from_pubkey(key)) != peer:
            raise PeerError(f"{peer} sent a public key that is not its own")
        ident = PeerIdentity(
            peer=peer, agent_version=msg.agent_version, protocol_version=msg.protocol_version,
            protocols=tuple(sorted(msg.protocols)),
            listen_addrs=tuple(_addr(a) for a in msg.listen_addrs),
            observed_addr=_addr(msg.observed_addr) if msg.observed_addr else None)
        self.identified[peer] = ident
        return ident

    async def ping(self, peer: str, count: int = 1) -> list[float]:
        """Round-trip times in seconds of ``count`` pings (32 random bytes echoed)."""
        peer = str(parse_peer(peer))
        stream = await self.open_stream(peer, PING)
        rtts = []
        try:
            for _ in range(count):
                data = os.urandom(32)
                t0 = time.perf_counter()
                with trio.fail_after(self.config.negotiate_timeout):
                    await stream.write(data)
                    echo = await stream.read_exactly(32)
                if echo != data:
                    raise PeerError(f"{peer} answered the ping with other bytes")
                rtts.append(time.perf_counter() - t0)
        except trio.TooSlowError:
            raise PeerError(f"{peer} did not answer the ping in time") from None
        except TRANSIENT as e:
            raise PeerError(f"ping to {peer} failed: {str(e) or type(e).__name__}") from None
        finally:
            with trio.move_on_after(1):
                with contextlib.suppress(*TRANSIENT):
                    await stream.close()
        return rtts


def _check_free(addr: str) -> None:
    """Refuse a port something listens on already. py-libp2p listens with SO_REUSEPORT (for TCP
    hole punching), so a second host on the same port would otherwise start and silently share
    the incoming connections with the first; a plain bind sees the port taken."""
    _, family, ip, _, port = addr.split("/")
    if int(port) == 0:
        return
    with socket.socket(socket.AF_INET6 if family == "ip6" else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
        try:
            s.bind((ip, int(port)))
        except OSError as e:
            raise PeerError(f"cannot listen on {addr}: {e.strerror}") from None


async def _no_auto_dials() -> None:
    return None


def _addr(raw: bytes) -> str:
    try:
        return str(multiaddr.Multiaddr(raw))
    except Exception:  # a peer's bytes; the multiaddr package raises several unrelated types
        return "0x" + raw.hex()


async def _read_prefixed(stream: Stream, limit: int) -> bytes:
    """One varint-length-prefixed message of at most ``limit`` bytes."""
    header = b""
    while True:
        b = await stream.read(1)
        if not b:
            raise ProtocolViolation("stream ended inside a length prefix")
        header += b
        if not b[0] & 0x80:
            break
        if len(header) > 4:
            raise ProtocolViolation("length prefix too long")
    n, _ = varint.decode(header)
    if n > limit:
        raise ProtocolViolation(f"message of {n} bytes (limit {limit})")
    data = await stream.read_exactly(n)
    if len(data) != n:
        raise ProtocolViolation("stream ended inside a message")
    return data

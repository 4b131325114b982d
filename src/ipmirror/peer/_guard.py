"""The trio side's defences: per-peer limits and stream handlers that cannot kill a connection.

Rules (see docs/design.md, "libp2p host"):
- Peers: a connection that would make more than ``max_peers`` distinct peers is closed at once.
- Streams: when a peer has more than ``max_streams_per_peer`` streams open, the new stream is
  reset and the peer is disconnected (all its connections) — flooding is misbehaviour.
- Frames: py-libp2p's Yamux reads frame headers without checking them (a random header can
  announce a DATA body of megabytes and leave the connection waiting for it), so
  :func:`install_checked_yamux` puts a reader under it that checks each header as it is read: version 0,
  a known type and flags, a DATA body within the 16 MiB window; anything else ends the connection
  (Yamux treats the read error as the connection failing) and is recorded as a cut-off.
- Handlers: py-libp2p ends a whole connection when an exception escapes a stream handler, so every
  handler we register runs under :func:`guarded`: the stream sees EOF as ``b""``; an I/O error or
  a peer's :class:`ProtocolViolation` resets the stream (a violation also cuts the peer off); any
  other exception is our bug: logged with its traceback, the stream reset, the peer kept.
Runs only inside the host thread (trio).
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from libp2p.abc import INetConn, INetStream, INetwork, INotifee, ISecureConn
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.stream_muxer.yamux.yamux import MAX_WINDOW_SIZE, Yamux
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
from multiaddr import Multiaddr

from ipmirror.peer.config import HostConfig

log = logging.getLogger("ipmirror.peer")

EOF_ERRORS = (EOFError,)  # py-libp2p's StreamEOF and MuxedStreamEOF both derive from EOFError
# errors of closing or resetting a stream or connection that is going away anyway
QUIET = (BaseLibp2pError, OSError, trio.BrokenResourceError, trio.ClosedResourceError)


class ProtocolViolation(Exception):
    """Raised by a stream handler when the remote peer broke the protocol: the peer is cut off."""


class Stream:
    """A py-libp2p stream with plain semantics: ``read`` returns ``b""`` at the end."""

    __slots__ = ("_s",)

    def __init__(self, stream: INetStream) -> None:
        self._s = stream

    @property
    def peer(self) -> str:
        return str(self._s.muxed_conn.peer_id)

    @property
    def protocol(self) -> str:
        return str(self._s.get_protocol() or "")

    async def read(self, n: int = 65536) -> bytes:
        try:
            return await self._s.read(n)
        except EOF_ERRORS:
            return b""

    async def read_exactly(self, n: int) -> bytes:
        """``n`` bytes, or fewer only if the stream ended first."""
        parts: list[bytes] = []
        left = n
        while left:
            b = await self.read(left)
            if not b:
                break
            parts.append(b)
            left -= len(b)
        return b"".join(parts)

    async def write(self, data: bytes) -> None:
        await self._s.write(data)

    async def close(self) -> None:
        await self._s.close()

    async def reset(self) -> None:
        await self._s.reset()


Handler = Callable[[Stream], Awaitable[None]]


class Guard(INotifee):
    """Counts peers and streams as py-libp2p reports them, and cuts off peers over the limits."""

    def __init__(self, config: HostConfig, spawn: Callable[[Callable[[], Awaitable[None]]], None]) -> None:
        self.config = config
        self._spawn = spawn  # start a task in the host's nursery
        self.cut_off: deque[tuple[str, str]] = deque(maxlen=100)  # (peer, reason), newest last
        self._network: INetwork | None = None
        self._closing: set[ID] = set()  # peers being disconnected

    def attach(self, network: INetwork) -> None:
        self._network = network
        network.register_notifee(self)

    def record(self, peer: ID, reason: str) -> None:
        """Note a peer that py-libp2p is disconnecting for misbehaviour we detected."""
        log.warning("libp2p: disconnecting %s: %s", peer, reason)
        self.cut_off.append((str(peer), reason))

    def disconnect(self, peer: ID, reason: str) -> None:
        """Close every connection to ``peer`` (from a task of our own, not the caller's)."""
        if self._network is None:
            return
        log.warning("libp2p: disconnecting %s: %s", peer, reason)
        self.cut_off.append((str(peer), reason))
        self._closing.add(peer)
        network = self._network

        async def close() -> None:
            try:
                with contextlib.suppress(*QUIET):
                    await network.close_peer(peer)
            finally:
                self._closing.discard(peer)

        self._spawn(close)

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        peers = {c.muxed_conn.peer_id for c in network.get_connections()}
        if len(peers) > self.config.max_peers:
            peer = conn.muxed_conn.peer_id
            log.warning("libp2p: refusing %s: %d peers is the limit", peer, self.config.max_peers)
            self.cut_off.append((str(peer), "too many peers"))

            async def close() -> None:
                with contextlib.suppress(*QUIET):
                    await conn.close()

            self._spawn(close)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        peer = stream.muxed_conn.peer_id
        n = sum(len(c.get_streams()) for c in network.get_connections(peer))
        if n > self.config.max_streams_per_peer:
            with contextlib.suppress(*QUIET):
                await stream.reset()
            if peer not in self._closing:  # once per flood, not once per stream
                limit = self.config.max_streams_per_peer
                self.disconnect(peer, f"too many streams ({n} open, limit {limit})")

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        pass

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        pass


def guarded(handler: Handler, guard: Guard) -> Callable[[INetStream], Awaitable[None]]:
    """Wrap a handler of :class:`Stream` as a py-libp2p stream handler (see the module rules)."""

    async def run(raw: INetStream) -> None:
        stream = Stream(raw)
        try:
            await handler(stream)
            return
        except ProtocolViolation as e:
            guard.disconnect(raw.muxed_conn.peer_id, f"{stream.protocol}: {e}")
        except (BaseLibp2pError, OSError, EOFError, trio.BrokenResourceError, trio.ClosedResourceError,
                trio.TooSlowError) as e:
            log.debug("libp2p: %s stream from %s ended: %r", stream.protocol, stream.peer, e)
        except Exception:
            log.exception("libp2p: %s handler failed (peer %s)", stream.protocol, stream.peer)
        with contextlib.suppress(*QUIET):
            await raw.reset()

    return run


class YamuxViolation(ConnectionError):
    """A frame header no Yamux peer may send; raised to Yamux's reader, which ends the connection."""


class _FrameChecker:
    """The secured connection as Yamux sees it: reads pass through, and each frame header is
    checked as its bytes go by (Yamux reads headers and DATA bodies with exact-size reads, so the
    byte count alone tells where the next header starts). Everything else is delegated."""

    def __init__(self, conn: ISecureConn, report: Callable[[str], None]) -> None:
        self._conn = conn
        self._report = report
        self._head = bytearray()
        self._body_left = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def read(self, n: int | None = None) -> bytes:
        data = await self._conn.read(n)
        self._scan(data)
        return data

    def _scan(self, data: bytes) -> None:
        i = 0
        while i < len(data):
            if self._body_left:
                k = min(self._body_left, len(data) - i)
                self._body_left -= k
                i += k
                continue
            chunk = data[i:i + 12 - len(self._head)]
            self._head += chunk
            i += len(chunk)
            if len(self._head) == 12:
                version, typ, flags, _stream, length = struct.unpack("!BBHII", self._head)
                self._head.clear()
                if version != 0 or typ > 3 or flags > 0xF:
                    self._fail(f"garbage Yamux frame (version {version}, type {typ}, flags 0x{flags:x})")
                if typ == 0:  # DATA: a body follows
                    if length > MAX_WINDOW_SIZE:
                        self._fail(f"Yamux DATA frame of {length} bytes (the window is {MAX_WINDOW_SIZE})")
                    self._body_left = length

    def _fail(self, reason: str) -> None:
        self._report(reason)
        raise YamuxViolation(reason)


def install_checked_yamux(muxers: Any, guard: Guard) -> None:
    """Make ``muxers`` (py-libp2p's ``MuxerMultistream``) run Yamux over a :class:`_FrameChecker`.

    py-libp2p 0.8.1 builds its own ``Yamux`` once ``/yamux/1.0.0`` is negotiated, whatever class
    the muxer options name, so the negotiation step itself is replaced here (pinned version: the
    two private names used are checked by the tests)."""
    selector, annotate = muxers._selector, muxers._annotate_connection

    async def new_conn(conn: ISecureConn, peer_id: ID) -> Yamux:
        protocol, _ = await selector.select(conn, conn.is_initiator, muxers.negotiate_timeout)
        if str(protocol) != YAMUX_ID:
            raise YamuxViolation(f"{peer_id} negotiated {protocol}, not Yamux")

        async def on_close() -> None:
            pass

        checker = _FrameChecker(conn, lambda reason: guard.record(peer_id, reason))
        yamux = Yamux(checker, peer_id, is_initiator=conn.is_initiator, on_close=on_close)  # type: ignore[arg-type]
        result: Yamux = annotate(yamux, conn, protocol)
        return result

    muxers.new_conn = new_conn

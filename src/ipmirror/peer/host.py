"""PeerHost: the libp2p host in a thread of its own, with a thread-safe API (start/stop, connect, …).

Usage::

    host = PeerHost(keystore.get("self"), HostConfig(listen=("/ip4/127.0.0.1/tcp/4001",)))
    host.start()                       # returns once listening; PeerError if it cannot
    host.connect("/ip4/127.0.0.1/tcp/4002/p2p/12D3KooW…")
    host.peers(); host.addrs(); host.identify(peer); host.ping(peer)
    await host.acall(host.node.peers)  # from asyncio: awaits without blocking the event loop
    host.stop()

The trio/asyncio hand-off (rules):
- py-libp2p runs on trio, in the one thread ``start`` creates (``trio.run``). Its objects are used
  only there. Another thread hands work in with :meth:`submit`: the coroutine function is started in
  the host's nursery through trio's thread-safe ``TrioToken.run_sync_soon``, and its outcome lands
  in a ``concurrent.futures.Future``. The blocking methods (``connect``, ``peers``, …) wait on that
  future; asyncio code awaits it with :meth:`acall` (``asyncio.wrap_future``), so the event loop
  never blocks and no executor thread is held while the network works.
- Calling a blocking method from the host thread itself would deadlock, so it raises instead;
  trio code in handlers uses ``host.node`` directly.
- ``stop`` cancels everything under way; their futures fail with :class:`PeerError`.
- Stream handlers for further protocols (Bitswap, pubsub: issue #17's second part) are trio
  coroutines of :class:`Stream`, registered with :meth:`set_handler`; they run guarded (a bad peer
  is cut off, an exception never ends the connection: see ``_guard.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ipmirror.codec.libp2p_key import PrivateKey
from ipmirror.codec.peerid import PeerID
from ipmirror.errors import IpmirrorError, PeerError
from ipmirror.peer.config import HostConfig
from ipmirror.peer.identity import PeerConn, PeerIdentity, SelfInfo, identify_self

if TYPE_CHECKING:
    import trio

    from ipmirror.peer._guard import Handler
    from ipmirror.peer._node import Node

T = TypeVar("T")
log = logging.getLogger("ipmirror.peer")


class PeerHost:
    """One libp2p host (one peer ID); see the module rules. Start it once; stop is idempotent."""

    def __init__(self, key: PrivateKey, config: HostConfig | None = None) -> None:
        self.key = key
        self.config = config or HostConfig()
        self.peer_id = PeerID.from_public_key(key.public_key())
        self._node: Node | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread: threading.Thread | None = None
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._done = threading.Event()

    # -- life cycle ---------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """Start the host thread and return once the host listens (``PeerError`` if it cannot)."""
        if self._thread is not None:
            raise PeerError("the libp2p host was started already")
        self._thread = threading.Thread(target=self._main, name="ipmirror-libp2p", daemon=True)
        self._thread.start()
        try:
            self._ready.result(timeout)
        except concurrent.futures.TimeoutError:
            self.stop()
            raise PeerError(f"the libp2p host did not start within {timeout:g} s") from None

    def _main(self) -> None:
        import trio  # libp2p and trio load only when a host runs

        from ipmirror.peer._node import Node

        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            node = Node(self.key, self.config)
            if node.peer_id != self.peer_id.to_base58():
                raise PeerError("py-libp2p derived another peer ID from our key")
            self._node = node
            await node.run(lambda: self._ready.set_result(None))

        try:
            trio.run(main)
        except BaseException as e:  # the thread's end: report, never re-raise
            err = e if isinstance(e, IpmirrorError) else PeerError(f"the libp2p host failed: {_first(e)}")
            if not self._ready.done():
                self._ready.set_exception(err)
            else:
                log.error("libp2p host stopped: %s", err)
        finally:
            self._node = None
            self._done.set()
            if not self._ready.done():
                self._ready.set_exception(PeerError("the libp2p host stopped"))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the host: close connections, cancel work under way, end the thread."""
        node, token = self._node, self._token
        if node is not None and token is not None:
            import trio

            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(node.stop)
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._node is not None and not self._done.is_set()

    @property
    def node(self) -> Node:
        """The trio-side node, for code that runs in the host thread (handlers)."""
        if self._node is None:
            raise PeerError("the libp2p host is not running")
        return self._node

    # -- the hand-off ---------------------------------------------------------------------------------
    def submit(self, fn: Callable[..., Awaitable[T]], *args: Any) -> concurrent.futures.Future[T]:
        """Run trio coroutine function ``fn(*args)`` in the host thread; thread-safe, returns at once."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        node, token = self._node, self._token
        if node is None or token is None:
            fut.set_exception(PeerError("the libp2p host is not running"))
            return fut
        import trio

        async def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                result = await fn(*args)
            except trio.Cancelled:
                fut.set_exception(PeerError("the libp2p host stopped"))
                raise
            except BaseException as e:  # handed to the waiting thread
                fut.set_exception(e)
            else:
                fut.set_result(result)

        def spawn() -> None:
            try:
                node.spawn(run)
            except RuntimeError:  # the nursery is closing
                fut.set_exception(PeerError("the libp2p host stopped"))

        try:
            token.run_sync_soon(spawn)
        except trio.RunFinishedError:
            fut.set_exception(PeerError("the libp2p host is not running"))
        return fut

    async def acall(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """From asyncio: ``await host.acall(host.node.connect, addr)`` (see the module rules)."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def _wait(self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("blocking PeerHost calls cannot be made from the host thread")
        try:
            return self.submit(fn, *args).result(timeout)
        except concurrent.futures.TimeoutError:
            raise PeerError("the libp2p host did not answer in time") from None

    # -- the API --------------------------------------------------------------------------------------
    def addrs(self) -> list[str]:
        """The addresses the host listens on (no ``/p2p`` suffix)."""
        return self._wait(self.node.addrs_async, timeout=10)

    def known_addrs(self) -> dict[str, list[str]]:
        """Each connected peer's known addresses (``swarm addrs``)."""
        return self._wait(self.node.known_addrs, timeout=10)

    def protocols(self) -> list[str]:
        return self._wait(_async(self.node.protocols), timeout=10)

    def info(self) -> SelfInfo:
        """``ipfs id`` for the running host: addresses and protocols included."""
        return identify_self(self.key, self.addrs(), self.protocols())

    def peers(self) -> list[PeerConn]:
        return self._wait(self.node.peers, timeout=10)

    def connect(self, addr: str) -> PeerConn:
        """Dial ``/ip4/…/tcp/…/p2p/ID`` (``PeerError`` if the peer cannot be reached in time)."""
        return self._wait(self.node.connect, addr, timeout=self.config.dial_timeout + 5)

    def disconnect(self, peer: str) -> bool:
        """Close every connection to ``peer``; False if there was none."""
        return self._wait(self.node.disconnect, peer, timeout=10)

    def identify(self, peer: str) -> PeerIdentity:
        return self._wait(self.node.identify, peer, timeout=self.config.negotiate_timeout * 2 + 5)

    def ping(self, peer: str, count: int = 1) -> list[float]:
        return self._wait(self.node.ping, peer, count,
                          timeout=self.config.negotiate_timeout * (count + 1) + 5)

    def set_handler(self, protocol: str, handler: Handler) -> None:
        """Serve ``protocol`` with a trio coroutine function of :class:`Stream` (guarded)."""
        self._wait(_async(self.node.set_handler), protocol, handler, timeout=10)

    def status(self) -> dict[str, object]:
        """For the status/metrics provider: running, peer ID, addresses, peers, recent cut-offs."""
        if not self.running:
            return {"running": False, "peer_id": self.peer_id.to_base58()}
        return {"running": True, "peer_id": self.peer_id.to_base58(), "addrs": self.addrs(),
                "peers": len(self.peers()), "cut_off": [{"peer": p, "reason": r} for p, r in self.cut_off()]}

    def cut_off(self) -> list[tuple[str, str]]:
        """The last peers the guard disconnected, with the reason (newest last)."""
        return self._wait(_async(lambda: list(self.node.guard.cut_off)), timeout=10)


def _async(fn: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    async def run(*args: Any) -> T:
        return fn(*args)

    return run


def _first(e: BaseException) -> str:
    """The first leaf of an exception group, as one line."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__

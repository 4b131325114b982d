"""The libp2p host's control-channel handlers: ``id`` and ``swarm peers|connect|disconnect|addrs``.

Each request is ``(method, params)`` and each answer a JSON-able dict in Kubo's RPC shapes, so
``ipmirror swarm … --json`` matches ``ipfs swarm … --enc=json``::

    handle(host, "swarm.peers", {})                      -> {"Peers": [{"Addr", "Peer", "Direction", …}]}
    handle(host, "swarm.connect", {"addrs": [MADDR]})    -> {"Strings": ["connect ID success"]}
    handle(host, "swarm.disconnect", {"peers": [ID]})    -> {"Strings": ["disconnect ID success"]}
    handle(host, "swarm.addrs", {})                      -> {"Addrs": {ID: [ADDR, …]}}
    handle(host, "swarm.addrs.local", {})                -> {"Strings": [ADDR, …]}
    handle(host, "id", {})                               -> {"ID", "PublicKey", "Addresses", …}

``handle`` blocks while the host works (a dial waits up to the dial timeout): the asyncio control
server calls it with ``await asyncio.to_thread(handle, host, method, params)``. Bad requests raise
``InvalidInput``, unreachable peers ``PeerError``; the channel sends their message back as a
one-line error. No libp2p import here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ipmirror.errors import InvalidInput, IpmirrorError, PeerError
from ipmirror.peer.host import PeerHost

Answer = dict[str, object]


def _strings(params: Mapping[str, object], key: str) -> list[str]:
    value = params.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{key!r} must be a non-empty list of strings")
    return [str(v) for v in value]


def swarm_peers(host: PeerHost, params: Mapping[str, object]) -> Answer:
    return {"Peers": [p.to_json() for p in host.peers()]}


def swarm_connect(host: PeerHost, params: Mapping[str, object]) -> Answer:
    out = []
    for addr in _strings(params, "addrs"):
        conn = host.connect(addr)
        out.append(f"connect {conn.peer} success")
    return {"Strings": out}


def swarm_disconnect(host: PeerHost, params: Mapping[str, object]) -> Answer:
    out = []
    for peer in _strings(params, "peers"):
        pid = peer.rsplit("/p2p/", 1)[-1]  # Kubo accepts a multiaddr ending in /p2p/ID too
        if not host.disconnect(pid):
            raise PeerError(f"not connected to {pid}")
        out.append(f"disconnect {pid} success")
    return {"Strings": out}


def swarm_addrs(host: PeerHost, params: Mapping[str, object]) -> Answer:
    return {"Addrs": host.known_addrs()}


def swarm_addrs_local(host: PeerHost, params: Mapping[str, object]) -> Answer:
    suffix = f"/p2p/{host.peer_id.to_base58()}" if params.get("id") else ""
    return {"Strings": [a + suffix for a in host.addrs()]}


def self_id(host: PeerHost, params: Mapping[str, object]) -> Answer:
    return host.info().to_json()


METHODS: Mapping[str, Callable[[PeerHost, Mapping[str, object]], Answer]] = {
    "swarm.peers": swarm_peers,
    "swarm.connect": swarm_connect,
    "swarm.disconnect": swarm_disconnect,
    "swarm.addrs": swarm_addrs,
    "swarm.addrs.local": swarm_addrs_local,
    "id": self_id,
}


def handle(host: PeerHost, method: str, params: Mapping[str, object]) -> Answer:
    """Answer one control request (see the module docstring)."""
    fn = METHODS.get(method)
    if fn is None:
        raise InvalidInput(f"unknown method {method!r}")
    if not host.running:
        raise PeerError("the libp2p host is not running")
    try:
        return fn(host, params)
    except IpmirrorError:
        raise
    except RuntimeError as e:  # e.g. a blocking call from the host thread
        raise PeerError(str(e)) from None

"""Who this node is, in the fields of Kubo's ``ipfs id``: ID, PublicKey, Addresses, AgentVersion,
ProtocolVersion, Protocols. Pure (no libp2p import), so ``ipmirror id`` answers without a host.

Usage::

    info = identify_self(key, addrs=host.addrs(), protocols=host.protocols())
    json.dumps(info.to_json())      # {"ID": "12D3KooW…", "PublicKey": "CAESI…", …}
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Final

from ipmirror import __version__
from ipmirror.codec.libp2p_key import PrivateKey
from ipmirror.codec.peerid import PeerID

AGENT_VERSION: Final = f"ipmirror/{__version__}"
PROTOCOL_VERSION: Final = "ipfs/0.1.0"  # what Kubo, Helia and py-libp2p send in identify


@dataclass(frozen=True, slots=True)
class SelfInfo:
    """Our identity as ``ipfs id`` prints it; ``addresses``/``protocols`` are None without a host."""

    peer_id: PeerID
    public_key: bytes  # the protobuf PublicKey
    addresses: tuple[str, ...] | None
    protocols: tuple[str, ...] | None
    agent_version: str = AGENT_VERSION
    protocol_version: str = PROTOCOL_VERSION

    def to_json(self) -> dict[str, object]:
        """Kubo's field names and forms: base58 ID, base64 public key, null lists when offline."""
        return {
            "ID": self.peer_id.to_base58(),
            "PublicKey": base64.b64encode(self.public_key).decode(),
            "Addresses": None if self.addresses is None else list(self.addresses),
            "AgentVersion": self.agent_version,
            "ProtocolVersion": self.protocol_version,
            "Protocols": None if self.protocols is None else list(self.protocols),
        }


@dataclass(frozen=True, slots=True)
class PeerConn:
    """A connected peer as ``swarm peers`` shows it."""

    peer: str  # base58 peer ID
    addr: str  # the remote transport address
    direction: str  # "inbound" | "outbound" | "unknown"
    streams: int
    agent_version: str | None = None  # once identified

    def to_json(self) -> dict[str, object]:
        return {"Peer": self.peer, "Addr": self.addr, "Direction": self.direction, "Streams": self.streams,
                "AgentVersion": self.agent_version}


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """What a peer said about itself in identify (its key already checked against its ID)."""

    peer: str
    agent_version: str
    protocol_version: str
    protocols: tuple[str, ...]
    listen_addrs: tuple[str, ...]
    observed_addr: str | None  # our address as the peer sees it

    def to_json(self) -> dict[str, object]:
        return {"ID": self.peer, "AgentVersion": self.agent_version, "ProtocolVersion": self.protocol_version,
                "Protocols": list(self.protocols), "Addresses": list(self.listen_addrs),
                "ObservedAddr": self.observed_addr}


def identify_self(key: PrivateKey, addresses: list[str] | None = None,
                  protocols: list[str] | None = None) -> SelfInfo:
    """The :class:`SelfInfo` of ``key``; addresses get the ``/p2p/ID`` suffix Kubo prints."""
    pk = key.public_key()
    pid = PeerID.from_public_key(pk)
    suffix = f"/p2p/{pid.to_base58()}"
    addrs = None if addresses is None else tuple(a if a.endswith(suffix) else a + suffix for a in addresses)
    return SelfInfo(pid, pk.to_bytes(), addrs, None if protocols is None else tuple(sorted(protocols)))

"""What the gateway needs from the node, as one narrow protocol (composed in node.py).

Usage::

    app = make_app(backend, GatewayConfig(...))

Every method may block (LMDB page faults, no-copy file reads, record files): handlers call them
through ``run_blocking`` so the event loop keeps serving other clients. The exceptions, called
on the event loop because a thread-pool hop costs more than they do: ``get_stored`` (small-file
responses; a few microseconds) and ``resolve_name`` (every /ipns/ request; a ``stat`` while the
record is unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ipmirror.codec.cid import CID
from ipmirror.codec.peerid import PeerID


@dataclass(frozen=True, slots=True)
class Resolved:
    """An /ipns/ name resolved to a content path."""

    root: CID
    path: list[str]  # components below root from the name's value
    ttl_s: int  # caching hint of the record (seconds)
    modified: float | None  # when the value last changed (unix time), for Last-Modified


class Backend(Protocol):
    def get(self, cid: CID) -> bytes:
        """A block (an identity CID's inlined bytes), or raise BlockNotFound."""
        ...

    def get_stored(self, cid: CID) -> bytes | None:
        """A block whose bytes the node's own store holds (a memory copy: cheap enough for the
        event loop); None if reading it would take file I/O (a no-copy reference) or it is missing."""
        ...

    def has(self, cid: CID) -> bool: ...

    def resolve_name(self, name: str) -> Resolved:
        """An IPNS name (k51…), local key name or mirror name; NotFound if unknown. Called on the
        event loop: must stay cheap while nothing changed (no signature check per call)."""
        ...

    def ipns_name(self, name: str) -> PeerID:
        """The IPNS name of ``name``: an IPNS name in any text form, a local key or a mirror (its
        key); InvalidInput for anything else (DNS names, unknown local names)."""
        ...

    def ipns_record(self, name: PeerID) -> bytes:
        """The signed record we hold for ``name``, if it is valid now; NotFound otherwise."""
        ...

    def put_ipns_record(self, name: PeerID, raw: bytes) -> None:
        """Store a record if it is valid for ``name`` and newer than ours (the very record we hold
        is accepted again, as a no-op); raise InvalidRecord or Conflict (older) otherwise."""
        ...

    def peer_id(self) -> PeerID:
        """This node's peer ID (its ``self`` key), for delegated routing answers."""
        ...

"""What the gateway needs from the node, as one narrow protocol (composed in node.py).

Usage::

    app = make_app(backend, GatewayConfig(...))

Block reads may block (LMDB page faults, no-copy file reads): handlers call them through
``run_blocking`` for large reads so the event loop keeps serving other clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ipmirror.codec.cid import CID


@dataclass(frozen=True, slots=True)
class Resolved:
    """An /ipns/ name resolved to a content path."""

    root: CID
    path: list[str]  # components below root from the name's value
    ttl_s: int  # caching hint of the record (seconds)
    modified: float | None  # when the value last changed (unix time), for Last-Modified


class Backend(Protocol):
    def get(self, cid: CID) -> bytes:
        """A block, or raise BlockNotFound."""
        ...

    def has(self, cid: CID) -> bool: ...

    def resolve_name(self, name: str) -> Resolved:
        """An IPNS name (k51…), local key name or mirror name; NotFound if unknown."""
        ...

    def ipns_record(self, name: str) -> bytes:
        """The signed record bytes we hold for a k51… name; NotFound otherwise."""
        ...

    def put_ipns_record(self, name: str, raw: bytes) -> None:
        """Store a record if valid for ``name`` and newer; raise InvalidRecord/Conflict otherwise."""
        ...

"""The gateway's view of a node (:class:`~ipmirror.gateway.backend.Backend`) over narrow handles:
blocks, the IPNS names and keys, and two look-ups into the mirrors. Composed in node.py.

Usage::

    backend = NodeBackend(store, names, keys, mirror_path=repo.mirror_lookup, mirror_key=key_of)
    app = make_app(backend, GatewayConfig())

Rules kept here:

- Every name lookup reads the current record or version, so versions published by another
  process (a ``mirror sync`` from cron) are served at once.
- ``names`` and ``keys`` are the node's long-lived objects: they remember what they verified
  (records, derived key IDs) per version of the file, so a request for an unchanged name costs a
  ``stat``, not a signature check (naming/names.py, rule 3). Never build them per request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from ipmirror.codec import ipns
from ipmirror.codec.cid import CID
from ipmirror.codec.peerid import PeerID
from ipmirror.errors import InvalidInput, InvalidRecord, IpmirrorError, NotFound, UnsupportedFormat
from ipmirror.gateway.backend import Resolved
from ipmirror.naming.keystore import Keystore
from ipmirror.naming.names import Names

DEFAULT_TTL_NS = 60 * 1_000_000_000  # for a name whose record gives none (a mirror without a record)


class Blocks(Protocol):
    """What the gateway reads from the block store."""

    def get(self, cid: CID) -> bytes: ...

    def get_stored(self, cid: CID) -> bytes | None: ...

    def has(self, cid: CID) -> bool: ...

    def status(self) -> dict[str, Any]:
        """Hash-on-read counters (store/verified.py): what a status page shows."""
        ...


class NodeBackend:
    """Blocks, names, records and identity for the gateway (see the module rules)."""

    def __init__(self, blocks: Blocks, names: Names, keys: Keystore, *,
                 mirror_path: Callable[[str], str | None], mirror_key: Callable[[str], str | None]) -> None:
        """``mirror_path``: a mirror's name -> ``/ipfs/<root>`` of its latest version (or None);
        ``mirror_key``: a mirror's name -> the name of the key it publishes under (or None)."""
        self._blocks = blocks
        self._names = names
        self._keys = keys
        self._mirror_path = mirror_path
        self._mirror_key = mirror_key
        self._peer_id: PeerID | None = None
        self._resolved: dict[tuple[str, str, int], Resolved] = {}  # (name, path, ttl) -> parsed

    def get(self, cid: CID) -> bytes:
        return self._blocks.get(cid)

    def get_stored(self, cid: CID) -> bytes | None:
        return self._blocks.get_stored(cid)

    def has(self, cid: CID) -> bool:
        return self._blocks.has(cid)

    def integrity(self) -> dict[str, Any]:
        """Whether blocks are checked on read, and the damaged reads so far (never blocks)."""
        return self._blocks.status()

    def resolve_name(self, name: str) -> Resolved:
        names = self._names
        path = names.path_of(name, lookup=self._mirror_path)
        ttl_ns = DEFAULT_TTL_NS
        with contextlib.suppress(IpmirrorError):
            ttl_ns = names.record(name).ttl_ns
        key = (name, path, ttl_ns)
        hit = self._resolved.get(key)
        if hit is not None:
            return hit
        if not path.startswith("/ipfs/"):
            raise NotFound(f"/ipns/{name} points at {path}, which is not an /ipfs/ path", name)
        head, *rest = [p for p in path[len("/ipfs/"):].split("/") if p]
        res = Resolved(CID.parse(head), rest, max(0, ttl_ns // 1_000_000_000), None)
        if len(self._resolved) >= 1024:
            self._resolved.clear()
        self._resolved[key] = res
        return res

    def ipns_name(self, name: str) -> PeerID:
        with contextlib.suppress(InvalidInput, UnsupportedFormat):
            return PeerID.parse(name)
        with contextlib.suppress(NotFound, InvalidInput):
            return self._keys.info(name).id
        key = self._mirror_key(name)
        if key is not None:
            return self._keys.info(key).id
        raise InvalidInput(f"{name!r} is not an IPNS name (k51…), a local key or a mirror")

    def ipns_record(self, name: PeerID) -> bytes:
        try:
            return self._names.record(name).raw
        except InvalidRecord as e:  # expired (or damaged): nothing a client could use
            raise NotFound(f"no valid record for {name}: {e}", name) from None

    def put_ipns_record(self, name: PeerID, raw: bytes) -> None:
        names = self._names
        with contextlib.suppress(NotFound):
            if names.get_record(name) == raw:
                ipns.validate(raw, name, names.clock())  # the same record, if still valid: a no-op
                return
        names.put_record(raw, name)

    def peer_id(self) -> PeerID:
        if self._peer_id is None:
            self._peer_id = self._keys.identity().id
        return self._peer_id

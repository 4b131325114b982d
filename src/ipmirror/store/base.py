"""The block store contract: blocks keyed by multihash, pins, and write sessions.

Usage::

    with store.session() as s:          # a write session: batches, stages for GC, durable on exit
        s.put(cid, data)
        s.pin(root)                     # recorded only when the session ends cleanly
    store.get(cid)                      # bytes, or BlockNotFound

Rules every backend keeps (the contract suite in tests/test_store_contract.py checks them):
1. Blocks are keyed by multihash, so CIDv0/CIDv1 and raw/dag-pb views of the same bytes share
   storage. Identity CIDs are never stored; ``get`` returns their inlined bytes.
2. ``put`` of a block that is present already writes nothing (a re-add does not redo work).
3. Everything a session wrote is staged under the session until it ends: ``gc`` never deletes a
   staged block, so a concurrent add cannot lose blocks it wrote (or found) but has not pinned yet.
4. A pin is recorded only after every block of the session is committed, in the same transaction
   that ends the session, so no pin points at an incomplete DAG after a crash.
5. ``checkpoint`` makes everything put so far durable; a session commits on its own every
   ``batch_bytes`` and at the end, never per block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from ipmirror.codec.cid import CID

PinKind = Literal["recursive", "direct"]
USER = "user"  # the owner of pins made by ``pin add``, ``add``, ``dag import``, ``block put --pin``


def pin_owners(value: bytes) -> dict[str, PinKind]:
    """A stored pin value as owner -> kind: ``user=direct;mirrors=recursive``. A value from
    before owners (just the kind) has the empty owner, which any owner's unpin removes."""
    text = value.decode()
    parts = [("", text)] if "=" not in text else [p.partition("=")[::2] for p in text.split(";")]
    return {owner: ("direct" if kind == "direct" else "recursive") for owner, kind in parts}


def pin_value(owners: dict[str, PinKind]) -> bytes:
    return ";".join(f"{o}={k}" for o, k in sorted(owners.items())).encode()


def pin_kind_of(owners: dict[str, PinKind]) -> PinKind:
    """A pin held recursively by any owner is recursive."""
    return "recursive" if "recursive" in owners.values() else "direct"


def pin_merge(value: bytes | None, owner: str, kind: PinKind) -> bytes:
    owners = pin_owners(value) if value is not None else {}
    owners.pop("", None)  # an ownerless (older) pin becomes this owner's
    owners[owner] = kind
    return pin_value(owners)


def pin_drop(value: bytes, owner: str) -> tuple[bool, bytes | None]:
    """``(whether owner held it, the value left — None: no owner left, delete the pin)``."""
    owners = pin_owners(value)
    held = owners.pop(owner, None) is not None or owners.pop("", None) is not None
    return held, (pin_value(owners) if owners else None)


@dataclass(frozen=True, slots=True)
class StoreStat:
    blocks: int
    block_bytes: int
    pins: int
    disk_bytes: int
    path: str


class Session(Protocol):
    """A write session (one add, import or sync)."""

    def put(self, cid: CID, data: bytes | memoryview) -> bool:
        """Store a block; True if it was new. The caller vouches that ``data`` hashes to ``cid``."""
        ...

    def has(self, cid: CID) -> bool: ...

    def pin(self, cid: CID, kind: PinKind = "recursive", owner: str = USER) -> None:
        """Pin ``cid`` for ``owner`` when the session ends cleanly."""
        ...

    def checkpoint(self) -> None:
        """Make everything put so far durable (commit + sync)."""
        ...

    @property
    def bytes_written(self) -> int: ...


class Blockstore(Protocol):
    def has(self, cid: CID) -> bool: ...

    def get(self, cid: CID) -> bytes:
        """The block's bytes, or raise BlockNotFound."""
        ...

    def size(self, cid: CID) -> int: ...

    def session(self, *, batch_bytes: int | None = None,
                on_commit: Callable[[], None] | None = None) -> SessionContext: ...

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> int:
        """Store blocks in one session (unpinned); return how many were new."""
        ...

    def delete(self, cid: CID) -> bool: ...

    def iter_keys(self) -> Iterator[bytes]:
        """Multihashes of every stored block."""
        ...

    def iter_blocks(self) -> Iterator[tuple[bytes, bytes]]:
        """``(multihash, bytes)`` of every stored block."""
        ...

    def pin_add(self, cid: CID, kind: PinKind = "recursive", owner: str = USER) -> None:
        """Pin for ``owner`` (a pin stays while any owner holds it: a user's pin of a mirror's
        root survives the mirror's retention, and the other way round)."""
        ...

    def pin_rm(self, cid: CID, owner: str = USER) -> bool:
        """Drop ``owner``'s pin; True if it held one (the pin itself may stay for others)."""
        ...

    def pins(self) -> list[tuple[CID, PinKind]]: ...

    def pin_kind(self, cid: CID) -> PinKind | None: ...

    def pin_holders(self, cid: CID) -> list[str]:
        """Who holds a pin on ``cid`` (``user``, ``mirrors``; ``""`` for a pin made before owners)."""
        ...

    def gc_snapshot(self) -> tuple[int, list[tuple[CID, PinKind]]]:
        """``(pin_epoch, pins)``: what GC marks from."""
        ...

    def gc_sweep(self, epoch: int, candidates: list[bytes]) -> int | None:
        """Delete candidate multihashes that are not staged by a live session, in one transaction,
        if the pin epoch is still ``epoch``; return how many were deleted, or None if pins changed.
        """
        ...

    def stat(self) -> StoreStat: ...

    def close(self) -> None: ...


class SessionContext(Protocol):
    def __enter__(self) -> Session: ...

    def __exit__(self, et: object, ev: object, tb: object) -> None: ...

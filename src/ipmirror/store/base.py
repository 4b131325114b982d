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

    def pin(self, cid: CID, kind: PinKind = "recursive") -> None:
        """Pin ``cid`` when the session ends cleanly."""
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

    def pin_add(self, cid: CID, kind: PinKind = "recursive") -> None: ...

    def pin_rm(self, cid: CID) -> bool: ...

    def pins(self) -> list[tuple[CID, PinKind]]: ...

    def pin_kind(self, cid: CID) -> PinKind | None: ...

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

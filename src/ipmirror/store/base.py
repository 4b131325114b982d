"""The block store contract: blocks keyed by multihash, write sessions, pins, and the declared
capabilities only some backends have.

Usage::

    with store.session() as s:          # a write session: batches, stages for GC, durable on exit
        s.put(cid, data)
        s.pin(root)                     # recorded only when the session ends cleanly
    store.get(cid)                      # bytes, or BlockNotFound
    if isinstance(store, Compactable):  # a capability: declared, checked with isinstance
        store.compact()

The protocols:

- ``Blockstore``: the core, blocks and sessions (has / get / size / put / put_many / delete /
  iter_keys / iter_blocks / session). Sessions are part of the core because rules 3 and 4 are the
  durability design: every writer goes through one.
- ``PinStore``: pins with owners (the helpers below encode a pin's owners).
- ``GcStaging``: what mark-and-sweep needs from the backend (``dag/gc.py`` does the marking).
- ``NoCopyStore`` / ``NoCopySession``: no-copy references, raw blocks whose bytes stay in a file
  the store does not own (``store/filestore.py``); ``mirror add --nocopy`` needs them.
- ``Compactable``: give freed space back to the file system (``repo gc --compact``).
- ``Store``: a repository's block store, what ``node.py`` hands out: blocks, pins, GC staging,
  stats, ``get_stored``. Code above ``store/`` sees only these protocols; ``node.py`` alone picks
  the backend (an import-linter contract in pyproject.toml keeps it so).

Capabilities are ``runtime_checkable`` protocols: a caller tests ``isinstance(store, NoCopyStore)``
and fails with a clear error if it is absent — never ``getattr`` probing.

Rules every backend keeps (the contract suite in tests/test_store_contract.py checks them):
1. Blocks are keyed by multihash, so CIDv0/CIDv1 and raw/dag-pb views of the same bytes share
   storage. Identity CIDs are never stored; ``get`` returns their inlined bytes.
2. ``put`` of a block that is present already writes nothing (a re-add does not redo work).
3. Everything a session wrote (or found with ``has``) is staged under the session until it ends:
   GC never deletes a staged block, so a concurrent add cannot lose blocks it wrote (or found)
   but has not pinned yet.
4. A pin is recorded only after every block of the session is committed, in the same transaction
   that ends the session, so no pin points at an incomplete DAG after a crash.
5. ``checkpoint`` makes everything put so far durable; a session commits on its own every
   ``batch_bytes`` and at the end, never per block, and runs ``on_commit`` after each commit.
6. A ``NoCopyStore``'s sessions are ``NoCopySession``s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

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


# -- the core: blocks and sessions -----------------------------------------------------------------

class Session(Protocol):
    """A write session (one add, import or sync)."""

    def put(self, cid: CID, data: bytes | memoryview) -> bool:
        """Store a block; True if it was new. The caller vouches that ``data`` hashes to ``cid``."""
        ...

    def has(self, cid: CID) -> bool:
        """Present (then staged under this session, rule 3)?"""
        ...

    def pin(self, cid: CID, kind: PinKind = "recursive", owner: str = USER) -> None:
        """Pin ``cid`` for ``owner`` when the session ends cleanly."""
        ...

    def checkpoint(self) -> None:
        """Make everything put so far durable (commit + sync)."""
        ...

    @property
    def bytes_written(self) -> int:
        """Bytes of the blocks this session stored new."""
        ...

    @property
    def puts(self) -> int:
        """Blocks handed to ``put`` so far, new or present already."""
        ...


class SessionContext(Protocol):
    def __enter__(self) -> Session: ...

    def __exit__(self, et: object, ev: object, tb: object) -> None: ...


class Blockstore(Protocol):
    """Blocks keyed by multihash, written through sessions."""

    def has(self, cid: CID) -> bool: ...

    def get(self, cid: CID) -> bytes:
        """The block's bytes, or raise BlockNotFound."""
        ...

    def size(self, cid: CID) -> int:
        """The block's length, or raise BlockNotFound."""
        ...

    def put(self, cid: CID, data: bytes) -> bool:
        """Store one block (unpinned, in a session of its own); True if it was new."""
        ...

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> int:
        """Store blocks in one session (unpinned); return how many were new."""
        ...

    def delete(self, cid: CID) -> bool: ...

    def iter_keys(self) -> Iterator[bytes]:
        """Multihashes of every stored block (no-copy references included)."""
        ...

    def iter_blocks(self) -> Iterator[tuple[bytes, bytes]]:
        """``(multihash, bytes)`` of every block whose bytes the store holds itself."""
        ...

    def session(self, *, batch_bytes: int | None = None,
                on_commit: Callable[[], None] | None = None) -> SessionContext:
        """A write session; ``on_commit`` runs on the session's thread after every commit."""
        ...


class PinStore(Protocol):
    """Pins with owners: a pin stays while any owner holds it (a user's pin of a mirror's root
    survives the mirror's retention, and the other way round)."""

    def pin_add(self, cid: CID, kind: PinKind = "recursive", owner: str = USER) -> None: ...

    def pin_rm(self, cid: CID, owner: str = USER) -> bool:
        """Drop ``owner``'s pin; True if it held one (the pin itself may stay for others)."""
        ...

    def pins(self) -> list[tuple[CID, PinKind]]: ...

    def pin_kind(self, cid: CID) -> PinKind | None: ...

    def pin_holders(self, cid: CID) -> list[str]:
        """Who holds a pin on ``cid`` (``user``, ``mirrors``; ``""`` for a pin made before owners)."""
        ...


# -- capabilities -----------------------------------------------------------------------------------

@runtime_checkable
class GcStaging(Protocol):
    """What mark-and-sweep needs from a backend: a consistent view of the pins and a sweep that
    spares staged blocks (rule 3)."""

    def gc_snapshot(self) -> tuple[int, list[tuple[CID, PinKind]]]:
        """``(pin_epoch, pins)``: what GC marks from."""
        ...

    def gc_sweep(self, epoch: int, candidates: list[bytes]) -> int | None:
        """Delete candidate multihashes that are not staged by a live session, in one transaction,
        if the pin epoch is still ``epoch``; return how many were deleted, or None if pins changed.
        """
        ...

    def clear_dead_sessions(self) -> int:
        """Drop the staging of sessions whose writer died (crashed processes); how many. A store
        whose sessions cannot outlive their process returns 0."""
        ...


@runtime_checkable
class NoCopySession(Protocol):
    """A session that can record no-copy references."""

    def put_ref(self, cid: CID, path: bytes, offset: int, length: int) -> bool:
        """Record that raw block ``cid`` is ``length`` bytes at ``offset`` of file ``path``
        (unless its bytes are stored already); True if recorded. Staged like ``put``."""
        ...


@runtime_checkable
class NoCopyStore(Protocol):
    """A store that keeps no-copy references (its sessions are NoCopySessions); ``get`` reads
    and re-hashes the file, raising StaleReference when it changed."""

    def is_ref(self, cid: CID) -> bool:
        """True if the block is a no-copy reference (not copied into the store)."""
        ...

    def iter_refs(self) -> Iterator[tuple[bytes, bytes]]:
        """``(multihash, packed reference)`` of every no-copy block (store/filestore.py)."""
        ...


@runtime_checkable
class Compactable(Protocol):
    def compact(self) -> int | None:
        """Give the space of deleted blocks back to the file system; the bytes given back, or
        None (doing nothing) while another process has the store open."""
        ...


# -- a repository's store ---------------------------------------------------------------------------

class Store(Blockstore, PinStore, GcStaging, Protocol):
    """A repository's block store (what ``node.py`` hands out): blocks, pins, GC staging, stats.
    Optional abilities (NoCopyStore, Compactable) are tested with ``isinstance``."""

    def get_stored(self, cid: CID) -> bytes | None:
        """The block if its bytes are in the store itself (a memory copy, cheap enough for an
        event loop); None for a no-copy reference or a missing block."""
        ...

    def stat(self) -> StoreStat: ...

    def close(self) -> None: ...

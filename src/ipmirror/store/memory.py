"""An in-memory block store (tests, ``--only-hash`` sinks). Same contract as the LMDB store.

Usage::

    store = MemoryStore()
    with store.session(batch_bytes=1 << 20, on_commit=flush) as s:
        s.put(cid, data); s.pin(root)

A ``Store`` (blocks, pins, GC staging, stats) without the optional capabilities: it keeps no
no-copy references (``NoCopyStore``) and has nothing to compact. Everything is "durable" at once;
a session still calls ``on_commit`` every ``batch_bytes`` and at the end, as the contract says, so
code that defers work to commits (the mirror index) runs the same way on both backends.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from ipmirror.codec.cid import CID
from ipmirror.errors import BlockNotFound
from ipmirror.store.base import (
    USER,
    PinKind,
    Store,
    StoreStat,
    pin_drop,
    pin_kind_of,
    pin_merge,
    pin_owners,
)

_ids = itertools.count(1)


class MemorySession:
    def __init__(self, store: MemoryStore, batch_bytes: int | None = None,
                 on_commit: Callable[[], None] | None = None) -> None:
        self._store = store
        self._batch = batch_bytes
        self._on_commit = on_commit
        self.sid = next(_ids)
        self._pins: list[tuple[CID, PinKind, str]] = []
        self._written = 0
        self._in_batch = 0
        self.puts = 0  # blocks handed to put, new or already present
        self._staged: set[bytes] = set()
        with store._lock:
            store._staging[self.sid] = self._staged

    def put(self, cid: CID, data: bytes | memoryview) -> bool:
        if cid.is_identity:
            return False
        mh = cid.multihash
        self.puts += 1
        with self._store._lock:
            self._staged.add(mh)
            if mh in self._store._blocks:
                return False
            self._store._blocks[mh] = bytes(data)
        self._written += len(data)
        self._in_batch += len(data)
        if self._batch is not None and self._in_batch >= self._batch:
            self.checkpoint()
        return True

    def has(self, cid: CID) -> bool:
        if self._store.has(cid):
            with self._store._lock:
                self._staged.add(cid.multihash)
            return True
        return False

    def pin(self, cid: CID, kind: PinKind = "recursive", owner: str = USER) -> None:
        self._pins.append((cid, kind, owner))

    def checkpoint(self) -> None:
        self._in_batch = 0
        if self._on_commit is not None:
            self._on_commit()

    @property
    def bytes_written(self) -> int:
        return self._written

    def end(self, ok: bool) -> None:
        with self._store._lock:
            if ok:
                pins = self._store._pins
                for cid, kind, owner in self._pins:
                    pins[cid.buffer] = pin_merge(pins.get(cid.buffer), owner, kind)
                if self._pins:
                    self._store._epoch += 1
            self._store._staging.pop(self.sid, None)
        self.checkpoint()

    def __enter__(self) -> MemorySession:
        return self

    def __exit__(self, et: object, ev: object, tb: object) -> None:
        self.end(et is None)


class MemoryStore:
    """The in-memory backend of ``store.base.Store``."""

    def __init__(self) -> None:
        self._blocks: dict[bytes, bytes] = {}
        self._pins: dict[bytes, bytes] = {}  # cid -> pin value (owners, base.pin_value)
        self._staging: dict[int, set[bytes]] = {}
        self._epoch = 0
        self._lock = threading.RLock()

    def has(self, cid: CID) -> bool:
        return cid.is_identity or cid.multihash in self._blocks

    def get(self, cid: CID) -> bytes:
        if cid.is_identity:
            return cid.identity_data()
        try:
            return self._blocks[cid.multihash]
        except KeyError:
            raise BlockNotFound(cid) from None

    def get_stored(self, cid: CID) -> bytes | None:
        if cid.is_identity:
            return cid.identity_data()
        return self._blocks.get(cid.multihash)

    def size(self, cid: CID) -> int:
        return len(self.get(cid))

    def session(self, *, batch_bytes: int | None = None,
                on_commit: Callable[[], None] | None = None) -> MemorySession:
        return MemorySession(self, batch_bytes, on_commit)

    def put(self, cid: CID, data: bytes) -> bool:
        with self.session() as s:
            return s.put(cid, data)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> int:
        with self.session() as s:
            return sum(s.put(c, d) for c, d in blocks)

    def delete(self, cid: CID) -> bool:
        with self._lock:
            return self._blocks.pop(cid.multihash, None) is not None

    def iter_keys(self) -> Iterator[bytes]:
        with self._lock:
            keys = list(self._blocks)
        return iter(keys)

    def iter_blocks(self) -> Iterator[tuple[bytes, bytes]]:
        with self._lock:
            items = list(self._blocks.items())
        return iter(items)

    def pin_add(self, cid: CID, kind: PinKind = "recursive", owner: str = USER) -> None:
        with self._lock:
            self._pins[cid.buffer] = pin_merge(self._pins.get(cid.buffer), owner, kind)
            self._epoch += 1

    def pin_rm(self, cid: CID, owner: str = USER) -> bool:
        with self._lock:
            value = self._pins.get(cid.buffer)
            if value is None:
                return False
            held, left = pin_drop(value, owner)
            if left is None:
                del self._pins[cid.buffer]
            else:
                self._pins[cid.buffer] = left
            self._epoch += 1
            return held

    def pins(self) -> list[tuple[CID, PinKind]]:
        with self._lock:
            return [(CID.from_bytes(k), pin_kind_of(pin_owners(v))) for k, v in sorted(self._pins.items())]

    def pin_kind(self, cid: CID) -> PinKind | None:
        v = self._pins.get(cid.buffer)
        return pin_kind_of(pin_owners(v)) if v is not None else None

    def pin_holders(self, cid: CID) -> list[str]:
        v = self._pins.get(cid.buffer)
        return sorted(pin_owners(v)) if v is not None else []

    def gc_snapshot(self) -> tuple[int, list[tuple[CID, PinKind]]]:
        with self._lock:
            return self._epoch, self.pins()

    def clear_dead_sessions(self) -> int:
        return 0  # a session lives and dies with this process: none is ever left behind

    def gc_sweep(self, epoch: int, candidates: list[bytes]) -> int | None:
        with self._lock:
            if epoch != self._epoch:
                return None
            staged = set().union(*self._staging.values()) if self._staging else set()
            n = 0
            for mh in candidates:
                if mh not in staged and self._blocks.pop(mh, None) is not None:
                    n += 1
            return n

    def stat(self) -> StoreStat:
        with self._lock:
            return StoreStat(len(self._blocks), sum(map(len, self._blocks.values())), len(self._pins), 0,
                             ":memory:")

    def close(self) -> None:
        pass


if TYPE_CHECKING:  # mypy checks the backend against the contract it claims
    _store: type[Store] = MemoryStore

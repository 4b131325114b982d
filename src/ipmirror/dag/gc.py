"""Garbage collection and verification of a block store.

Usage::

    res = collect(store)            # GcResult: blocks removed, mark rounds
    rep = verify(store)             # VerifyReport: corrupt, missing, stale no-copy blocks

GC is mark-and-sweep against a snapshot of the pins: mark every block reachable from a recursive
pin (and each direct pin), then delete unmarked blocks in batches. Each batch is one write
transaction that (a) re-checks that the pins have not changed since the mark (else GC marks
again), and (b) skips blocks staged by a live write session — so an add running concurrently
never loses a block it wrote or reused but has not pinned yet. Sessions that died (their lock is
free) have their staging cleared first.

The marking walks links (``dag/walk.py``); the backend provides the rest through its declared
``GcStaging`` (``store/base.py``). Space: LMDB reuses the pages GC frees for later writes; the file
shrinks only when compacted (a ``Compactable`` store, ``repo gc --compact``; see docs/design.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ipmirror.codec.cid import CID, RAW, verify_multihash
from ipmirror.dag.walk import walk
from ipmirror.errors import DecodeError, UnsupportedFormat
from ipmirror.store.base import Blockstore, NoCopyStore, Store
from ipmirror.store.filestore import StaleReference, read_ref

SWEEP_BATCH = 10_000


@dataclass
class GcResult:
    removed: int = 0
    rounds: int = 0


def mark(store: Blockstore, pins: Sequence[tuple[CID, str]]) -> set[bytes]:
    live: set[bytes] = set()
    for cid, kind in pins:
        if kind != "recursive":
            live.add(cid.multihash)
            continue
        for c, _data in walk(cid, store.get, skip=lambda c: c.multihash in live, missing_ok=True):
            live.add(c.multihash)
    return live


def collect(store: Store, max_rounds: int = 5) -> GcResult:
    res = GcResult()
    while res.rounds < max_rounds:
        res.rounds += 1
        store.clear_dead_sessions()
        epoch, pins = store.gc_snapshot()
        live = mark(store, pins)
        batch: list[bytes] = []
        changed = False
        for mh in store.iter_keys():
            if mh in live:
                continue
            batch.append(mh)
            if len(batch) >= SWEEP_BATCH:
                n = store.gc_sweep(epoch, batch)
                batch = []
                if n is None:
                    changed = True
                    break
                res.removed += n
        if not changed and batch:
            n = store.gc_sweep(epoch, batch)
            if n is None:
                changed = True
            else:
                res.removed += n
        if not changed:
            return res
    return res


@dataclass
class VerifyReport:
    blocks: int = 0
    corrupt: list[bytes] = field(default_factory=list)
    unverifiable: list[bytes] = field(default_factory=list)
    missing: list[tuple[CID, CID]] = field(default_factory=list)  # (pin root, missing block)
    undecodable: list[tuple[CID, str]] = field(default_factory=list)
    refs: int = 0
    stale: list[tuple[bytes, str]] = field(default_factory=list)  # no-copy: (multihash, why)

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.missing or self.undecodable)


def verify(store: Store) -> VerifyReport:
    """Re-hash every block; check every pinned DAG is complete. No-copy references whose files
    changed are reported as stale, not as corruption or missing blocks (an older version of a
    no-copy mirror is expected to lose the files the operator has since overwritten)."""
    rep = VerifyReport()
    for mh, data in store.iter_blocks():
        rep.blocks += 1
        try:
            if not verify_multihash(mh, data):
                rep.corrupt.append(mh)
        except UnsupportedFormat:
            rep.unverifiable.append(mh)
    stale: set[bytes] = set()
    if isinstance(store, NoCopyStore):
        for mh, raw in store.iter_refs():
            rep.refs += 1
            try:
                read_ref(CID(1, RAW, mh), raw)
            except StaleReference as e:
                rep.stale.append((mh, e.message))
                stale.add(mh)
    for root, kind in store.pins():
        if kind != "recursive":
            if not store.has(root):
                rep.missing.append((root, root))
            continue
        try:
            rep.missing.extend((root, c) for c in iter_missing(store, root) if c.multihash not in stale)
        except DecodeError as e:
            rep.undecodable.append((root, str(e)))
    return rep


def iter_missing(store: Blockstore, root: CID) -> Iterator[CID]:
    for cid, data in walk(root, store.get, missing_ok=True):
        if data is None:
            yield cid

"""Garbage collection, verification and repair of a block store, and the pin rules around them.

Usage::

    res = collect(store)            # GcResult: blocks removed, mark rounds
    rep = verify(store)             # VerifyReport: damaged, missing, stale blocks and who needs them
    repair(store, rep)              # remove the damaged blocks, so the next add or sync rewrites them
    pin_dag(store, root)            # pin a complete DAG, atomically with respect to GC
    pins_reaching(store, {mh})      # which pin's DAG holds a block (block rm refuses those)

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
from ipmirror.errors import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_PARTIAL,
    BlockNotFound,
    DecodeError,
    NotFound,
    UnsupportedFormat,
)
from ipmirror.store.base import USER, Blockstore, NoCopyStore, PinKind, Store
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


DAMAGED, MISSING, STALE = "damaged", "missing", "stale"


@dataclass
class VerifyReport:
    """What ``verify`` found. Every damaged, missing or stale block reachable from a pin is listed
    in ``needs`` with the pins whose DAG holds it (``repo verify`` adds the mirror versions)."""

    blocks: int = 0
    corrupt: list[bytes] = field(default_factory=list)  # damaged: stored bytes do not match the hash
    unverifiable: list[bytes] = field(default_factory=list)
    missing: list[tuple[CID, CID]] = field(default_factory=list)  # (pin root, missing block)
    undecodable: list[tuple[CID, str]] = field(default_factory=list)
    refs: int = 0
    stale: list[tuple[bytes, str]] = field(default_factory=list)  # no-copy: (multihash, why)
    # problem block (its CID as a pin's DAG links it) -> (kind, the pins that need it)
    needs: dict[bytes, tuple[CID, str, list[CID]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No damaged, missing or undecodable block (stale no-copy files are expected)."""
        return not (self.corrupt or self.missing or self.undecodable)

    @property
    def exit_code(self) -> int:
        """0 clean; 1 a block is damaged or missing; 3 only no-copy files are stale."""
        return EXIT_FAILURE if not self.ok else EXIT_PARTIAL if self.stale else EXIT_OK


def verify(store: Store) -> VerifyReport:
    """Re-hash every block; check every pinned DAG is complete. No-copy references whose files
    changed are reported as stale, not as corruption or missing blocks (an older version of a
    no-copy mirror is expected to lose the files the operator has since overwritten).

    A damaged block's links are not followed (they are not known); the pins that reach a problem
    block are found by walking each pin's DAG on its own, only when a first walk over all pins
    together (each block once) found a problem."""
    rep = VerifyReport()
    damaged: set[bytes] = set()
    for mh, data in store.iter_blocks():
        rep.blocks += 1
        try:
            if not verify_multihash(mh, data):
                rep.corrupt.append(mh)
                damaged.add(mh)
        except UnsupportedFormat:
            rep.unverifiable.append(mh)
    stale: dict[bytes, str] = {}
    if isinstance(store, NoCopyStore):
        for mh, raw in store.iter_refs():
            rep.refs += 1
            try:
                read_ref(CID(1, RAW, mh), raw)
            except StaleReference as e:
                rep.stale.append((mh, e.message))
                stale[mh] = e.message

    def get(cid: CID) -> bytes:
        if cid.multihash in damaged:
            raise BlockNotFound(cid)  # not followed: its links are not known
        return store.get(cid)

    def kind_of(mh: bytes) -> str:
        return DAMAGED if mh in damaged else STALE if mh in stale else MISSING

    pins = store.pins()
    seen: set[bytes] = set()
    found = False
    for root, kind in pins:  # first pass: every block once
        if kind != "recursive":
            found = found or not store.has(root) or root.multihash in damaged
            continue
        try:
            for c, d in walk(root, get, skip=lambda c: c.multihash in seen, missing_ok=True):
                seen.add(c.multihash)
                found = found or d is None
        except DecodeError as e:
            rep.undecodable.append((root, str(e)))
    if not found:
        return rep
    for root, kind in pins:  # second pass: which pins need which problem block
        if kind != "recursive":
            problems = [] if store.has(root) and root.multihash not in damaged else [root]
        else:
            try:
                problems = [c for c, d in walk(root, get, missing_ok=True) if d is None]
            except DecodeError:
                continue  # reported by the first pass
        for c in problems:
            k = kind_of(c.multihash)
            if k == MISSING:
                rep.missing.append((root, c))
            rep.needs.setdefault(c.multihash, (c, k, []))[2].append(root)
    return rep


def repair(store: Store, rep: VerifyReport) -> list[bytes]:
    """Remove the damaged blocks ``verify`` found (their multihashes, as removed): they are then
    missing, so the next add, mirror sync or import of the same data writes them again (a
    present block is never written again, so a damaged one would otherwise stay)."""
    removed = []
    for mh in rep.corrupt:
        if store.delete(CID(1, RAW, mh)):
            removed.append(mh)
    return removed


def pins_reaching(store: Store, targets: set[bytes]) -> dict[bytes, CID]:
    """For each of ``targets`` (multihashes) that a pin's DAG holds: one such pin (``block rm``
    refuses to remove those, as Kubo does)."""
    out: dict[bytes, CID] = {}
    for root, kind in store.pins():
        if kind != "recursive":
            if root.multihash in targets:
                out.setdefault(root.multihash, root)
            continue
        for c, _d in walk(root, store.get, missing_ok=True):
            if c.multihash in targets:
                out.setdefault(c.multihash, root)
        if len(out) == len(targets):
            break
    return out


def pin_dag(store: Store, root: CID, kind: PinKind = "recursive", owner: str = USER) -> None:
    """Pin ``root`` if its DAG is complete (recursive) or the block is present (direct); raise
    NotFound naming the first missing block otherwise. Atomic with respect to GC: every block is
    found through a write session (which stages it, store rule 3) and the pin is recorded when
    the session ends, so a GC running meanwhile cannot take a block between the check and the pin."""
    with store.session() as s:
        if kind != "recursive":
            if not s.has(root):
                raise NotFound(f"cannot pin {root}: it is not in the store", root)
        else:
            for c, d in walk(root, store.get, missing_ok=True):
                if d is None or not s.has(c):
                    raise NotFound(f"cannot pin {root}: block {c} is not in the store", c)
        s.pin(root, kind, owner)


def iter_missing(store: Blockstore, root: CID) -> Iterator[CID]:
    for cid, data in walk(root, store.get, missing_ok=True):
        if data is None:
            yield cid

"""CAR export and import over a block store (``ipmirror dag export/import``). The CAR format
itself (header, frames; pure) is ``codec/car.py``.

Usage::

    n = export_car(store.get, root, out.write)               # DFS order, each block once
    result = import_car(store, f.read, pin_roots=True)

Import verifies every block against its CID before storing it; the roots are pinned only when
their whole DAG is present in the store afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ipmirror.codec.car import Read, encode_frame, encode_header, read_car
from ipmirror.codec.cid import CID, verify_multihash
from ipmirror.dag.walk import walk
from ipmirror.errors import DecodeError, UnsupportedFormat
from ipmirror.store.base import Blockstore


def export_car(get: Callable[[CID], bytes], root: CID, write: Callable[[bytes], object]) -> int:
    """Stream the DAG under ``root`` as CARv1 (depth-first, pre-order); returns blocks written.
    A missing block raises BlockNotFound after the blocks before it were written."""
    write(encode_header([root]))
    n = 0
    for cid, data in walk(root, get):
        if cid.is_identity or data is None:
            continue
        write(encode_frame(cid, data))
        n += 1
    return n


@dataclass
class ImportResult:
    roots: list[CID]
    blocks: int = 0
    new: int = 0
    pinned: list[CID] = field(default_factory=list)
    incomplete: list[CID] = field(default_factory=list)


def import_car(store: Blockstore, read: Read, *, pin_roots: bool = True) -> ImportResult:
    roots, frames = read_car(read)
    result = ImportResult(roots)
    with store.session() as s:
        for cid, data in frames:
            try:
                ok = verify_multihash(cid.multihash, data)
            except UnsupportedFormat as e:
                raise DecodeError(f"invalid CAR: block {cid}: {e}") from None
            if not ok:
                raise DecodeError(f"invalid CAR: block {cid} does not match its hash")
            result.blocks += 1
            if s.put(cid, data):
                result.new += 1
        s.checkpoint()
        if pin_roots:
            for root in roots:
                missing = any(d is None for _, d in walk(root, store.get, missing_ok=True))
                if missing:
                    result.incomplete.append(root)
                else:
                    s.has(root)
                    s.pin(root)
                    result.pinned.append(root)
    return result

"""Links of a block by codec, and a depth-first walk of a DAG (GC, pins, verify, CAR, sync).

Usage::

    for cid, data in walk(root, store.get, missing_ok=True): ...

dag-pb and raw are understood; dag-cbor links (tag 42) are read by a small scanner; any other
codec is treated as a leaf.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ipmirror.codec import dagcbor, dagpb
from ipmirror.codec.cid import CID, DAG_CBOR, DAG_PB
from ipmirror.errors import BlockNotFound


def links(cid: CID, data: bytes) -> list[CID]:
    if cid.codec == DAG_PB:
        return [lk.hash for lk in dagpb.decode(data).links]
    if cid.codec == DAG_CBOR:
        return dagcbor.links(data)
    return []


def walk(root: CID, get: Callable[[CID], bytes], *, skip: Callable[[CID], bool] | None = None,
         missing_ok: bool = False) -> Iterator[tuple[CID, bytes | None]]:
    """Depth-first, each block once (by multihash): yields ``(cid, data)``; ``data`` is None for a
    missing block when ``missing_ok`` (otherwise BlockNotFound propagates)."""
    seen: set[bytes] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        mh = cid.multihash
        if mh in seen:
            continue
        seen.add(mh)
        if skip is not None and skip(cid):
            continue
        try:
            data = get(cid)
        except BlockNotFound:
            if not missing_ok:
                raise
            yield cid, None
            continue
        yield cid, data
        stack.extend(reversed(links(cid, data)))

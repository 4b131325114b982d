"""Differences between two versions, by walking both DAGs and skipping equal CIDs.

Usage::

    for ch in diff(store.get, old_root, new_root): print(ch.kind, ch.path)

Equal subtrees are skipped without being read, so the cost follows what changed. Two HAMT
directories are compared shard by shard (equal shards are skipped too), so a one-file change in a
500,000-entry directory reads a handful of blocks, not the whole directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from ipmirror.codec.cid import CID
from ipmirror.unixfs import exporter as ex
from ipmirror.unixfs.exporter import Getter, Node

ChangeKind = Literal["A", "D", "M"]


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind  # A added, D deleted, M modified (a file, symlink, or a type change)
    path: str
    old: CID | None
    new: CID | None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def diff(get: Getter, a: CID, b: CID, prefix: str = "") -> Iterator[Change]:
    if a == b:
        return
    na, nb = ex.stat(get, a), ex.stat(get, b)
    if not (na.is_dir and nb.is_dir):
        yield Change("M", prefix, a, b)
        return
    if na.kind == nb.kind == "hamt-sharded-directory" and _fanout(na) == _fanout(nb):
        yield from _diff_shards(get, na, nb, prefix)
        return
    ea = {e.name: e.cid for e in ex.list_dir(get, a, na)}
    eb = {e.name: e.cid for e in ex.list_dir(get, b, nb)}
    yield from _diff_entries(get, ea, eb, prefix)


def _diff_entries(get: Getter, ea: dict[str, CID], eb: dict[str, CID], prefix: str) -> Iterator[Change]:
    for name in sorted(set(ea) | set(eb)):
        p = _join(prefix, name)
        if name not in eb:
            yield from _every(get, ea[name], p, "D")
        elif name not in ea:
            yield from _every(get, eb[name], p, "A")
        elif ea[name] != eb[name]:
            yield from diff(get, ea[name], eb[name], p)


def _fanout(n: Node) -> int:
    return n.data.fanout if n.data and n.data.fanout else 0


def _diff_shards(get: Getter, na: Node, nb: Node, prefix: str) -> Iterator[Change]:
    """Compare two HAMT shards at the same depth bucket by bucket."""
    assert na.pb is not None and nb.pb is not None
    pad = len(f"{_fanout(na) - 1:X}")

    def buckets(n: Node) -> dict[str, list[tuple[str, CID]]]:
        out: dict[str, list[tuple[str, CID]]] = {}
        assert n.pb is not None
        for lk in n.pb.links:
            name = lk.name or ""
            out.setdefault(name[:pad], []).append((name[pad:], lk.hash))
        return out

    ba, bb = buckets(na), buckets(nb)
    for idx in sorted(set(ba) | set(bb)):
        la, lb = ba.get(idx, []), bb.get(idx, [])
        if la == lb:
            continue
        sa = la[0][1] if len(la) == 1 and la[0][0] == "" else None
        sb = lb[0][1] if len(lb) == 1 and lb[0][0] == "" else None
        if sa is not None and sb is not None:  # both sub-shards
            yield from _diff_shards(get, ex.stat(get, sa), ex.stat(get, sb), prefix)
            continue
        yield from _diff_entries(get, _expand(get, la), _expand(get, lb), prefix)


def _expand(get: Getter, links: list[tuple[str, CID]]) -> dict[str, CID]:
    out: dict[str, CID] = {}
    for name, cid in links:
        if name:
            out[name] = cid
        else:
            out.update((e.name, e.cid) for e in ex.list_dir(get, cid))
    return out


def _every(get: Getter, cid: CID, path: str, kind: ChangeKind) -> Iterator[Change]:
    """Every leaf path under ``cid`` (files, symlinks, empty directories) as one change kind."""
    node = ex.stat(get, cid)
    old, new = (cid, None) if kind == "D" else (None, cid)
    if not node.is_dir:
        yield Change(kind, path, old, new)
        return
    entries = list(ex.list_dir(get, cid, node))
    if not entries:
        yield Change(kind, path + "/", old, new)
    for e in entries:
        yield from _every(get, e.cid, _join(path, e.name), kind)

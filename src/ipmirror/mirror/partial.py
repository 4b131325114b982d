"""Partial syncs: what a sync puts in place of a file or directory it cannot read.

Usage::

    keep = KeepPrevious(db, mirror, present=..., protect=...)
    Importer(..., on_unreadable=keep)         # asked on the importer's driver thread
    keep.skipped                              # [Skipped(path, reason, kept)], for the report

Rules kept here (``--strict`` passes no policy: the first unreadable entry fails the sync):

1. A copying mirror keeps an unreadable entry's previous content: the entry the index recorded
   for the path (same kind), so the new version has the old bytes, never missing ones. Its index
   record is left as it was, so the next sync tries to read it again.
2. A no-copy mirror leaves it out: its earlier references point into a file that can no longer be
   read, so they cannot be trusted.
3. An entry with no previous record (new, or recorded by a sync that never completed and whose
   blocks are gone) is left out.
4. Every such entry is listed (:attr:`KeepPrevious.skipped`); the sync still publishes, and the
   CLI exits with code 3 (``EXIT_PARTIAL``), as rsync's 23.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ipmirror.codec.cid import CID
from ipmirror.errors import SourceError
from ipmirror.mirror.db import KIND_DIR, KIND_FILE, KIND_SYMLINK, Mirror, MirrorDB, split_rel
from ipmirror.unixfs.importer import EntryKind
from ipmirror.unixfs.nodes import Entry

_KINDS = {"file": KIND_FILE, "directory": KIND_DIR, "symlink": KIND_SYMLINK}


@dataclass(frozen=True, slots=True)
class Skipped:
    path: str  # relative to the mirror directory
    reason: str  # the error, one line
    kept: bool  # True: the previous content stays in the version; False: left out

    def __str__(self) -> str:
        return f"{self.path}: {self.reason} ({'previous content kept' if self.kept else 'left out'})"


class KeepPrevious:
    """The ``on_unreadable`` policy of ``mirror sync`` (see the module rules)."""

    def __init__(self, db: MirrorDB, mirror: Mirror, *, present: Callable[[CID], bool],
                 protect: Callable[[CID], None]) -> None:
        """``present``: whether a DAG is complete in the store; ``protect``: stage a DAG reused
        from a sync that never completed before the new root is pinned."""
        self.db = db
        self.mirror = mirror
        self.present = present
        self.protect = protect
        self.skipped: list[Skipped] = []
        self.files = 0  # files kept (they are in the version, read or not)
        self.nbytes = 0

    def __call__(self, rel: str, kind: EntryKind, error: SourceError) -> Entry | None:
        dirpath, name = split_rel(rel)
        path = rel.partition("/")[2]
        reason = str(error)
        prefix = ""
        for cand in (f"{self.mirror.dir}/{path}: ", f"{path}: "):
            if reason.startswith(cand):
                prefix = cand
        reason = reason[len(prefix):]
        entry = None if self.mirror.nocopy else self._previous(dirpath, name, kind)
        self.skipped.append(Skipped(path, reason, entry is not None))
        return entry

    def _previous(self, dirpath: bytes, name: bytes, kind: EntryKind) -> Entry | None:
        m = self.mirror
        rec = self.db.get_rec(m.id, dirpath, name)
        if rec is None or rec.kind != _KINDS[kind]:
            return None
        if rec.gen > m.completed_gen:  # from a sync that never completed: not pinned
            if not self.present(rec.cid):
                return None
            self.protect(rec.cid)
        if kind == "file":
            self.files += 1
            self.nbytes += rec.size
            return Entry(rec.cid, rec.tsize, rec.size)
        if kind == "directory":
            files, nbytes = self.db.subtree_files(m.id, dirpath, name)
            self.files += files
            self.nbytes += nbytes
        return Entry(rec.cid, rec.tsize, 0)

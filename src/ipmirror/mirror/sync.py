"""``mirror sync``: import the current state of a mirror directory as a new version, reading only
what changed.

Usage::

    result = sync(db, store, mirror, checksum=False, limits=Limits(), strict=False)  # SyncResult

How a sync decides what to read (rules, checked by tests/test_mirror.py):
1. A file is reused without being read when its (size, mtime_ns, inode, ctime_ns) equal the index
   record of the last scan and its mtime is at least ``RACY_NS`` older than that scan's stat
   ("racily clean", as git calls it: a file modified within the timestamp granularity of the
   scan could have changed without its stat changing). ``--checksum`` reads everything.
2. A directory all of whose children are the ones the last complete scan recorded is not
   re-encoded (its node is the recorded one). A changed directory that is and stays a HAMT is
   updated from its previous node: only the shards along the changed names are re-encoded, from
   the changes alone (the size estimate that decides flat or HAMT is kept in the directory's
   record and updated by the changes' difference). Directory nodes are rebuilt only along
   changed paths.
3. Index records are written only after the blocks they name are committed (the store session's
   commit hook), so an interrupted sync leaves an index that the next sync can trust, and it does
   not read those files again. File by file: each file's event follows its blocks from the worker
   that read it (the importer's ``early_file_events``), and the reader queue holds at most a
   quarter batch, so a sync killed at any point reads again at most about one batch of files plus
   those in flight (tests/test_mirror_safety.py). Records written by a sync that never completed
   are not yet protected by a pin (GC may have taken their blocks), so the next sync checks their
   blocks are still present before reusing them (a raw leaf by ``has``, without reading it).
   Deletions from the index wait until the source checks passed (``checks.py``: a refused sync
   leaves the records of the previous tree).
4. A version becomes visible only when complete: the root is pinned in the session's last
   transaction, then the version record is written, then ``publish`` is called (by the caller,
   ``manager.py``). A sync whose root equals the latest version's records no version
   (``SyncResult.new`` False); either way the mirror record notes when it was ``checked``.
5. Before publishing, the source checks of ``checks.py`` run (``Refused``, noted on the mirror
   record); unreadable entries are handled by ``partial.py``'s policy unless ``strict``.
6. Any block store will do (``store.base.Blockstore``); a ``--nocopy`` mirror needs one that keeps
   no-copy references (``NoCopyStore``), else the sync fails before it starts, saying so.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from ipmirror.codec.cid import CID, RAW
from ipmirror.dag.walk import walk
from ipmirror.errors import BlockNotFound, InvalidInput, Refused, StoreError
from ipmirror.mirror.checks import Limits, after_walk, before_walk
from ipmirror.mirror.db import (
    KIND_DIR,
    KIND_FILE,
    KIND_SYMLINK,
    REC_HEAD,
    ROOT_DIR,
    Mirror,
    MirrorDB,
    Rec,
    Version,
    split_rel,
    unpack_head,
)
from ipmirror.mirror.partial import KeepPrevious, Skipped
from ipmirror.store.base import Blockstore, NoCopySession, NoCopyStore, Session
from ipmirror.unixfs.importer import AddOptions, DirMemo, Importer, ImportEvent
from ipmirror.unixfs.nodes import Entry, RefSink
from ipmirror.unixfs.profile import from_preset

try:  # the C scanner (setup.py builds it; without a compiler the same rules run in Python)
    from ipmirror.mirror import _scan
except ImportError:  # pragma: no cover - depends on the build
    _scan = None  # type: ignore[assignment]

DEFAULT_LIMITS: Final = Limits()
PIN_OWNER = "mirrors"  # mirror versions' pins: separate from a user's pin of the same root
RACY_NS = 2_000_000_000  # 2 s: coarse file-system timestamps and clock skew


def _entry(raw: bytes) -> Entry:
    """The entry a packed index record names (a directory's ``size`` field holds its estimate,
    not content bytes)."""
    h = unpack_head(raw)
    return Entry(CID.trusted(raw[REC_HEAD + h.dlen:]), h.tsize, h.size if h.kind == KIND_FILE else 0)


_FILE = KIND_FILE[0]  # the first byte of a packed record (its kind), as raw[0] gives it
_DIR = KIND_DIR[0]


class _DirMemo:
    __slots__ = ("_unsure", "memo", "prev")

    def __init__(self, memo: IndexMemo, prev: dict[bytes, bytes]) -> None:
        self.memo = memo
        self.prev = prev  # name -> packed Rec
        self._unsure = False

    def file(self, name: bytes, st: os.stat_result) -> int:
        raw = self.prev.get(name)
        if raw is None or raw[0] != _FILE or self.memo.checksum:
            return -1
        _k, size, mtime, ino, ctime, _mode, _tsize, scan, gen, dlen = unpack_head(raw)
        if size != st.st_size or mtime != st.st_mtime_ns or ino != st.st_ino or ctime != st.st_ctime_ns:
            return -1
        if mtime >= scan - RACY_NS:
            return -1  # racily clean: read it again
        m = self.memo
        if gen > m.completed_gen:  # written by a sync that did not complete: not pinned
            cid = CID.trusted(raw[REC_HEAD + dlen:])
            if not m.present(cid):
                return -1
            m.unprotected.add(cid)
            self._unsure = True
        return size

    def entry(self, name: bytes) -> Entry:
        return _entry(self.prev[name])

    def same(self, name: bytes, entry: Entry) -> bool:
        raw = self.prev.get(name)
        if raw is None:
            return False
        head = unpack_head(raw)
        return head.gen <= self.memo.completed_gen and head.tsize == entry.tsize \
            and raw[REC_HEAD + head.dlen:] == entry.cid.buffer

    def unsure(self) -> bool:
        return self._unsure

    def count(self) -> int:
        return len(self.prev)

    def _complete_dir(self, name: bytes) -> Rec | None:
        raw = self.prev.get(name)
        if raw is None or raw[0] != _DIR:
            return None
        rec = Rec.unpack(raw)
        return rec if rec.gen <= self.memo.completed_gen else None

    def unchanged_dir(self, name: bytes) -> Entry | None:
        rec = self._complete_dir(name)
        return Entry(rec.cid, rec.tsize, 0) if rec is not None else None

    def previous(self, name: bytes) -> tuple[CID, int] | None:
        rec = self._complete_dir(name)
        return (rec.cid, rec.size) if rec is not None and rec.size > 0 else None  # size: the estimate

    def old_entries(self, names: Iterable[bytes]) -> dict[bytes, Entry | None] | None:
        out: dict[bytes, Entry | None] = {}
        for name in names:
            raw = self.prev.get(name)
            if raw is None:
                out[name] = None
                continue
            if unpack_head(raw).gen > self.memo.completed_gen:
                return None
            out[name] = _entry(raw)
        return out

    def block(self, cid: CID) -> bytes | None:
        return self.memo.get(cid)

    def removed(self, present: set[bytes]) -> list[tuple[bytes, bool]]:
        return [(n, r[0] == _DIR) for n, r in self.prev.items() if n not in present]

    def scan(self, path: bytes, hidden: bool) -> tuple[list[bytes], int, list[bytes]] | None:
        m = self.memo
        if _scan is None or m.checksum:
            return None
        return _scan.scan(path, self.prev, hidden, m.completed_gen, RACY_NS)


class IndexMemo:
    """The importer's TreeMemo over a mirror's index."""

    def __init__(self, db: MirrorDB, mirror: Mirror, checksum: bool,
                 present: Callable[[CID], bool], get: Callable[[CID], bytes | None]) -> None:
        self.db = db
        self.mid = mirror.id
        self.completed_gen = mirror.completed_gen
        self.checksum = checksum
        self.present = present
        self.get = get
        self._local = threading.local()
        self._lock = threading.Lock()
        self._txns: list[Any] = []
        self.unprotected: set[CID] = set()  # reused from an incomplete sync: stage before pinning

    def begin_dir(self, rel: str) -> DirMemo:
        _top, _, rest = rel.partition("/")
        return _DirMemo(self, self.db.children_raw(self.mid, os.fsencode(rest), self._snapshot()))

    def top(self) -> DirMemo:
        return _DirMemo(self, self.db.children_raw(self.mid, ROOT_DIR, self._snapshot()))

    def _snapshot(self) -> Any:
        """A read transaction per thread for the whole walk (the importer reads directories ahead
        on its pool threads; a transaction must not be used by two threads at once)."""
        txn = getattr(self._local, "txn", None)
        if txn is None:
            txn = self._local.txn = self.db.snapshot()
            with self._lock:
                self._txns.append(txn)
        return txn

    def close(self) -> None:
        """After the walk (no thread uses the transactions any more)."""
        with self._lock:
            for txn in self._txns:
                txn.abort()
            self._txns.clear()
        self._local = threading.local()


@dataclass
class _Tally:
    files: int = 0
    nbytes: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    read_files: int = 0
    read_bytes: int = 0
    puts: list[tuple[bytes, bytes, Rec]] = field(default_factory=list)
    deletes: list[tuple[bytes, bytes, bool]] = field(default_factory=list)


class Progress:
    """Live counters of a running sync for a progress display, read from any thread (plain ints
    another thread updates: a reading may be a moment old, never torn)."""

    def __init__(self) -> None:
        self._tally: _Tally | None = None
        self._importer: Importer | None = None

    def counts(self) -> dict[str, int]:
        """scanned (files seen) and their bytes, read (files hashed) and theirs, added, changed,
        removed — so far."""
        t, imp = self._tally, self._importer
        if t is None:
            return dict.fromkeys(("scanned", "scanned_bytes", "read", "read_bytes", "added", "changed",
                                  "removed"), 0)
        reused, reused_bytes = (imp.reused_files, imp.reused_bytes) if imp is not None else (0, 0)
        return {"scanned": reused + t.read_files, "scanned_bytes": reused_bytes + t.read_bytes,
                "read": t.read_files, "read_bytes": t.read_bytes, "added": t.added, "changed": t.changed,
                "removed": t.removed or len(t.deletes)}


def check_nocopy(store: Blockstore, name: str) -> None:
    """InvalidInput unless ``store`` can keep no-copy references (a ``--nocopy`` mirror's need)."""
    if not isinstance(store, NoCopyStore):
        raise InvalidInput(f"mirror {name}: --nocopy needs a block store that keeps no-copy "
                           f"references; this one ({type(store).__name__}) does not")


def _ref_sink(s: Session) -> RefSink:
    if not isinstance(s, NoCopySession):  # a NoCopyStore whose sessions are not: a broken backend
        raise StoreError("the block store's write session cannot record no-copy references")
    return s.put_ref


@dataclass
class SyncResult(Version):
    """What one sync did: a :class:`Version` with this sync's counts. ``new``: the version was
    recorded; False when nothing changed (then ``number`` and ``root`` are the latest version's,
    and no version was recorded). ``skipped_paths``: entries that could not be read (a partial
    sync; ``mirror/partial.py``)."""

    new: bool = True
    skipped_paths: list[Skipped] = field(default_factory=list)

    def record(self) -> Version:
        """The version record to store (without this sync's transient fields)."""
        d = dataclasses.asdict(self)
        d.pop("new")
        d.pop("skipped_paths")
        return Version(**d)


def sync(db: MirrorDB, store: Blockstore, mirror: Mirror, *, checksum: bool = False,
         batch_bytes: int | None = None, on_event: Callable[[ImportEvent], None] | None = None,
         on_warning: Callable[[str], None] | None = None, progress: Progress | None = None,
         limits: Limits = DEFAULT_LIMITS, strict: bool = False,
         now: Callable[[], float] = time.time) -> SyncResult:
    versions = db.versions(mirror.id)
    last = versions[-1] if versions else None
    try:
        dev = before_walk(mirror, last, limits)
    except Refused as e:
        _refused(db, mirror, e)
        raise
    if mirror.nocopy:
        check_nocopy(store, mirror.name)
    t0 = time.monotonic()
    gen = mirror.gen + 1
    mirror.gen = gen
    db.put_mirror(mirror)  # the index records this sync writes carry its generation
    profile = from_preset(mirror.profile)
    opts = AddOptions(profile, hidden=mirror.hidden, exclude=tuple(mirror.exclude), nocopy=mirror.nocopy)
    tally = _Tally()
    scan_ns = time.time_ns()

    def flush() -> None:  # after each commit: the records of files whose blocks are committed
        if tally.puts:
            db.apply(mirror.id, tally.puts, [])
            tally.puts = []

    def present(cid: CID) -> bool:  # driver thread: read-only
        gone = False

        def raw_leaf(c: CID) -> bool:  # has(), not get(): a no-copy get would read the file
            nonlocal gone
            if c.codec != RAW:
                return False
            gone = gone or not store.has(c)
            return True

        return all(d is not None for _c, d in walk(cid, store.get, skip=raw_leaf, missing_ok=True)) \
            and not gone

    def get(cid: CID) -> bytes | None:  # driver thread: read-only
        try:
            return store.get(cid)
        except BlockNotFound:
            return None

    memo = IndexMemo(db, mirror, checksum, present, get)
    keep = None if strict else KeepPrevious(db, mirror, present=present, protect=memo.unprotected.add)
    # a bounded queue between the readers and the writer: files read but not yet committed are
    # what an interrupted sync reads again, so keep them under about one batch
    queue = min(64 << 20, max(1 << 20, batch_bytes // 4)) if batch_bytes else 64 << 20
    try:
        with store.session(batch_bytes=batch_bytes, on_commit=flush) as s:
            def record(ev: ImportEvent) -> None:  # writer thread
                _record(db, mirror, ev, gen, scan_ns, tally)
                if on_event is not None:
                    on_event(ev)

            imp = Importer(opts, s.put, on_event=record, on_warning=on_warning, memo=memo,
                           ref_sink=_ref_sink(s) if mirror.nocopy else None, report_reused=False,
                           on_unreadable=keep, early_file_events=True, queue_bytes=queue)
            if progress is not None:
                progress._tally, progress._importer = tally, imp
            try:
                (root,) = imp.add_paths([mirror.dir])
            finally:
                memo.close()
            tally.files += imp.reused_files + (keep.files if keep else 0)
            tally.nbytes += imp.reused_bytes + (keep.nbytes if keep else 0)
            # deletions wait until the checks pass: a refused sync leaves the index's records of
            # the previous tree, so the restored source is not read again
            tally.removed = db.count_files(mirror.id, tally.deletes)
            after_walk(mirror, last, tally.files, tally.removed, limits)
            for cid in memo.unprotected:  # reused from a sync that never completed: not pinned yet
                _stage_dag(s, store, cid, str(cid))
            s.pin(root.cid, owner=PIN_OWNER)
            puts = s.puts
    except Refused as e:
        _refused(db, mirror, e)
        raise
    flush()
    if tally.deletes:
        db.apply(mirror.id, [], tally.deletes)
    skipped = keep.skipped if keep else []
    new = last is None or str(root.cid) != last.root
    v = SyncResult(number=last.number + 1 if new and last else last.number if last else 1, time=now(),
                   root=str(root.cid), files=tally.files, size=tally.nbytes, added=tally.added,
                   changed=tally.changed, removed=tally.removed, duration=round(time.monotonic() - t0, 3),
                   nocopy=mirror.nocopy, read_files=tally.read_files, read_bytes=tally.read_bytes,
                   put_blocks=puts, dev=dev, skipped=len(skipped), new=new, skipped_paths=skipped)
    if new:
        db.put_version(mirror.id, v.record())
    mirror.completed_gen = gen
    mirror.checked = v.time
    mirror.refused = ""
    db.put_mirror(mirror)
    return v


def _refused(db: MirrorDB, mirror: Mirror, e: Refused) -> None:
    """Note a refusal on the mirror record (for ``mirror list`` and status pages)."""
    mirror.refused = str(e)
    db.put_mirror(mirror)


def _stage_dag(s: Session, store: Blockstore, root: CID, path: str) -> None:
    """Stage every block of a reused DAG under the session (so GC cannot take it before the pin);
    fail if one went missing since the memo checked."""
    def raw_leaf(c: CID) -> bool:  # staged by has(); no need to read it (a no-copy read re-reads the file)
        if c.codec != RAW:
            return False
        if not s.has(c):
            raise _gone(path, c)
        return True

    for cid, data in walk(root, store.get, skip=raw_leaf, missing_ok=True):
        if data is None or not s.has(cid):
            raise _gone(path, cid)


def _gone(path: str, cid: CID) -> StoreError:
    return StoreError(f"{path}: block {cid} was removed while syncing (a concurrent gc?); run the sync again")


def _record(db: MirrorDB, mirror: Mirror, ev: ImportEvent, gen: int, scan_ns: int, t: _Tally) -> None:
    dirpath, name = split_rel(ev.path)
    if ev.kind == "removed":
        t.deletes.append((dirpath, name, True))
        return
    e = ev.entry
    assert e is not None
    if ev.kind == "file":
        t.files += 1
        t.nbytes += e.size
        if ev.reused:
            return
        t.read_files += 1
        t.read_bytes += e.size
        old = db.get_rec(mirror.id, dirpath, name)
        if old is None or old.kind != KIND_FILE:
            t.added += 1
        elif old.cid != e.cid:
            t.changed += 1
    elif ev.reused:
        return
    st = ev.stat
    assert st is not None
    kind = {"file": KIND_FILE, "directory": KIND_DIR, "symlink": KIND_SYMLINK}[ev.kind]
    size = ev.dir_size if ev.kind == "directory" else e.size  # a directory's: its size estimate
    t.puts.append((dirpath, name, Rec(kind, e.cid, e.tsize, size, st.st_mtime_ns, st.st_ino,
                                      st.st_ctime_ns, st.st_mode, scan_ns, gen)))

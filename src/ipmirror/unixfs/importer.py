"""The importer: files and directory trees in, UnixFS DAGs out (``ipmirror add``).

Usage::

    imp = Importer(AddOptions(profile), sink=session.put, on_event=print)   # ImportEvent each
    root = imp.add_paths(["dir"])            # -> Entry of the root

Pipeline (chunker -> layout -> BlockMaker -> sink), run on threads:
- a *driver* thread walks the tree depth-first, submits regular files to a pool of hashing
  workers and builds directory nodes once their children are done;
- *workers* read, chunk, hash and lay out one file each (hashlib and os.read drop the GIL, so two
  workers keep both cores busy);
- blocks travel through a bounded queue to the calling thread, which hands them to the sink (an
  LMDB write session belongs to its thread); the queue bounds memory. ``on_event`` events travel
  through the same queue, so an entry is reported (on the calling thread) only after all of its
  blocks went to the sink.
Directories are built when complete, so memory is O(largest directory + files in flight), not
O(tree).

A :class:`TreeMemo` (``mirror sync`` passes one) lets the walk reuse what an earlier scan
computed: an unchanged file is not read, a directory whose children are unchanged is not
re-encoded, and names that disappeared are reported as ``removed`` events.

Files are read once, never whole: a file that changes while it is read (size, mtime or ctime
differs before and after: a writer may keep the size and restore the mtime, but cannot restore the
ctime) is read again, and after three tries the add fails for it. Special files
(FIFOs, sockets, devices) are skipped with a warning; an unreadable file fails the add, unless an
``on_unreadable`` policy is given (``mirror sync``): it is asked, on the driver thread, what to put
in the file's (or unlistable directory's, or unreadable symlink's) place — an earlier entry, or
nothing (then the name is left out; with ``on_unreadable`` a file that vanished before it could be
opened is left out with a warning, as one that vanished before its stat).

``early_file_events``: a file's event is sent by the worker that read it, right after its blocks,
instead of by the driver once the whole directory is done; so a consumer that records files as
their blocks are committed (``mirror sync``) loses at most the files in flight when interrupted,
even inside one huge directory. Events of one directory then arrive in completion order.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import queue
import stat as statmod
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Protocol

from ipmirror.codec import unixfs_pb as pb
from ipmirror.codec.cid import CID
from ipmirror.errors import InvalidInput, SourceError
from ipmirror.unixfs.balanced import BalancedBuilder
from ipmirror.unixfs.chunker import chunks
from ipmirror.unixfs.directory import build_directory, build_directory_sized, symlink, update_directory
from ipmirror.unixfs.nodes import BlockMaker, Entry, RefSink, Sink
from ipmirror.unixfs.profile import Profile
from ipmirror.unixfs.trickle import TrickleBuilder

MAX_TRIES = 3
BATCH_ITEMS = 256  # items per hand-off to the calling thread (see Importer._send)
SCAN_AHEAD = 16  # subdirectories a mirror sync scans ahead of the walk (Importer._prefetch)
EntryKind = Literal["file", "directory", "symlink", "removed"]


@dataclass(frozen=True, slots=True)
class AddOptions:
    profile: Profile
    hidden: bool = False
    preserve_mode: bool = False
    preserve_mtime: bool = False
    wrap: bool = False
    exclude: tuple[str, ...] = ()  # glob patterns, matched against names and relative paths
    nocopy: bool = False  # raw leaves become references into the files (needs a ref_sink)

    def excluded(self, name: str, rel: str) -> bool:
        if not self.hidden and name.startswith("."):
            return True
        return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(rel, p) for p in self.exclude)


@dataclass(frozen=True, slots=True)
class ImportEvent:
    """What the walk found at one path: an imported entry (``kind`` file, directory or symlink,
    reported after its blocks went to the sink), or a name that is gone (``kind`` removed).

    ``path`` is relative to the added path's parent (``dir/sub/file``); ``stat`` is the file's
    stat taken before it was read; ``dir_size`` is a directory's size estimate (what chose a flat
    node or a HAMT; kept to update the node later); ``reused`` says the entry came from a
    TreeMemo, unread. ``removed`` events carry no entry: the name existed in the memo and no
    longer does.
    """

    path: str
    entry: Entry | None
    kind: EntryKind
    stat: os.stat_result | None = None
    dir_size: int = 0
    reused: bool = False


class DirMemo(Protocol):
    """What an earlier scan knew about one directory's children.

    The importer asks about each child as it walks; entries are only materialized (``entry``) when
    the directory has to be rebuilt, so walking an unchanged directory creates no per-file objects.
    """

    def file(self, name: bytes, st: os.stat_result) -> int:
        """The size of an unchanged file, whose entry ``entry(name)`` gives (-1: read it)."""
        ...

    def entry(self, name: bytes) -> Entry:
        """The earlier entry of a child that ``file`` vouched for."""
        ...

    def same(self, name: bytes, entry: Entry) -> bool:
        """Whether the earlier scan recorded exactly this entry (CID and size) for ``name``."""
        ...

    def unsure(self) -> bool:
        """Whether a child was vouched for from a scan that never completed (so this directory's
        earlier node may not contain it)."""
        ...

    def count(self) -> int:
        """How many children the earlier scan recorded."""
        ...

    def unchanged_dir(self, name: bytes) -> Entry | None:
        """The entry of subdirectory ``name`` from the last complete scan, for a subdirectory whose
        children all turned out unchanged (None: build it)."""
        ...

    def previous(self, name: bytes) -> tuple[CID, int] | None:
        """The node subdirectory ``name`` had in the last complete scan and its size estimate (to
        update it from; None: unknown)."""
        ...

    def old_entries(self, names: Iterable[bytes]) -> dict[bytes, Entry | None] | None:
        """The entries the last complete scan recorded for ``names`` (None for a name it did not
        have); None if one was recorded by a scan that never completed."""
        ...

    def block(self, cid: CID) -> bytes | None:
        """A stored block (None: missing)."""
        ...

    def removed(self, present: set[bytes]) -> list[tuple[bytes, bool]]:
        """Names (and whether each was a directory) that the earlier scan had and are gone."""
        ...

    def scan(self, path: bytes, hidden: bool) -> tuple[list[bytes], int, list[bytes]] | None:
        """List directory ``path`` and sort out its unchanged files in one go: (names of the
        files ``file`` would vouch for, their bytes, every other name); None: not available
        (the importer stats and asks about each entry itself)."""
        ...


class TreeMemo(Protocol):
    def begin_dir(self, rel: str) -> DirMemo:
        """The memo of the directory at ``rel`` (``root/a/b``) about its children."""
        ...

    def top(self) -> DirMemo:
        """The memo about the added root itself (its name is ``b""``)."""
        ...


_Scan = tuple[list[bytes], int, list[bytes]]  # DirMemo.scan: (unchanged files, their bytes, the rest)
_Item = tuple[CID, bytes] | tuple[CID, bytes, int, int] | ImportEvent


class _Abort(Exception):
    pass


class _Unlisted(SourceError):
    """A directory that cannot be listed (its parent asks the ``on_unreadable`` policy)."""


class _Vanished(SourceError):
    """A file that disappeared between its stat and its open."""


Unreadable = Callable[[str, EntryKind, SourceError], Entry | None]
"""``on_unreadable(path, kind, error)``: what to put in place of an entry that cannot be read
(``path`` as in ImportEvent); None leaves it out."""


def _metadata(st: os.stat_result, opts: AddOptions) -> tuple[int | None, pb.MTime | None]:
    mode = statmod.S_IMODE(st.st_mode) if opts.preserve_mode else None
    mtime = None
    if opts.preserve_mtime:
        ns = st.st_mtime_ns
        mtime = pb.MTime(ns // 1_000_000_000, ns % 1_000_000_000)
    return mode, mtime


class Importer:
    def __init__(self, options: AddOptions, sink: Sink | None = None, *,
                 on_event: Callable[[ImportEvent], None] | None = None,
                 on_warning: Callable[[str], None] | None = None,
                 memo: TreeMemo | None = None, ref_sink: RefSink | None = None,
                 report_reused: bool = True, on_unreadable: Unreadable | None = None,
                 early_file_events: bool = False,
                 workers: int | None = None, queue_bytes: int = 64 << 20) -> None:
        """``sink`` receives every block to store (None: hash only). ``sink`` and ``on_event``
        are only ever called from the thread that calls ``add_paths``. ``on_unreadable`` and
        ``early_file_events``: see the module docstring."""
        self.options = options
        self.profile = options.profile
        self._sink = sink
        self._on_event = on_event
        self._on_warning = on_warning
        self._memo = memo
        self._report_reused = report_reused  # False: count reused files instead of reporting each
        self.reused_files = 0
        self.reused_bytes = 0
        self._ref_sink = ref_sink
        self._on_unreadable = on_unreadable
        self._early = early_file_events
        if options.nocopy and (ref_sink is None or not options.profile.raw_leaves):
            raise InvalidInput("no-copy needs raw leaves and a store that takes references")
        self._workers = workers or min(2, os.cpu_count() or 1)
        self._queue_bytes = queue_bytes
        self._q: queue.Queue[list[_Item] | None] | None = None
        self._tls = threading.local()
        self._batch_bytes = 1 << 18
        self._abort = threading.Event()

    # -- the ordered channel to the calling thread ---------------------------------------------
    # Items travel in per-thread batches (one queue hand-off, and one wake-up of the calling
    # thread, per batch instead of per block): a batch holds at most about one block's worth of
    # bytes, so the queue's bound on memory is unchanged. Order is kept: a worker flushes its
    # batch before its file's future completes, so a file's blocks always precede the driver's
    # event for it.
    def _send(self, item: _Item) -> None:
        if self._q is None:  # hash only: the driver runs on the calling thread
            if isinstance(item, ImportEvent) and self._on_event is not None:
                self._on_event(item)
            return
        tls = self._tls
        batch = getattr(tls, "batch", None)
        if batch is None:
            batch = tls.batch = []
            tls.nbytes = 0
        batch.append(item)
        if not isinstance(item, ImportEvent):
            tls.nbytes += len(item[1]) if len(item) == 2 else 64
        if len(batch) >= BATCH_ITEMS or tls.nbytes >= self._batch_bytes:
            self._flush()

    def _flush(self) -> None:
        """Hand this thread's batch to the calling thread."""
        q = self._q
        batch = getattr(self._tls, "batch", None)
        if q is None or not batch:
            return
        self._tls.batch = []
        self._tls.nbytes = 0
        while True:
            if self._abort.is_set():
                raise _Abort
            try:
                q.put(batch, timeout=0.2)
                return
            except queue.Full:
                continue

    def _block(self, cid: CID, data: bytes) -> None:
        self._send((cid, data))

    def _ref(self, cid: CID, path: bytes, offset: int, length: int) -> None:
        self._send((cid, path, offset, length))

    # -- public -------------------------------------------------------------------------------
    def add_paths(self, paths: Sequence[str | os.PathLike[str]]) -> list[Entry]:
        """Import each path; returns their roots (just the wrapping directory with ``wrap``)."""
        if not paths:
            raise InvalidInput("nothing to add")
        for p in paths:
            if not os.path.lexists(p):
                raise InvalidInput(f"{os.fspath(p)}: no such file or directory")
        return self._run(lambda sink: self._drive(paths, sink))

    def add_stream(self, fd: int, name: str = "") -> Entry:
        """Import everything read from ``fd`` (standard input) as one file; returns its root (the
        wrapping directory with ``wrap``, where the file is called ``name``). Its event's path
        is ``name``, or the file's CID when there is none (as Kubo prints it)."""
        if self.options.wrap and not name:
            raise InvalidInput("wrapping standard input in a directory needs a name for it (--stdin-name)")
        return self._run(lambda sink: [self._stream(fd, name, sink)])[0]

    def _stream(self, fd: int, name: str, sink: Sink) -> Entry:
        maker = BlockMaker(self.profile, sink)
        try:
            entry = self.import_fd(maker, fd)
        except OSError as e:
            raise SourceError(f"standard input: {e.strerror}") from None
        self._emit(name or str(entry.cid), entry, "file")
        if not self.options.wrap:
            return entry
        root = build_directory(maker, self.profile, [(os.fsencode(name), entry)])
        self._emit("", root, "directory")
        return root

    def _run(self, job: Callable[[Sink], list[Entry]]) -> list[Entry]:
        """Run ``job`` (given the sink of the blocks it makes) on a thread while this one hands
        its blocks and events on, in order; hash only: on this thread."""
        if self._sink is None:
            return job(_discard)
        per_block = self.profile.chunker.size or (512 << 10)
        self._batch_bytes = per_block
        q: queue.Queue[list[_Item] | None] = queue.Queue(
            maxsize=max(4, self._queue_bytes // max(per_block, 1)))
        self._q = q
        result: list[list[Entry]] = []
        error: list[BaseException] = []

        def driver() -> None:
            try:
                result.append(job(self._block))
                self._flush()
            except BaseException as e:  # handed to the calling thread
                error.append(e)
            finally:
                q.put(None)

        t = threading.Thread(target=driver, name="ipmirror-import", daemon=True)
        t.start()
        sink = self._sink
        on_event = self._on_event
        try:
            while True:
                batch = q.get()
                if batch is None:
                    break
                for item in batch:
                    if isinstance(item, ImportEvent):
                        if on_event is not None:
                            on_event(item)
                    elif len(item) == 2:
                        sink(*item)
                    else:
                        assert self._ref_sink is not None
                        self._ref_sink(*item)
        except BaseException:
            self._abort.set()
            while t.is_alive():  # unblock producers
                with contextlib.suppress(queue.Empty):
                    q.get(timeout=0.1)
            raise
        finally:
            t.join()
            self._q = None
        if error:
            if isinstance(error[0], _Abort):
                raise SourceError("import aborted")
            raise error[0]
        return result[0]

    # -- driver ----------------------------------------------------------------------------
    def _emit(self, path: str, entry: Entry | None, kind: EntryKind, st: os.stat_result | None = None,
              dir_size: int = 0, reused: bool = False) -> None:
        if self._on_event is not None:
            self._send(ImportEvent(path, entry, kind, st, dir_size, reused))

    def _drive(self, paths: Sequence[str | os.PathLike[str]], sink: Sink) -> list[Entry]:
        maker = BlockMaker(self.profile, sink)
        inflight = threading.BoundedSemaphore(self._workers * 4)
        with ThreadPoolExecutor(self._workers, thread_name_prefix="ipmirror-hash") as pool:
            tops: list[tuple[bytes, Entry]] = []
            for p in paths:
                ps = os.fspath(p)
                name = os.path.basename(os.path.abspath(ps)) or ps  # "." -> the directory's name
                tops.append((os.fsencode(name), self._any(maker, pool, inflight, ps, name)))
            if not self.options.wrap:
                return [e for _, e in tops]
            names = [n for n, _ in tops]
            if len(set(names)) != len(names):
                raise InvalidInput("two added paths have the same name; cannot wrap them")
            root = build_directory(maker, self.profile, tops)
            self._emit("", root, "directory")
            return [root]

    def _any(self, maker: BlockMaker, pool: ThreadPoolExecutor, inflight: threading.BoundedSemaphore,
             path: str, rel: str) -> Entry:
        try:
            st = os.lstat(path)
        except OSError as e:
            raise SourceError(f"{path}: {e.strerror}") from None
        if statmod.S_ISLNK(st.st_mode):
            return self._symlink(maker, path, rel, st)
        if statmod.S_ISDIR(st.st_mode):
            top = self._memo.top() if self._memo is not None else None
            entry, _same = self._dir(maker, pool, inflight, path, rel, st, top, b"")
            return entry
        if statmod.S_ISREG(st.st_mode):
            entry, fst = self._file(maker, path, st)
            self._emit(rel, entry, "file", fst)
            return entry
        raise InvalidInput(f"{path}: not a regular file, directory or symlink")

    def _symlink(self, maker: BlockMaker, path: str, rel: str, st: os.stat_result) -> Entry:
        try:
            target = os.readlink(os.fsencode(path))
        except OSError as e:
            raise SourceError(f"{path}: {e.strerror}") from None
        mode, mtime = _metadata(st, self.options)
        entry = symlink(maker, target, mode, mtime)
        self._emit(rel, entry, "symlink", st)
        return entry

    def _prefetch(self, path: str, rel: str) -> tuple[DirMemo, _Scan | None]:
        """A directory's memo and the memo's scan of it (run on a pool thread, ahead of the walk:
        the scan's system calls run without the GIL, in parallel with the walk elsewhere)."""
        assert self._memo is not None
        memo = self._memo.begin_dir(rel)
        return memo, memo.scan(os.fsencode(path), self.options.hidden)

    def _dir(self, maker: BlockMaker, pool: ThreadPoolExecutor, inflight: threading.BoundedSemaphore,
             path: str, rel: str, st: os.stat_result, parent: DirMemo | None,
             name_in_parent: bytes, ahead: Future[tuple[DirMemo, _Scan | None]] | None = None,
             ) -> tuple[Entry, bool]:
        """Import a directory; returns its entry and whether it is unchanged from the memo's scan.
        ``ahead``: its memo and scan, already under way (:meth:`_prefetch`)."""
        bpath = os.fsencode(path)
        hidden = self.options.hidden
        exclude = self.options.exclude
        report_reused = self._report_reused
        # the memo's own scan (when there is no per-entry work it cannot do: excludes, reporting)
        fast_ok = self._memo is not None and not exclude and not report_reused
        reused: list[bytes] = []  # files the memo vouched for; entries made only if rebuilding
        reused_bytes = 0
        memo: DirMemo | None
        try:
            fast = None
            if ahead is not None:
                memo, fast = ahead.result()
            else:
                memo = self._memo.begin_dir(rel) if self._memo is not None else None
                if memo is not None and fast_ok:
                    fast = memo.scan(bpath, hidden)
            if fast is not None:  # the memo sorted out the unchanged files itself
                reused, reused_bytes, rest = fast
                items: list[tuple[bytes, os.DirEntry[bytes] | None]] = [(n, None) for n in sorted(rest)]
            else:
                with os.scandir(bpath) as it:
                    items = [(d.name, d) for d in sorted(it, key=lambda d: d.name)]
        except OSError as e:
            raise _Unlisted(f"{path}: {e.strerror}") from None
        children: list[tuple[bytes, Entry]] = []
        changed: list[bytes] = []  # names whose entry is (or may be) new
        files: list[tuple[bytes, str, Future[tuple[Entry, os.stat_result]]]] = []
        subdirs: list[tuple[bytes, str, str, os.stat_result]] = []
        # Without a memo scan this loop is the whole cost of a no-op mirror sync: keep per-entry
        # work minimal.
        abort = self._abort
        isreg, isdir, islnk = statmod.S_ISREG, statmod.S_ISDIR, statmod.S_ISLNK
        for name, d in items:
            if abort.is_set():
                raise _Abort
            if not hidden and name[:1] == b".":
                continue
            if exclude and self.options.excluded(os.fsdecode(name), _below_root(rel, name)):
                continue
            try:
                dst = d.stat(follow_symlinks=False) if d is not None else os.lstat(os.path.join(bpath, name))
            except FileNotFoundError:
                self._warn(f"{os.fsdecode(os.path.join(bpath, name))}: vanished during add, skipped")
                continue
            fmt = dst.st_mode
            if memo is not None and isreg(fmt):
                size = memo.file(name, dst)
                if size >= 0:
                    reused.append(name)
                    reused_bytes += size
                    if report_reused:
                        self._emit(rel + "/" + os.fsdecode(name), memo.entry(name), "file", dst, reused=True)
                    continue
            sub = os.fsdecode(os.path.join(bpath, name))
            subrel = rel + "/" + os.fsdecode(name)
            if isreg(fmt):
                inflight.acquire()
                fut = pool.submit(self._file_task, maker, sub, dst, subrel)
                fut.add_done_callback(lambda _f: inflight.release())
                files.append((name, subrel, fut))
            elif isdir(fmt):
                subdirs.append((name, sub, subrel, dst))
            elif islnk(fmt):
                try:
                    link = self._symlink(maker, sub, subrel, dst)
                except SourceError as e:
                    kept = self._unreadable(subrel, "symlink", e)
                    if kept is None:
                        continue
                    link = kept
                children.append((name, link))
                if memo is None or not memo.same(name, link):
                    changed.append(name)
            else:
                self._warn(f"{sub}: special file skipped")
        self.reused_files += len(reused)
        self.reused_bytes += reused_bytes
        # scan a few subdirectories ahead (a window, so a directory with 500,000 subdirectories
        # does not hold 500,000 scans in memory)
        aheads: dict[int, Future[tuple[DirMemo, _Scan | None]]] = {}

        def scan_ahead(i: int) -> None:
            if fast_ok and i < len(subdirs):
                aheads[i] = pool.submit(self._prefetch, subdirs[i][1], subdirs[i][2])

        for i in range(SCAN_AHEAD):
            scan_ahead(i)
        for i, (name, sub, subrel, dst) in enumerate(subdirs):
            scan_ahead(i + SCAN_AHEAD)
            try:
                entry, same = self._dir(maker, pool, inflight, sub, subrel, dst, memo, name,
                                        aheads.pop(i, None))
            except _Unlisted as e:
                kept = self._unreadable(subrel, "directory", e)
                if kept is None:
                    continue
                entry, same = kept, False
            children.append((name, entry))
            if not same and (memo is None or not memo.same(name, entry)):
                changed.append(name)
        for name, subrel, fut in files:
            try:
                entry, fst = fut.result()
            except _Vanished as e:
                if self._on_unreadable is None:
                    raise
                self._warn(f"{e}, skipped")
                continue
            except SourceError as e:
                kept = self._unreadable(subrel, "file", e)
                if kept is None:
                    continue
                entry = kept
            else:
                if not self._early_now():
                    self._emit(subrel, entry, "file", fst)
            children.append((name, entry))
            if memo is None or not memo.same(name, entry):
                changed.append(name)
        mode, mtime = _metadata(st, self.options)
        if memo is None or parent is None:
            entry, size = build_directory_sized(maker, self.profile, children, mode, mtime)
            self._emit(rel, entry, "directory", st, size)
            return entry, False
        plain = mode is None and mtime is None and not memo.unsure()
        if plain and not changed and len(children) + len(reused) == memo.count():
            # every child is the one the last scan recorded: so is this directory's node
            known = parent.unchanged_dir(name_in_parent)
            if known is not None:
                if self._report_reused:  # (else: one event fewer through the queue per directory)
                    self._emit(rel, known, "directory", st, reused=True)
                return known, True
        present = {n for n, _ in children}
        present.update(reused)
        for gone, _was_dir in memo.removed(present):
            self._emit(rel + "/" + os.fsdecode(gone), None, "removed")
            changed.append(gone)
        prev = parent.previous(name_in_parent) if plain else None
        if prev is not None and len(changed) * 4 <= len(present):
            # few changes: update the previous node (a HAMT along the changed names only)
            old = memo.old_entries(changed)
            if old is not None:
                new = dict(children)
                done = update_directory(maker, self.profile, prev[0], prev[1], memo.block,
                                        {n: (old[n], new.get(n)) for n in changed})
                if done is not None:
                    self._emit(rel, done[0], "directory", st, done[1])
                    return done[0], False
        children.extend((n, memo.entry(n)) for n in reused)
        entry, size = build_directory_sized(maker, self.profile, children, mode, mtime)
        self._emit(rel, entry, "directory", st, size)
        return entry, False

    def _warn(self, msg: str) -> None:
        if self._on_warning is not None:
            self._on_warning(msg)

    def _early_now(self) -> bool:
        """Whether workers send file events (never in hash-only runs: there ``on_event`` is called
        directly, and must stay on the calling thread)."""
        return self._early and self._q is not None

    def _unreadable(self, rel: str, kind: EntryKind, error: SourceError) -> Entry | None:
        """The ``on_unreadable`` policy's answer for an entry that cannot be read (no policy: the
        error stands)."""
        if self._on_unreadable is None:
            raise error
        return self._on_unreadable(rel, kind, error)

    # -- files ----------------------------------------------------------------------------------
    def _file_task(self, maker: BlockMaker, path: str, st: os.stat_result,
                   rel: str) -> tuple[Entry, os.stat_result]:
        """:meth:`_file` on a pool thread: its blocks (and with ``early_file_events`` its event)
        are handed on before the result is."""
        try:
            entry, fst = self._file(maker, path, st)
            if self._early_now():
                self._emit(rel, entry, "file", fst)
            return entry, fst
        finally:
            if not self._abort.is_set():
                self._flush()

    def _file(self, maker: BlockMaker, path: str, st: os.stat_result) -> tuple[Entry, os.stat_result]:
        """Import one file; returns its entry and the stat taken before it was read."""
        mode, mtime = _metadata(st, self.options)
        for _ in range(MAX_TRIES):
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except FileNotFoundError:
                raise _Vanished(f"{path}: vanished during add") from None
            except OSError as e:
                raise SourceError(f"{path}: {e.strerror}") from None
            try:
                before = os.fstat(fd)
                if hasattr(os, "posix_fadvise"):
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
                entry = self.import_fd(maker, fd, mode, mtime,
                                       os.fsencode(os.path.abspath(path)) if self.options.nocopy else None)
                after = os.fstat(fd)
            except OSError as e:
                raise SourceError(f"{path}: {e.strerror}") from None
            finally:
                os.close(fd)
            # ctime too: a writer can keep the size and put the mtime back, not the ctime
            if (before.st_size, before.st_mtime_ns, before.st_ctime_ns) \
                    == (after.st_size, after.st_mtime_ns, after.st_ctime_ns) and after.st_size == entry.size:
                return entry, before
            self._warn(f"{path}: changed while being read, reading it again")
        raise SourceError(f"{path}: kept changing while being read ({MAX_TRIES} tries)")

    def import_fd(self, maker: BlockMaker, fd: int, mode: int | None = None,
                  mtime: pb.MTime | None = None, nocopy_path: bytes | None = None) -> Entry:
        """Import the rest of an open file (from offset 0 when ``nocopy_path`` is given)."""
        ref = (self._send_ref, nocopy_path) if nocopy_path is not None else None
        return import_chunks(maker, self.profile, chunks(fd, self.profile.chunker), mode, mtime,
                             self._abort, ref)

    def _send_ref(self, cid: CID, path: bytes, offset: int, length: int) -> None:
        if self._q is None:  # hash only: nothing to record
            return
        self._ref(cid, path, offset, length)


def _below_root(rel: str, name: bytes) -> str:
    """The path of ``name`` in directory ``rel`` relative to the added root (``root/a`` -> ``a/name``)."""
    _top, _, below = rel.partition("/")
    return f"{below}/{os.fsdecode(name)}" if below else os.fsdecode(name)


def import_chunks(maker: BlockMaker, profile: Profile, source: Iterable[bytes], mode: int | None,
                  mtime: pb.MTime | None, abort: threading.Event | None = None,
                  ref: tuple[RefSink, bytes] | None = None) -> Entry:
    """Lay out a file from an iterable of chunks (``mode``/``mtime`` None when not recorded).
    With ``ref`` = (ref sink, file path), raw leaves become no-copy references."""

    def checked() -> Iterator[bytes]:
        for chunk in source:
            if abort is not None and abort.is_set():
                raise _Abort
            yield chunk

    if profile.layout == "trickle":
        tb = TrickleBuilder(maker, profile.max_links, profile.trickle_layer_repeat,
                            profile.raw_leaves, mode, mtime)
        return tb.build(checked())
    b = BalancedBuilder(maker, profile.max_links, mode, mtime)
    leaf = maker.raw_leaf if profile.raw_leaves else maker.pb_leaf
    if ref is not None:
        ref_sink, path = ref
        offset = [0]

        def leaf(chunk: bytes) -> Entry:
            e = maker.raw_ref(chunk, ref_sink, path, offset[0])
            offset[0] += len(chunk)
            return e
    it = checked()
    first = next(it, b"")
    second = next(it, None)
    if second is None and (mode is not None or mtime is not None):
        # one chunk with metadata: a File node that holds the bytes (a raw leaf cannot carry it)
        return maker.file_with_data(first, mode, mtime)
    b.add(leaf(first))
    if second is not None:
        b.add(leaf(second))
        for chunk in it:
            b.add(leaf(chunk))
    return b.finish()


def _discard(cid: CID, data: bytes) -> None:
    return None

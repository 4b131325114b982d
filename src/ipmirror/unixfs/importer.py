"""The importer: files and directory trees in, UnixFS DAGs out (``ipmirror add``).

Usage::

    imp = Importer(AddOptions(profile), sink=session.put, on_added=print)
    root = imp.add_paths(["dir"])            # -> Entry of the root

Pipeline (chunker -> layout -> BlockMaker -> sink), run on threads:
- a *driver* thread walks the tree depth-first, submits regular files to a pool of hashing
  workers and builds directory nodes once their children are done;
- *workers* read, chunk, hash and lay out one file each (hashlib and os.read drop the GIL, so two
  workers keep both cores busy);
- when the sink must be called from one thread (an LMDB write session), blocks travel through a
  bounded queue to the calling thread, which writes them; the queue bounds memory.
Directories are built when complete, so memory is O(largest directory + files in flight), not
O(tree).

Files are read once, never whole: a file that changes while it is read (size or mtime differs
before and after) is read again, and after three tries the add fails for it. Special files
(FIFOs, sockets, devices) are skipped with a warning; an unreadable file fails the add.
"""

from __future__ import annotations

import contextlib
import os
import queue
import stat as statmod
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from ipmirror.codec import unixfs_pb as pb
from ipmirror.codec.cid import CID
from ipmirror.errors import InvalidInput, IpmirrorError
from ipmirror.unixfs.chunker import chunks
from ipmirror.unixfs.directory import build_directory, symlink
from ipmirror.unixfs.layout import BalancedBuilder
from ipmirror.unixfs.nodes import BlockMaker, Entry, Sink
from ipmirror.unixfs.profile import Profile
from ipmirror.unixfs.trickle import TrickleBuilder

MAX_TRIES = 3
EntryKind = Literal["file", "directory", "symlink"]


@dataclass(frozen=True, slots=True)
class AddOptions:
    profile: Profile
    hidden: bool = False
    preserve_mode: bool = False
    preserve_mtime: bool = False
    wrap: bool = False


@dataclass(frozen=True, slots=True)
class Added:
    """One imported entry, reported as soon as it is complete."""

    path: str
    entry: Entry
    kind: EntryKind


class ImportError_(IpmirrorError, OSError):
    """A file could not be imported (unreadable, vanished, kept changing)."""


class _Abort(Exception):
    pass


def _metadata(st: os.stat_result, opts: AddOptions) -> tuple[int | None, pb.MTime | None]:
    mode = statmod.S_IMODE(st.st_mode) if opts.preserve_mode else None
    mtime = None
    if opts.preserve_mtime:
        ns = st.st_mtime_ns
        mtime = pb.MTime(ns // 1_000_000_000, ns % 1_000_000_000)
    return mode, mtime


class Importer:
    def __init__(self, options: AddOptions, sink: Sink | None = None, *,
                 on_added: Callable[[Added], None] | None = None,
                 on_warning: Callable[[str], None] | None = None,
                 workers: int | None = None, queue_bytes: int = 64 << 20) -> None:
        """``sink`` receives every block to store (None: hash only). It is only ever called from
        the thread that calls ``add_paths`` (write sessions are bound to their thread)."""
        self.options = options
        self.profile = options.profile
        self._sink = sink
        self._on_added = on_added
        self._on_warning = on_warning
        self._workers = workers or min(2, os.cpu_count() or 1)
        self._queue_bytes = queue_bytes
        self._q: queue.Queue[tuple[CID, bytes] | None] | None = None
        self._abort = threading.Event()
        self._events: list[Added] = []
        self._events_lock = threading.Lock()

    # -- sinks --------------------------------------------------------------------------------
    def _make_sink(self) -> Sink:
        if self._sink is None:
            return _discard
        q = self._q
        assert q is not None
        abort = self._abort

        def put(cid: CID, data: bytes) -> None:
            while True:
                if abort.is_set():
                    raise _Abort
                try:
                    q.put((cid, data), timeout=0.2)
                    return
                except queue.Full:
                    continue
        return put

    # -- public -------------------------------------------------------------------------------
    def add_paths(self, paths: Sequence[str | os.PathLike[str]]) -> list[Entry]:
        """Import each path; returns their roots (just the wrapping directory with ``wrap``)."""
        if not paths:
            raise InvalidInput("nothing to add")
        for p in paths:
            if not os.path.lexists(p):
                raise InvalidInput(f"{os.fspath(p)}: no such file or directory")
        if self._sink is None:
            return self._drive(paths)
        per_block = self.profile.chunker.size or (512 << 10)
        self._q = queue.Queue(maxsize=max(4, self._queue_bytes // max(per_block, 1)))
        result: list[list[Entry]] = []
        error: list[BaseException] = []

        def driver() -> None:
            try:
                result.append(self._drive(paths))
            except BaseException as e:  # handed to the calling thread
                error.append(e)
            finally:
                assert self._q is not None
                self._q.put(None)

        t = threading.Thread(target=driver, name="ipmirror-import", daemon=True)
        t.start()
        sink = self._sink
        assert sink is not None
        try:
            while True:
                item = self._q.get()
                if item is None:
                    break
                sink(*item)
        except BaseException:
            self._abort.set()
            while t.is_alive():  # unblock producers
                with contextlib.suppress(queue.Empty):
                    self._q.get(timeout=0.1)
            raise
        finally:
            t.join()
        if error:
            if isinstance(error[0], _Abort):
                raise ImportError_("import aborted")
            raise error[0]
        return result[0]

    # -- driver ----------------------------------------------------------------------------
    def _emit(self, path: str, entry: Entry, kind: EntryKind) -> None:
        if self._on_added is not None:
            self._on_added(Added(path, entry, kind))

    def _drive(self, paths: Sequence[str | os.PathLike[str]]) -> list[Entry]:
        maker = BlockMaker(self.profile, self._make_sink())
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
            raise ImportError_(f"{path}: {e.strerror}") from None
        if statmod.S_ISLNK(st.st_mode):
            return self._symlink(maker, path, rel, st)
        if statmod.S_ISDIR(st.st_mode):
            return self._dir(maker, pool, inflight, path, rel, st)
        if statmod.S_ISREG(st.st_mode):
            entry = self._file(maker, path, st)
            self._emit(rel, entry, "file")
            return entry
        raise InvalidInput(f"{path}: not a regular file, directory or symlink")

    def _symlink(self, maker: BlockMaker, path: str, rel: str, st: os.stat_result) -> Entry:
        try:
            target = os.readlink(os.fsencode(path))
        except OSError as e:
            raise ImportError_(f"{path}: {e.strerror}") from None
        mode, mtime = _metadata(st, self.options)
        entry = symlink(maker, target, mode, mtime)
        self._emit(rel, entry, "symlink")
        return entry

    def _dir(self, maker: BlockMaker, pool: ThreadPoolExecutor, inflight: threading.BoundedSemaphore,
             path: str, rel: str, st: os.stat_result) -> Entry:
        try:
            with os.scandir(os.fsencode(path)) as it:
                items = sorted(it, key=lambda d: d.name)
        except OSError as e:
            raise ImportError_(f"{path}: {e.strerror}") from None
        children: list[tuple[bytes, Entry]] = []
        files: list[tuple[bytes, str, Future[Entry]]] = []
        subdirs: list[tuple[bytes, str, str]] = []
        for d in items:
            if self._abort.is_set():
                raise _Abort
            name: bytes = d.name
            if not self.options.hidden and name.startswith(b"."):
                continue
            sub = os.fsdecode(d.path)
            subrel = rel + "/" + os.fsdecode(name)
            try:
                dst = d.stat(follow_symlinks=False)
            except FileNotFoundError:
                self._warn(f"{sub}: vanished during add, skipped")
                continue
            fmt = dst.st_mode
            if statmod.S_ISREG(fmt):
                inflight.acquire()
                fut = pool.submit(self._file, maker, sub, dst)
                fut.add_done_callback(lambda _f: inflight.release())
                files.append((name, subrel, fut))
            elif statmod.S_ISDIR(fmt):
                subdirs.append((name, sub, subrel))
            elif statmod.S_ISLNK(fmt):
                children.append((name, self._symlink(maker, sub, subrel, dst)))
            else:
                self._warn(f"{sub}: special file skipped")
        for name, sub, subrel in subdirs:
            children.append((name, self._any(maker, pool, inflight, sub, subrel)))
        for name, subrel, fut in files:
            entry = fut.result()
            self._emit(subrel, entry, "file")
            children.append((name, entry))
        mode, mtime = _metadata(st, self.options)
        entry = build_directory(maker, self.profile, children, mode, mtime)
        self._emit(rel, entry, "directory")
        return entry

    def _warn(self, msg: str) -> None:
        if self._on_warning is not None:
            self._on_warning(msg)

    # -- files ----------------------------------------------------------------------------------
    def _file(self, maker: BlockMaker, path: str, st: os.stat_result) -> Entry:
        mode, mtime = _metadata(st, self.options)
        for _ in range(MAX_TRIES):
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except FileNotFoundError:
                raise ImportError_(f"{path}: vanished during add") from None
            except OSError as e:
                raise ImportError_(f"{path}: {e.strerror}") from None
            try:
                before = os.fstat(fd)
                if hasattr(os, "posix_fadvise"):
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
                entry = self.import_fd(maker, fd, mode, mtime)
                after = os.fstat(fd)
            except OSError as e:
                raise ImportError_(f"{path}: {e.strerror}") from None
            finally:
                os.close(fd)
            if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns) \
                    and after.st_size == entry.size:
                return entry
            self._warn(f"{path}: changed while being read, reading it again")
        raise ImportError_(f"{path}: kept changing while being read ({MAX_TRIES} tries)")

    def import_fd(self, maker: BlockMaker, fd: int, mode: int | None = None,
                  mtime: pb.MTime | None = None) -> Entry:
        """Import the rest of an open file."""
        return import_chunks(maker, self.profile, chunks(fd, self.profile.chunker), mode, mtime,
                             self._abort)


def import_chunks(maker: BlockMaker, profile: Profile, source: Iterable[bytes], mode: int | None,
                  mtime: pb.MTime | None, abort: threading.Event | None = None) -> Entry:
    """Lay out a file from an iterable of chunks (``mode``/``mtime`` None when not recorded)."""

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

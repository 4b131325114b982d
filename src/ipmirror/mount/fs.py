"""The FUSE side of the mount: mfusepy (ctypes over libfuse 3) operations over a :class:`Tree`.

Usage::

    run(tree, "/mnt/ipfs", allow_other=False, on_ready=lambda: ...)   # blocks until unmounted

Importing this module needs ``mfusepy`` and libfuse 3 (``pip install 'ipmirror[mount]'`` and the
system's ``fuse3``); cli/mount.py checks for them first and says so in one line.

Rules kept here:

1. Read-only: the mount is made ``ro`` (the kernel answers EROFS to writes before they reach
   us) and every writing operation answers EROFS too.
2. Errors become errno values at this boundary, and only here: a path that does not exist is
   ENOENT; a missing or damaged block is EIO plus one log line naming the block (never a hang,
   never wrong bytes: blocks are verified by the tree).
3. ``open`` makes one :class:`FileReader` per open file (its handle) and asks the kernel to keep
   the file's pages (``keep_cache``): every file is immutable ``/ipfs/`` content (names are
   symlinks, see tree.py), so cached pages and attributes never go stale.
4. ``readdir`` streams: each open directory keeps the entries it has produced so far and
   resumes at the kernel's offset, so the first entries of a 100k-entry HAMT directory come
   before its last shard is read. Entries the listing describes whole (raw-leaf files) go to
   libfuse with their attributes (``FUSE_FILL_DIR_PLUS``), so a READDIRPLUS answers ``ls -l``
   and ``find`` without a LOOKUP round trip per entry; ``getattr`` gives the same attributes.
5. libfuse runs the requests on several threads (its multi-threaded loop); the tree and the
   readers are thread-safe.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import itertools
import logging
import os
import stat as S
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import mfusepy

from ipmirror.errors import Corrupt, DecodeError, IpmirrorError, NotFound, PathNotFound
from ipmirror.mount.reader import FileReader
from ipmirror.mount.tree import Entry, Tree

log = logging.getLogger("ipmirror.mount")
P = ParamSpec("P")
R = TypeVar("R")

CACHE_TIMEOUT = 300.0  # entry and attribute timeouts: content is immutable (rule 3)
NEGATIVE_TIMEOUT = 1.0  # a CID or name that is not there yet may appear (an add, a new mirror)
_FILL_DIR_PLUS = 2  # libfuse's FUSE_FILL_DIR_PLUS: the filler's stat is complete
_READDIR_PLUS = 1  # libfuse's FUSE_READDIR_PLUS: the kernel asked for attributes
_CAP_CACHE_SYMLINKS = 1 << 23  # must stay off: /ipns/ symlinks are read on every walk
BLOCK = 4096


def _errno(fn: Callable[P, R]) -> Callable[P, R]:
    """Map the project's errors to errno (rule 2)."""

    @functools.wraps(fn)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except mfusepy.FuseOSError:
            raise
        except PathNotFound:
            raise mfusepy.FuseOSError(errno.ENOENT) from None
        except (NotFound, Corrupt, DecodeError) as e:
            path = args[1] if len(args) > 1 else "?"
            log.error("EIO: %s %s: %s", fn.__name__, path, e)
            raise mfusepy.FuseOSError(errno.EIO) from None
        except (IpmirrorError, OSError) as e:
            log.error("EIO: %s: %s", fn.__name__, e)
            raise mfusepy.FuseOSError(errno.EIO) from None

    return wrapped


def _erofs(*_args: object, **_kwargs: object) -> int:
    raise mfusepy.FuseOSError(errno.EROFS)


class _DirHandle:
    """An open directory: the entries produced so far, and the rest still to stream (rule 4)."""

    def __init__(self, entries: Iterator[tuple[str, int, int, Entry | None]]) -> None:
        self.seen: list[tuple[str, int, int, Entry | None]] = [(".", 0, S.S_IFDIR, None),
                                                                ("..", 0, S.S_IFDIR, None)]
        self.rest = entries
        self.lock = threading.Lock()

    def at(self, i: int) -> tuple[str, int, int, Entry | None] | None:
        with self.lock:
            while len(self.seen) <= i:
                nxt = next(self.rest, None)
                if nxt is None:
                    return None
                self.seen.append(nxt)
            return self.seen[i]


class MountOps(mfusepy.Operations):  # type: ignore[misc]
    """libfuse's high-level operations over a :class:`Tree` (see the module rules)."""

    use_ns = True

    def __init__(self, tree: Tree, on_ready: Callable[[], None] | None = None) -> None:
        self.tree = tree
        self.on_ready = on_ready
        self._files: dict[int, FileReader] = {}
        self._dirs: dict[int, _DirHandle] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.uid, self.gid = os.getuid(), os.getgid()
        self.started_ns = time.time_ns()
        self.ready = False  # init ran: the file system was mounted

    # -- set-up ----------------------------------------------------------------------------------
    def init_with_config(self, conn: Any, config: Any) -> None:
        if config is not None:
            config.use_ino = 1
            config.entry_timeout = config.attr_timeout = CACHE_TIMEOUT
            config.negative_timeout = NEGATIVE_TIMEOUT
            config.kernel_cache = 0  # keep_cache per open (rule 3)
            config.auto_cache = 0
        if conn is not None:
            conn.want &= ~_CAP_CACHE_SYMLINKS
        self.ready = True
        if self.on_ready is not None:
            self.on_ready()

    # -- metadata --------------------------------------------------------------------------------
    @_errno
    def getattr(self, path: str, fh: Any = None) -> dict[str, int]:
        return self._attrs(self.tree.entry(path))

    def _attrs(self, e: Entry) -> dict[str, int]:
        mtime = e.mtime_ns if e.cid is not None else self.started_ns
        return {"st_mode": e.st_mode, "st_ino": e.ino, "st_nlink": 1, "st_size": e.size,
                "st_uid": self.uid, "st_gid": self.gid, "st_blocks": (e.size + 511) // 512,
                "st_blksize": 1 << 20, "st_mtime": mtime, "st_ctime": mtime, "st_atime": mtime}

    @_errno
    def readlink(self, path: str) -> str:
        return self.tree.readlink(path)

    @_errno
    def statfs(self, path: str) -> dict[str, int]:
        blocks, nbytes = self.tree.usage()
        return {"f_bsize": BLOCK, "f_frsize": BLOCK, "f_blocks": (nbytes + BLOCK - 1) // BLOCK,
                "f_bfree": 0, "f_bavail": 0, "f_files": blocks, "f_ffree": 0, "f_favail": 0,
                "f_namemax": 255}

    # -- files -----------------------------------------------------------------------------------
    @_errno
    def open(self, path: str, fi: Any) -> int:
        if fi.flags & os.O_ACCMODE != os.O_RDONLY or fi.flags & os.O_TRUNC:
            raise mfusepy.FuseOSError(errno.EROFS)
        reader = self.tree.open(path)
        with self._lock:
            fh = next(self._ids)
            self._files[fh] = reader
        fi.fh = fh
        fi.keep_cache = 1
        return 0

    @_errno
    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        reader = self._files.get(fi.fh)
        if reader is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        return reader.read(offset, size)

    def release(self, path: str, fi: Any) -> int:
        with self._lock:
            self._files.pop(fi.fh, None)
        return 0

    # -- directories -----------------------------------------------------------------------------
    @_errno
    def opendir(self, path: str) -> int:
        e = self.tree.entry(path)
        if e.kind != "dir":
            raise mfusepy.FuseOSError(errno.ENOTDIR)
        handle = _DirHandle(self.tree.listdir(path))
        with self._lock:
            fh = next(self._ids)
            self._dirs[fh] = handle
        return fh

    @_errno
    def readdir_with_offset(self, path: str, offset: int,
                            fh: int) -> Iterator[tuple[str, dict[str, int], int]]:
        handle = self._dirs.get(fh)
        if handle is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        return self._stream(handle, offset)

    def _stream(self, handle: _DirHandle, offset: int) -> Iterator[tuple[str, dict[str, int], int]]:
        i = offset
        while True:
            try:
                item = handle.at(i)
            except PathNotFound:
                raise mfusepy.FuseOSError(errno.ENOENT) from None
            except (IpmirrorError, OSError) as e:
                log.error("EIO: readdir: %s", e)
                raise mfusepy.FuseOSError(errno.EIO) from None
            if item is None:
                return
            name, ino, kind, entry = item
            i += 1
            yield name, (self._attrs(entry) if entry is not None else {"st_ino": ino, "st_mode": kind}), i

    def releasedir(self, path: str, fh: int) -> int:
        with self._lock:
            self._dirs.pop(fh, None)
        return 0

    # -- read-only (rule 1) ----------------------------------------------------------------------
    write = create = mkdir = mknod = unlink = rmdir = symlink = rename = link = _erofs
    chmod = chown = truncate = utimens = setxattr = removexattr = fallocate = _erofs


class _Fuse(mfusepy.FUSE):  # type: ignore[misc]
    """mfusepy's FUSE with a ``readdir`` that passes whole attributes when it has them (rule 4):
    mfusepy's own passes only each entry's type and inode, never ``FUSE_FILL_DIR_PLUS``."""

    def readdir_fuse_3(self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any,
                       flags: int) -> int:
        st = mfusepy.c_stat()
        plus = bool(flags & _READDIR_PLUS)
        items = self.operations.readdir_with_offset(None, offset, fip.contents.fh)
        for name, attrs, off in items:
            ctypes.memset(ctypes.byref(st), 0, ctypes.sizeof(st))
            whole = plus and "st_size" in attrs
            if whole:
                mfusepy.set_st_attrs(st, attrs, use_ns=True)
            else:
                st.st_mode, st.st_ino = attrs["st_mode"], attrs["st_ino"]
            if filler(buf, name.encode(self.encoding, self.errors), st, off,
                      _FILL_DIR_PLUS if whole else 0) != 0:
                break
        return 0


def run(tree: Tree, mountpoint: str, *, allow_other: bool = False,
        on_ready: Callable[[], None] | None = None, debug: bool = False) -> None:
    """Mount and serve until unmounted (``ipmirror unmount``, fusermount3 -u) or SIGINT/SIGTERM
    (libfuse's handlers end the loop and unmount)."""
    logging.getLogger("fuse").setLevel(logging.DEBUG if debug else logging.ERROR)
    opts: dict[str, Any] = {"fsname": "ipmirror", "subtype": "ipmirror", "ro": True,
                            "default_permissions": True, "use_ino": True,
                            "max_threads": 16, "max_idle_threads": 8}
    if allow_other:
        opts["allow_other"] = True
    ops = MountOps(tree, on_ready)
    try:
        _Fuse(ops, mountpoint, raw_fi=True, foreground=True, nothreads=False, debug=debug, **opts)
    except RuntimeError as e:
        # fuse_main says 8 when its loop ended with an error, and a stop signal counts as one:
        # after a mount, that is the normal end (libfuse has unmounted by then).
        if not (ops.ready and e.args == (8,)):
            raise

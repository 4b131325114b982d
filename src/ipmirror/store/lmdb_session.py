"""Write sessions of the LMDB block store, and their staging (``store/lmdb_store.py`` has the
layout and the store).

Usage (through the store)::

    with store.session(batch_bytes=64 << 20, on_commit=flush) as s:
        s.put(cid, data); s.put_ref(raw_cid, path, 0, n); s.pin(root)

Rules:
1. One write transaction per batch (``batch_bytes``) and one at session end; LMDB commits are
   atomic and synced, so a SIGKILL loses at most the batch in flight and never leaves a
   half-written block or a pin without its DAG. A failed session still commits what it put (a
   later add does not redo it) but records no pin.
2. Everything put, referenced or found is staged (``stage_mh`` and ``stage_sid``) until the
   session ends; GC spares staged blocks.
3. Liveness of a session is an exclusive ``flock`` on ``sessions/<id>.lock``, taken before the
   file appears under that name (created as ``<id>.new``, locked, renamed), so GC never takes a
   starting session for a dead one and removes its lock file. GC treats blocks staged by live
   sessions as roots and clears the staging of dead (crashed) ones (``session_alive``,
   ``clear_staging``).
4. A write transaction belongs to the thread that opened the session: the importer hashes in
   worker threads and puts from one thread.
5. An LMDB error (a damaged database file: ``MDB_CORRUPTED``, ``MDB_PAGE_NOTFOUND``…) leaves the
   store as a one-line ``StoreError`` naming the problem and the way out (``repo recover``), never
   as an internal error (``guarded``, on every store and session method that touches LMDB).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import lmdb

from ipmirror.codec.cid import CID
from ipmirror.errors import StoreError
from ipmirror.store.base import USER, PinKind, pin_merge
from ipmirror.store.filestore import pack_ref

if TYPE_CHECKING:
    from ipmirror.store.lmdb_store import LmdbStore

U64 = 8
SID = 16  # bytes of a session id
_CLEAR_PAGE = 50_000


F = TypeVar("F", bound=Callable[..., Any])
_DAMAGE = (lmdb.CorruptedError, lmdb.PageNotFoundError, lmdb.InvalidError, lmdb.BadRslotError,
           lmdb.BadTxnError, lmdb.BadValsizeError, lmdb.VersionMismatchError)


def db_error(path: Path, e: lmdb.Error) -> StoreError:
    """The one-line error for an LMDB failure (rule 5)."""
    text = str(e).replace("\n", " ")
    if isinstance(e, _DAMAGE):
        return StoreError(f"the block database in {path} is damaged ({text}); copy what can be read "
                          "into a new repository with 'ipmirror repo recover --to NEWPATH'")
    return StoreError(f"block database error in {path}: {text}")


def guarded(fn: F) -> F:
    """Turn LMDB errors of a store or session method into ``db_error`` (rule 5)."""
    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except lmdb.MapResizedError:
            raise
        except lmdb.Error as e:
            raise db_error(self.store_path, e) from None
    return cast(F, wrapper)


def u64(b: bytes | None) -> int:
    return int.from_bytes(b, "big") if b else 0


def bump_epoch(txn: Any, db: Any) -> None:
    """Count a pin change (GC's sweep refuses to run on a stale snapshot of the pins)."""
    txn.put(b"epoch", (u64(txn.get(b"epoch", db=db)) + 1).to_bytes(U64, "big"), db=db)


class LmdbSession:
    def __init__(self, store: LmdbStore, batch_bytes: int,
                 on_commit: Callable[[], None] | None = None) -> None:
        self._store = store
        self._batch = batch_bytes
        self._on_commit = on_commit
        self.sid = secrets.token_bytes(SID)
        self._lockfile = store.sessions_dir / f"{self.sid.hex()}.lock"
        # locked before it appears under its name: GC never sees an unlocked (dead-looking) one
        fresh = self._lockfile.with_suffix(".new")
        fd = os.open(fresh, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(fresh, self._lockfile)
        self._lockfd = fd
        self._pins: list[tuple[CID, PinKind, str]] = []
        self._txn: Any = None
        self._in_txn = 0
        self._delta = 0
        self._written = 0
        self.puts = 0  # blocks handed to put, new or already present
        self._staged_any = False
        self._thread = threading.get_ident()

    @property
    def store_path(self) -> Path:
        return self._store.path

    # -- transactions ---------------------------------------------------------------------------
    def _begin(self) -> Any:
        if threading.get_ident() != self._thread:
            raise RuntimeError("a write session is bound to the thread that opened it")
        if self._txn is None:
            self._store._ensure_room(self._batch)
            self._txn = self._store.env.begin(write=True)
            self._in_txn = 0
            self._delta = 0
        return self._txn

    def _commit(self) -> None:
        txn = self._txn
        if txn is None:
            return
        if self._delta:
            db = self._store.db_meta
            txn.put(b"bytes", (u64(txn.get(b"bytes", db=db)) + self._delta).to_bytes(U64, "big"), db=db)
        txn.commit()
        self._txn = None
        if self._on_commit is not None:
            self._on_commit()

    def _stage(self, mh: bytes) -> Any:
        """Open (or continue) the batch's transaction and stage ``mh`` under this session."""
        st = self._store
        txn = self._begin()
        txn.put(mh + self.sid, b"", db=st.db_stage_mh)
        txn.put(self.sid + mh, b"", db=st.db_stage_sid)
        self._staged_any = True
        return txn

    @guarded
    def put(self, cid: CID, data: bytes | memoryview) -> bool:
        if cid.is_identity:
            return False
        mh = cid.multihash
        txn = self._stage(mh)
        self.puts += 1
        new = bool(txn.put(mh, data, db=self._store.db_blocks, overwrite=False))
        if new:
            n = len(data)
            self._in_txn += n
            self._delta += n
            self._written += n
            if self._in_txn >= self._batch:
                self._commit()
        return new

    @guarded
    def put_ref(self, cid: CID, path: bytes, offset: int, length: int) -> bool:
        """Record a no-copy reference for a raw block (unless its bytes are stored already)."""
        mh = cid.multihash
        txn = self._stage(mh)
        if txn.get(mh, db=self._store.db_blocks) is not None:
            return False
        txn.put(mh, pack_ref(path, offset, length), db=self._store.db_refs)
        return True

    @guarded
    def has(self, cid: CID) -> bool:
        if cid.is_identity:
            return True
        st, mh = self._store, cid.multihash
        txn = self._begin()
        if txn.get(mh, db=st.db_blocks) is None and txn.get(mh, db=st.db_refs) is None:
            return False
        self._stage(mh)  # found: now protected from GC until the session ends
        return True

    def pin(self, cid: CID, kind: PinKind = "recursive", owner: str = USER) -> None:
        self._pins.append((cid, kind, owner))

    @guarded
    def checkpoint(self) -> None:
        self._commit()

    @property
    def bytes_written(self) -> int:
        return self._written

    @guarded
    def end(self, ok: bool) -> None:
        st = self._store
        try:
            if not ok:
                if self._txn is not None:
                    # keep what was hashed and put: committed batches are not redone later
                    self._commit()
            else:
                txn = self._begin()
                for cid, kind, owner in self._pins:
                    txn.put(cid.buffer, pin_merge(txn.get(cid.buffer, db=st.db_pins), owner, kind),
                            db=st.db_pins)
                if self._pins:
                    bump_epoch(txn, st.db_meta)
                self._commit()
            if self._staged_any:
                clear_staging(st, self.sid)
        finally:
            if self._txn is not None:
                self._txn.abort()
                self._txn = None
            with contextlib.suppress(OSError):
                os.unlink(self._lockfile)
            os.close(self._lockfd)

    def __enter__(self) -> LmdbSession:
        return self

    def __exit__(self, et: object, ev: object, tb: object) -> None:
        self.end(et is None)


# -- staging and liveness (GC's side of rule 3) ------------------------------------------------------

def session_alive(sessions_dir: Path, sid: bytes) -> bool:
    """True while the session's writer holds its lock file."""
    lf = sessions_dir / f"{sid.hex()}.lock"
    try:
        fd = os.open(lf, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def staged_sids(txn: Any, db_stage_sid: Any) -> list[bytes]:
    """The ids of the sessions that have anything staged."""
    sids = []
    with txn.cursor(db=db_stage_sid) as cur:
        ok = cur.first()
        while ok:
            sid = bytes(cur.key())[:SID]
            sids.append(sid)
            ok = cur.set_range(sid + b"\xff" * 64)
    return sids


def clear_staging(store: LmdbStore, sid: bytes) -> None:
    """Drop a session's staging entries (in pages, so the write lock is held briefly)."""
    while True:
        store._ensure_room(1 << 20)
        with store.env.begin(write=True) as txn, txn.cursor(db=store.db_stage_sid) as cur:
            n = 0
            ok = cur.set_range(sid)
            while ok and n < _CLEAR_PAGE:
                k = bytes(cur.key())
                if not k.startswith(sid):
                    break
                txn.delete(k[SID:] + sid, db=store.db_stage_mh)
                ok = cur.delete()
                n += 1
            if n < _CLEAR_PAGE:
                return

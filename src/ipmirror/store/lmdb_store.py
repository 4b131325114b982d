"""The embedded, durable block store: one LMDB environment in ``$IPMIRROR_PATH/blocks``.

Usage::

    store = LmdbStore.open(path)
    with store.session() as s:
        s.put(cid, data); s.pin(root)

Layout (named LMDB databases):

- ``blocks``     multihash -> block bytes
- ``pins``       CID bytes -> owners and kinds: ``user=recursive;mirrors=recursive`` (store.base)
- ``stage_mh``   multihash + session id (16 B) -> b""   (what live sessions wrote or reused)
- ``stage_sid``  session id + multihash -> b""          (the same, by session, to clear it)
- ``meta``       b"epoch" (bumped on every pin change), b"bytes" (sum of block sizes)
- ``refs``       multihash -> no-copy reference (offset, length, path) of a raw block whose
                 bytes stay in the mirrored file (see store/filestore.py)

Rules (the session's in store/lmdb_session.py):
1. The environment is opened with ``writemap``: dirty pages live in the shared file mapping rather
   than in anonymous memory, which keeps RSS flat and measured ~1.7x faster for 1 MiB values (see
   docs/design.md). Because a write fault on a full disk would be a SIGBUS with writemap, every
   batch first checks that the file system has room for it.
2. The map grows as needed (doubling) across processes: the writer grows it before a batch when
   headroom is short; readers adopt a size grown by another process (``MapResizedError``).
3. Reads page through short read transactions (none stays open for long, so writers never wait
   on a reader and freed pages are reused).
4. LMDB errors (a damaged database file) leave as one-line ``StoreError``s that name the way out,
   ``repo recover`` (``guarded``, lmdb_session.py rule 5; ``store/salvage.py`` does the copying).

Capabilities (store/base.py): Store, NoCopyStore, Compactable.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import lmdb

from ipmirror.codec.cid import CID
from ipmirror.errors import BlockNotFound, StoreError
from ipmirror.store.base import (
    USER,
    Compactable,
    NoCopySession,
    NoCopyStore,
    PinKind,
    Store,
    StoreStat,
    pin_drop,
    pin_kind_of,
    pin_merge,
    pin_owners,
)
from ipmirror.store.filestore import read_ref, unpack_ref
from ipmirror.store.lmdb_session import (
    SID,
    U64,
    LmdbSession,
    bump_epoch,
    clear_staging,
    guarded,
    session_alive,
    staged_sids,
    u64,
)

T = TypeVar("T")

INITIAL_MAP = 1 << 34  # 16 GiB of address space; the file is sparse and grows with the data
DEFAULT_BATCH = 256 << 20
DISK_MARGIN = 64 << 20


def _open_env(p: Path, readonly: bool = False) -> Any:
    data = p / "data.mdb"
    cur = data.stat().st_size if data.exists() else 0
    return lmdb.open(str(p), map_size=max(INITIAL_MAP, cur), max_dbs=8, writemap=True,
                     max_readers=1024, readahead=False, subdir=True, create=not readonly,
                     readonly=readonly, metasync=True, sync=True)


def _open_use_lock(p: Path, readonly: bool) -> int:
    """The use lock's file; read-only when this user may not write it (a reader of a repository
    another user writes: README, "Serving a repository another user writes")."""
    try:
        return os.open(p / "use.lock", os.O_CREAT | os.O_RDWR, 0o600)
    except PermissionError:
        if not readonly:
            raise
        return os.open(p / "use.lock", os.O_RDONLY)


class LmdbStore:
    """The LMDB backend of ``store.base.Store``; also a NoCopyStore and Compactable."""

    def __init__(self, path: Path, env: Any, use_fd: int) -> None:
        self.path = path
        self.env = env
        self._use_fd = use_fd  # shared flock on use.lock while open; compaction needs it exclusive
        self.sessions_dir = path / "sessions"
        self._open_dbs()
        self._resize_lock = threading.Lock()

    def _open_dbs(self) -> None:
        env = self.env
        self.db_blocks = env.open_db(b"blocks")
        self.db_pins = env.open_db(b"pins")
        self.db_stage_mh = env.open_db(b"stage_mh")
        self.db_stage_sid = env.open_db(b"stage_sid")
        self.db_meta = env.open_db(b"meta")
        self.db_refs = env.open_db(b"refs")

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, readonly: bool = False) -> LmdbStore:
        p = Path(path)
        try:
            (p / "sessions").mkdir(parents=True, exist_ok=True)
            use_fd = _open_use_lock(p, readonly)
            fcntl.flock(use_fd, fcntl.LOCK_SH)
            env = _open_env(p, readonly)
        except lmdb.Error as e:
            raise StoreError(f"cannot open block store at {p}: {e}") from None
        except OSError as e:
            raise StoreError(f"cannot open block store at {p}: {e.strerror}") from None
        return cls(p, env, use_fd)

    @property
    def store_path(self) -> Path:
        return self.path

    # -- map size -----------------------------------------------------------------------------
    @guarded
    def _read(self, fn: Callable[[Any], T]) -> T:
        for _ in range(3):
            try:
                with self.env.begin(buffers=False) as txn:
                    return fn(txn)
            except lmdb.MapResizedError:
                with self._resize_lock:
                    self.env.set_mapsize(0)
        with self.env.begin() as txn:
            return fn(txn)

    def _ensure_room(self, batch: int) -> None:
        try:
            st = os.statvfs(self.path)
        except OSError:
            st = None
        need = 2 * batch + DISK_MARGIN
        if st is not None and st.f_bavail * st.f_frsize < min(need, batch + DISK_MARGIN):
            raise StoreError(f"not enough free disk space in {self.path} for another batch "
                             f"({(batch + DISK_MARGIN) >> 20} MiB needed)")
        info = self.env.info()
        used = (info["last_pgno"] + 1) * self.env.stat()["psize"]
        size = info["map_size"]
        if used + need > size:
            new = size
            while used + need > new:
                new *= 2
            with self._resize_lock:
                try:
                    self.env.set_mapsize(new)
                except lmdb.Error as e:
                    raise StoreError(f"cannot grow the block store map to {new} bytes: {e}") from None

    # -- blocks -------------------------------------------------------------------------------
    def has(self, cid: CID) -> bool:
        """Present, copied or referenced (a reference is not re-checked here)."""
        if cid.is_identity:
            return True
        mh = cid.multihash
        return self._read(lambda t: t.get(mh, db=self.db_blocks) is not None
                          or t.get(mh, db=self.db_refs) is not None)

    def get(self, cid: CID) -> bytes:
        if cid.is_identity:
            return cid.identity_data()
        mh = cid.multihash
        def fn(t: Any) -> tuple[bytes | None, bytes | None]:
            d = t.get(mh, db=self.db_blocks)
            return (d, None) if d is not None else (None, t.get(mh, db=self.db_refs))

        data, ref = self._read(fn)
        if data is not None:
            return bytes(data)
        if ref is not None:
            return read_ref(cid, bytes(ref))
        raise BlockNotFound(cid)

    def get_stored(self, cid: CID) -> bytes | None:
        """The block if its bytes are in the store itself (a copy out of LMDB's map: no file I/O
        beyond page faults); None for a no-copy reference or a missing block."""
        if cid.is_identity:
            return cid.identity_data()
        mh = cid.multihash
        data = self._read(lambda t: t.get(mh, db=self.db_blocks))
        return None if data is None else bytes(data)

    def is_ref(self, cid: CID) -> bool:
        """True if the block is a no-copy reference (not copied into the store)."""
        mh = cid.multihash
        return self._read(lambda t: t.get(mh, db=self.db_blocks) is None
                          and t.get(mh, db=self.db_refs) is not None)

    def iter_refs(self) -> Iterator[tuple[bytes, bytes]]:
        """``(multihash, packed reference)`` of every no-copy block."""
        last: bytes | None = None
        while True:
            def page(t: Any, after: bytes | None = last) -> list[tuple[bytes, bytes]]:
                out: list[tuple[bytes, bytes]] = []
                with t.cursor(db=self.db_refs) as cur:
                    ok = cur.set_range(after) if after is not None else cur.first()
                    while ok and len(out) < 4096:
                        k = bytes(cur.key())
                        if k != after:
                            out.append((k, bytes(cur.value())))
                        ok = cur.next()
                return out
            items = self._read(page)
            if not items:
                return
            yield from items
            last = items[-1][0]

    def size(self, cid: CID) -> int:
        if cid.is_identity:
            return len(cid.identity_data())

        def fn(t: Any) -> int | None:
            with t.cursor(db=self.db_blocks) as cur:
                if cur.set_key(cid.multihash):
                    return len(cur.value())
            ref = t.get(cid.multihash, db=self.db_refs)
            return unpack_ref(bytes(ref))[2] if ref is not None else None
        n = self._read(fn)
        if n is None:
            raise BlockNotFound(cid)
        return n

    def session(self, *, batch_bytes: int | None = None,
                on_commit: Callable[[], None] | None = None) -> LmdbSession:
        """A write session; ``on_commit`` runs (on the session's thread) after every commit."""
        return LmdbSession(self, batch_bytes or DEFAULT_BATCH, on_commit)

    def put(self, cid: CID, data: bytes) -> bool:
        with self.session() as s:
            return s.put(cid, data)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> int:
        with self.session() as s:
            return sum(s.put(c, d) for c, d in blocks)

    @guarded
    def delete(self, cid: CID) -> bool:
        self._ensure_room(1 << 20)
        with self.env.begin(write=True) as txn:
            old = txn.pop(cid.multihash, db=self.db_blocks)
            if old is not None:
                b = u64(txn.get(b"bytes", db=self.db_meta))
                txn.put(b"bytes", max(0, b - len(old)).to_bytes(U64, "big"), db=self.db_meta)
            return old is not None

    def _pages(self, values: bool) -> Iterator[list[tuple[bytes, bytes | None]]]:
        """Blocks in key order, a page per short read transaction (none stays open for long)."""
        last: bytes | None = None
        while True:
            def page(t: Any, after: bytes | None = last) -> list[tuple[bytes, bytes | None]]:
                out: list[tuple[bytes, bytes | None]] = []
                with t.cursor(db=self.db_blocks) as cur:
                    ok = cur.set_range(after) if after is not None else cur.first()
                    while ok and len(out) < (256 if values else 4096):
                        k = bytes(cur.key())
                        if k != after:
                            out.append((k, bytes(cur.value()) if values else None))
                        ok = cur.next()
                return out
            items = self._read(page)
            if not items:
                return
            yield items
            last = items[-1][0]

    def iter_keys(self) -> Iterator[bytes]:
        """Multihashes of every block, copied ones first, then no-copy references."""
        for items in self._pages(False):
            for k, _ in items:
                yield k
        for k, _ in self.iter_refs():
            yield k

    def iter_blocks(self) -> Iterator[tuple[bytes, bytes]]:
        for items in self._pages(True):
            for k, v in items:
                assert v is not None
                yield k, v

    # -- pins ---------------------------------------------------------------------------------
    @guarded
    def pin_add(self, cid: CID, kind: PinKind = "recursive", owner: str = USER) -> None:
        self._ensure_room(1 << 20)
        with self.env.begin(write=True) as txn:
            txn.put(cid.buffer, pin_merge(txn.get(cid.buffer, db=self.db_pins), owner, kind), db=self.db_pins)
            bump_epoch(txn, self.db_meta)

    @guarded
    def pin_rm(self, cid: CID, owner: str = USER) -> bool:
        self._ensure_room(1 << 20)
        with self.env.begin(write=True) as txn:
            value = txn.get(cid.buffer, db=self.db_pins)
            if value is None:
                return False
            held, left = pin_drop(bytes(value), owner)
            if left is None:
                txn.delete(cid.buffer, db=self.db_pins)
            elif held:
                txn.put(cid.buffer, left, db=self.db_pins)
            bump_epoch(txn, self.db_meta)
            return held

    def pins(self) -> list[tuple[CID, PinKind]]:
        def fn(t: Any) -> list[tuple[CID, PinKind]]:
            with t.cursor(db=self.db_pins) as cur:
                return [(CID.from_bytes(bytes(k)), pin_kind_of(pin_owners(bytes(v)))) for k, v in cur]
        return self._read(fn)

    def pin_kind(self, cid: CID) -> PinKind | None:
        v = self._read(lambda t: t.get(cid.buffer, db=self.db_pins))
        return pin_kind_of(pin_owners(bytes(v))) if v is not None else None

    def pin_holders(self, cid: CID) -> list[str]:
        """Who holds a pin on ``cid`` (``user``, ``mirrors``; ``""`` for a pin made before owners)."""
        v = self._read(lambda t: t.get(cid.buffer, db=self.db_pins))
        return sorted(pin_owners(bytes(v))) if v is not None else []

    # -- gc support ---------------------------------------------------------------------------
    def gc_snapshot(self) -> tuple[int, list[tuple[CID, PinKind]]]:
        def fn(t: Any) -> tuple[int, list[tuple[CID, PinKind]]]:
            epoch = u64(t.get(b"epoch", db=self.db_meta))
            with t.cursor(db=self.db_pins) as cur:
                pins = [(CID.from_bytes(bytes(k)), pin_kind_of(pin_owners(bytes(v)))) for k, v in cur]
            return epoch, pins
        return self._read(fn)

    @guarded
    def clear_dead_sessions(self) -> int:
        sids = self._read(lambda t: staged_sids(t, self.db_stage_sid))
        dead = [s for s in sids if not session_alive(self.sessions_dir, s)]
        for s in dead:
            clear_staging(self, s)
        live = set(sids).difference(dead)
        for lf in self.sessions_dir.glob("*.lock"):  # and the lock files dead sessions left
            with contextlib.suppress(ValueError):
                sid = bytes.fromhex(lf.stem)
                if sid not in live and not session_alive(self.sessions_dir, sid):
                    with contextlib.suppress(OSError):
                        lf.unlink()
        return len(dead)

    @guarded
    def gc_sweep(self, epoch: int, candidates: list[bytes]) -> int | None:
        self._ensure_room(1 << 20)
        with self.env.begin(write=True) as txn:
            if u64(txn.get(b"epoch", db=self.db_meta)) != epoch:
                return None
            n = 0
            freed = 0
            with txn.cursor(db=self.db_stage_mh) as stage:
                for mh in candidates:
                    if stage.set_range(mh):
                        k = bytes(stage.key())
                        if k.startswith(mh) and len(k) == len(mh) + SID:
                            continue
                    old = txn.pop(mh, db=self.db_blocks)
                    if old is not None:
                        n += 1
                        freed += len(old)
                    elif txn.delete(mh, db=self.db_refs):
                        n += 1
            if freed:
                b = u64(txn.get(b"bytes", db=self.db_meta))
                txn.put(b"bytes", max(0, b - freed).to_bytes(U64, "big"), db=self.db_meta)
            return n

    # -- info ---------------------------------------------------------------------------------
    def stat(self) -> StoreStat:
        def fn(t: Any) -> tuple[int, int, int]:
            return (t.stat(self.db_blocks)["entries"], u64(t.get(b"bytes", db=self.db_meta)),
                    t.stat(self.db_pins)["entries"])
        blocks, nbytes, pins = self._read(fn)
        try:
            disk = os.stat(self.path / "data.mdb").st_blocks * 512
        except OSError:
            disk = 0
        return StoreStat(blocks, nbytes, pins, disk, str(self.path))

    @guarded
    def recount(self) -> int:
        """Set the stored byte count from the blocks themselves (after ``store/salvage.py``
        copied them in); the count."""
        total = sum(len(v) for _k, v in self.iter_blocks())
        with self.env.begin(write=True) as txn:
            txn.put(b"bytes", total.to_bytes(U64, "big"), db=self.db_meta)
            bump_epoch(txn, self.db_meta)
        return total

    def compact(self) -> int | None:
        """Rewrite the data file without free pages and give the space back to the file system.
        Needs the store to itself: returns None (doing nothing) while another process has it
        open; else the bytes of disk space given back."""
        try:
            fcntl.flock(self._use_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(self._use_fd, fcntl.LOCK_SH)  # the conversion may have dropped it
            return None
        try:
            data = self.path / "data.mdb"
            before = data.stat().st_blocks * 512
            tmp = self.path / "compact.tmp"
            tmp.mkdir(exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                (tmp / "data.mdb").unlink()
            self.env.copy(str(tmp), compact=True)
            self.env.close()
            os.replace(tmp / "data.mdb", data)
            tmp.rmdir()
            self.env = _open_env(self.path)
            self._open_dbs()
            return max(0, before - data.stat().st_blocks * 512)
        finally:
            fcntl.flock(self._use_fd, fcntl.LOCK_SH)

    def close(self) -> None:
        self.env.close()
        with contextlib.suppress(OSError):
            os.close(self._use_fd)


if TYPE_CHECKING:  # mypy checks the backend against the contract and capabilities it claims
    _store: type[Store] = LmdbStore
    _nocopy: type[NoCopyStore] = LmdbStore
    _compact: type[Compactable] = LmdbStore
    _session: type[NoCopySession] = LmdbSession

"""Mirror state on disk: mirror definitions, versions and the per-file index (one LMDB env).

Usage::

    db = MirrorDB.open(repo / "mirrors")
    db.put_mirror(m); db.mirrors(); db.put_version(m.id, v); db.versions(m.id)

Layout (named databases in ``$IPMIRROR_PATH/mirrors/``):

- ``mirrors``   name -> JSON mirror definition (:class:`Mirror`)
- ``versions``  mirror id (4 B) + version number (4 B) -> JSON :class:`Version`
- ``index``     mirror id (4 B) + dir path + NUL + name -> packed :class:`Rec`
- ``locks/<name>.lock``  (a plain file beside the env) one sync per mirror (``mirror/lock.py``)

Index keys put the children of one directory next to each other, so a sync reads a directory's
previous state with one range scan and finds deletions by comparing names. The root directory's
own record sits under the impossible dir path ``\\x01``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple, TypeVar

import lmdb

from ipmirror.codec.cid import CID
from ipmirror.errors import StoreError

ROOT_DIR = b"\x01"
_REC = struct.Struct(">cQqQqIQqIB")  # kind size mtime_ns ino ctime_ns mode tsize scan_ns gen dlen

# Rec.kind; a packed record starts with it, so ``raw[0] == KIND_FILE[0]`` tests a record unread
KIND_FILE: Final = b"f"
KIND_DIR: Final = b"d"
KIND_SYMLINK: Final = b"l"


@dataclass(frozen=True, slots=True)
class Rec:
    """What the last scan recorded for one path."""

    kind: bytes  # KIND_FILE, KIND_DIR or KIND_SYMLINK
    cid: CID
    tsize: int
    size: int = 0
    mtime_ns: int = 0
    ino: int = 0
    ctime_ns: int = 0
    mode: int = 0
    scan_ns: int = 0  # when the stat was taken (for the racily-clean rule)
    gen: int = 0  # the sync that wrote it
    digest: bytes = b""  # directories: children digest

    def pack(self) -> bytes:
        return _REC.pack(self.kind, self.size, self.mtime_ns, self.ino, self.ctime_ns, self.mode,
                         self.tsize, self.scan_ns, self.gen, len(self.digest)) + self.digest + self.cid.buffer

    @classmethod
    def unpack(cls, raw: bytes) -> Rec:
        kind, size, mtime, ino, ctime, mode, tsize, scan, gen, dlen = _REC.unpack_from(raw)
        off = _REC.size
        digest = raw[off:off + dlen]
        return cls(kind, CID.trusted(raw[off + dlen:]), tsize, size, mtime, ino, ctime, mode, scan,
                   gen, digest)


class RecHead(NamedTuple):
    """The fixed fields of a packed record (the digest, then the CID, follow them)."""

    kind: bytes
    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int
    mode: int
    tsize: int
    scan_ns: int
    gen: int
    dlen: int  # digest length


def unpack_head(raw: bytes) -> RecHead:
    """A packed record's fixed fields, without decoding its CID."""
    return RecHead._make(_REC.unpack_from(raw))


REC_HEAD = _REC.size


def split_rel(rel: str) -> tuple[bytes, bytes]:
    """Importer path (``root/a/b``) -> index (dir path, name): ``(b"a", b"b")``; the root itself
    -> ``(ROOT_DIR, b"")``."""
    _top, _, rest = rel.partition("/")
    if not rest:
        return ROOT_DIR, b""
    d, _, n = rest.rpartition("/")
    return os.fsencode(d), os.fsencode(n)


class _Json:
    """JSON (de)serialisation of a dataclass; unknown keys are ignored (newer versions' fields)."""

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode()  # type: ignore[call-overload]

    @classmethod
    def from_json(cls: type[J], raw: bytes) -> J:
        d = json.loads(raw)
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in d.items() if k in known})


J = TypeVar("J", bound=_Json)


@dataclass
class Mirror(_Json):
    name: str
    id: int
    dir: str
    profile: str
    hidden: bool = False
    exclude: list[str] = field(default_factory=list)
    nocopy: bool = False
    key: str = ""
    keep: int = 0  # 0: keep every version pinned (records made before retention had a default)
    created: float = 0.0
    gen: int = 0  # last sync started
    completed_gen: int = 0  # last sync completed
    keep_days: float = 0.0  # also keep versions younger than this (mirror/retention.py)
    checked: float = 0.0  # when a sync last completed (a new version or none: nothing changed)
    refused: str = ""  # why the last sync refused to publish ("" after a sync that completed)
    published: str = ""  # the root last published under the key (so a no-op sync can catch up)
    own_key: bool | None = None  # the key was made for this mirror (None: recorded before; see rm)


@dataclass
class Version(_Json):
    number: int
    time: float
    root: str
    files: int
    size: int  # bytes of file content
    added: int
    changed: int
    removed: int
    duration: float
    complete: bool = True
    nocopy: bool = False
    pinned: bool = True
    read_files: int = 0  # files this sync actually read (new, changed, or racily clean)
    read_bytes: int = 0
    put_blocks: int = 0  # blocks this sync encoded and handed to the store (new or not)
    dev: int = 0  # st_dev of the mirror directory when synced (0: not recorded; mirror/checks.py)
    skipped: int = 0  # entries that could not be read (a partial sync; their earlier content kept)


def _mid(mid: int) -> bytes:
    return mid.to_bytes(4, "big")


def index_key(mid: int, dirpath: bytes, name: bytes) -> bytes:
    return _mid(mid) + dirpath + b"\0" + name


class MirrorDB:
    def __init__(self, env: Any) -> None:
        self.env = env
        self.path = Path(env.path())
        self.db_mirrors = env.open_db(b"mirrors")
        self.db_versions = env.open_db(b"versions")
        self.db_index = env.open_db(b"index")

    @classmethod
    def open(cls, path: Path) -> MirrorDB:
        try:
            path.mkdir(parents=True, exist_ok=True)
            env = lmdb.open(str(path), map_size=1 << 36, max_dbs=4, max_readers=256, readahead=False)
        except (lmdb.Error, OSError) as e:
            raise StoreError(f"cannot open mirror state at {path}: {e}") from None
        return cls(env)

    def close(self) -> None:
        self.env.close()

    # -- mirrors ------------------------------------------------------------------------------
    def mirrors(self) -> list[Mirror]:
        with self.env.begin() as t, t.cursor(db=self.db_mirrors) as cur:
            return [Mirror.from_json(bytes(v)) for _k, v in cur]

    def get_mirror(self, name: str) -> Mirror | None:
        with self.env.begin() as t:
            raw = t.get(name.encode(), db=self.db_mirrors)
        return Mirror.from_json(bytes(raw)) if raw is not None else None

    def put_mirror(self, m: Mirror) -> None:
        with self.env.begin(write=True) as t:
            t.put(m.name.encode(), m.to_json(), db=self.db_mirrors)

    def next_id(self) -> int:
        return max((m.id for m in self.mirrors()), default=0) + 1

    def delete_mirror(self, m: Mirror) -> None:
        self.delete_prefix(_mid(m.id), self.db_index)
        self.delete_prefix(_mid(m.id), self.db_versions)
        with self.env.begin(write=True) as t:
            t.delete(m.name.encode(), db=self.db_mirrors)

    # -- versions -------------------------------------------------------------------------------
    def versions(self, mid: int) -> list[Version]:
        p = _mid(mid)
        out = []
        with self.env.begin() as t, t.cursor(db=self.db_versions) as cur:
            ok = cur.set_range(p)
            while ok and bytes(cur.key()).startswith(p):
                out.append(Version.from_json(bytes(cur.value())))
                ok = cur.next()
        return out

    def put_version(self, mid: int, v: Version) -> None:
        with self.env.begin(write=True) as t:
            t.put(_mid(mid) + v.number.to_bytes(4, "big"), v.to_json(), db=self.db_versions)

    # -- index ----------------------------------------------------------------------------------
    def children_raw(self, mid: int, dirpath: bytes, txn: Any = None) -> dict[bytes, bytes]:
        """The packed records of one directory's children (unpack lazily: a no-op sync only
        needs the stat fields of each). ``txn``: a read transaction from :meth:`snapshot` to
        read many directories from one snapshot (no transaction set-up per directory)."""
        p = index_key(mid, dirpath, b"")
        n = len(p)
        out: dict[bytes, bytes] = {}
        t = txn if txn is not None else self.env.begin()
        try:
            with t.cursor(db=self.db_index) as cur:
                if cur.set_range(p):
                    for k, v in cur:
                        if not k.startswith(p):
                            break
                        out[k[n:]] = v
        finally:
            if txn is None:
                t.abort()
        return out

    def snapshot(self) -> Any:
        """A read transaction (``abort()`` it when done); it sees the state when it began."""
        return self.env.begin()

    def children(self, mid: int, dirpath: bytes) -> dict[bytes, Rec]:
        return {k: Rec.unpack(v) for k, v in self.children_raw(mid, dirpath).items()}

    def get_rec(self, mid: int, dirpath: bytes, name: bytes) -> Rec | None:
        with self.env.begin() as t:
            raw = t.get(index_key(mid, dirpath, name), db=self.db_index)
        return Rec.unpack(bytes(raw)) if raw is not None else None

    def apply(self, mid: int, puts: list[tuple[bytes, bytes, Rec]],
              deletes: list[tuple[bytes, bytes, bool]]) -> int:
        """Write records and delete paths (a deleted directory takes its subtree); returns the
        number of file records deleted."""
        removed_files = 0
        with self.env.begin(write=True) as t:
            for dirpath, name, rec in puts:
                t.put(index_key(mid, dirpath, name), rec.pack(), db=self.db_index)
            for dirpath, name, was_dir in deletes:
                raw = t.pop(index_key(mid, dirpath, name), db=self.db_index)
                if raw is not None and Rec.unpack(bytes(raw)).kind == KIND_FILE:
                    removed_files += 1
                if was_dir:
                    sub = (dirpath + b"/" + name) if dirpath else name
                    for prefix in (_mid(mid) + sub + b"\0", _mid(mid) + sub + b"/"):
                        removed_files += self._delete_prefix_txn(t, prefix, self.db_index, count_files=True)
        return removed_files

    def _delete_prefix_txn(self, t: Any, prefix: bytes, db: Any, count_files: bool = False) -> int:
        n = 0
        with t.cursor(db=db) as cur:
            ok = cur.set_range(prefix)
            while ok and bytes(cur.key()).startswith(prefix):
                if count_files and bytes(cur.value())[:1] == KIND_FILE:
                    n += 1
                ok = cur.delete()
        return n

    def delete_prefix(self, prefix: bytes, db: Any) -> None:
        with self.env.begin(write=True) as t:
            self._delete_prefix_txn(t, prefix, db)

    def count_files(self, mid: int, deletes: list[tuple[bytes, bytes, bool]]) -> int:
        """How many file records :meth:`apply` would delete for ``deletes`` (read only)."""
        n = 0
        with self.env.begin() as t:
            for dirpath, name, was_dir in deletes:
                raw = t.get(index_key(mid, dirpath, name), db=self.db_index)
                if raw is not None and bytes(raw[:1]) == KIND_FILE:
                    n += 1
                if was_dir:
                    n += self._subtree_files(t, mid, dirpath, name)[0]
        return n

    def subtree_files(self, mid: int, dirpath: bytes, name: bytes) -> tuple[int, int]:
        """Files recorded below directory ``name`` of ``dirpath``, and their bytes."""
        with self.env.begin() as t:
            return self._subtree_files(t, mid, dirpath, name)

    def _subtree_files(self, t: Any, mid: int, dirpath: bytes, name: bytes) -> tuple[int, int]:
        sub = (dirpath + b"/" + name) if dirpath else name
        files = nbytes = 0
        with t.cursor(db=self.db_index) as cur:
            for prefix in (_mid(mid) + sub + b"\0", _mid(mid) + sub + b"/"):
                ok = cur.set_range(prefix)
                while ok and bytes(cur.key()).startswith(prefix):
                    v = bytes(cur.value())
                    if v[:1] == KIND_FILE:
                        files += 1
                        nbytes += unpack_head(v).size
                    ok = cur.next()
        return files, nbytes

    def iter_index(self, mid: int) -> Iterator[tuple[bytes, Rec]]:
        p = _mid(mid)
        with self.env.begin() as t, t.cursor(db=self.db_index) as cur:
            ok = cur.set_range(p)
            while ok:
                k = bytes(cur.key())
                if not k.startswith(p):
                    break
                yield k[4:], Rec.unpack(bytes(cur.value()))
                ok = cur.next()

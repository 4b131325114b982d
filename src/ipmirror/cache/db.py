"""The caches' metadata database: one SQLite file in the repository (``caches/cache.db``, WAL),
shared by every process of ``serve`` and by the ``cache`` commands; it survives restarts.

Usage::

    db = CacheDB.open(repo_path / "caches")
    db.add_cache(CacheSettings("pypi", "pypi", "http://127.0.0.1:9000/simple/"))
    db.put_doc("pypi", "simple/foo", body, etag, last_modified, fetched_at)
    db.put_files("pypi", "foo", [(filename, url, sha256, size, meta_sha256), ...])
    db.add_artifact(Artifact(...))           # after the bytes are verified and in the store

Tables: ``caches`` (definitions), ``docs`` (metadata documents in the cache's own parsed form, with
the upstream's validators and when they were fetched), ``files`` (what an index page published:
file name -> upstream URL, hash, size; what a file route and ``/by-hash`` look up), ``artifacts``
(what is stored: hash -> CID, size, verified, last access), ``unverified`` (URL -> hash of what
was stored from a URL no index published a hash for) and ``counters`` (stats). Writes on a
hot path are batched by the caller (``Counters``): a write per cache hit would cost requests/s.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipmirror.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS caches (name TEXT PRIMARY KEY, type TEXT NOT NULL, upstream TEXT NOT NULL,
    ttl REAL NOT NULL, offline INTEGER NOT NULL, max_size INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS docs (cache TEXT, key TEXT, body BLOB NOT NULL, etag TEXT, last_modified TEXT,
    fetched_at REAL NOT NULL, PRIMARY KEY (cache, key));
CREATE TABLE IF NOT EXISTS files (cache TEXT, project TEXT, filename TEXT, url TEXT NOT NULL,
    sha256 TEXT, size INTEGER, meta_sha256 TEXT, PRIMARY KEY (cache, project, filename));
CREATE INDEX IF NOT EXISTS files_sha256 ON files (sha256);
CREATE TABLE IF NOT EXISTS artifacts (sha256 TEXT PRIMARY KEY, cid TEXT NOT NULL, size INTEGER NOT NULL,
    verified INTEGER NOT NULL, cache TEXT NOT NULL, filename TEXT NOT NULL, stored_at REAL NOT NULL,
    last_access REAL NOT NULL);
CREATE INDEX IF NOT EXISTS artifacts_lru ON artifacts (cache, last_access);
CREATE TABLE IF NOT EXISTS unverified (url TEXT PRIMARY KEY, sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (cache TEXT, name TEXT, value INTEGER NOT NULL,
    PRIMARY KEY (cache, name));
"""


@dataclass(frozen=True, slots=True)
class CacheSettings:
    name: str
    type: str
    upstream: str
    ttl: float = 600.0
    offline: bool = False
    max_size: int = 0  # bytes; 0: no limit


@dataclass(frozen=True, slots=True)
class Doc:
    body: bytes
    etag: str | None
    last_modified: str | None
    fetched_at: float


@dataclass(frozen=True, slots=True)
class FileRow:
    url: str
    sha256: str | None
    size: int | None
    meta_sha256: str | None  # "" : metadata published without a hash; None: none published


@dataclass(frozen=True, slots=True)
class Artifact:
    sha256: str
    cid: str
    size: int
    verified: bool
    cache: str
    filename: str
    stored_at: float = 0.0
    last_access: float = 0.0


class CacheDB:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn
        self._lock = threading.Lock()

    @classmethod
    def open(cls, directory: Path) -> CacheDB:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(directory / "cache.db", timeout=30, check_same_thread=False,
                                   isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the cache database in {directory}: {e}") from None
        return cls(conn)

    def close(self) -> None:
        self._c.close()

    def _q(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        with self._lock:
            return self._c.execute(sql, args).fetchall()

    def _many(self, sql: str, rows: Iterable[tuple[object, ...]]) -> None:
        with self._lock:
            self._c.execute("BEGIN IMMEDIATE")
            try:
                self._c.executemany(sql, rows)
                self._c.execute("COMMIT")
            except BaseException:
                self._c.execute("ROLLBACK")
                raise

    # -- definitions -----------------------------------------------------------------------------
    def add_cache(self, s: CacheSettings, *, replace: bool = False) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        self._q(f"{verb} INTO caches VALUES (?,?,?,?,?,?,?)",
                (s.name, s.type, s.upstream, s.ttl, int(s.offline), s.max_size, time.time()))

    def caches(self) -> list[CacheSettings]:
        return [CacheSettings(str(n), str(t), str(u), float(tl), bool(o), int(m))
                for n, t, u, tl, o, m in self._q(
                    "SELECT name, type, upstream, ttl, offline, max_size FROM caches ORDER BY name")]

    def cache(self, name: str) -> CacheSettings | None:
        return next((c for c in self.caches() if c.name == name), None)

    def rm_cache(self, name: str) -> list[Artifact]:
        """Drop a cache's definition and metadata; the artifacts it held (to unpin)."""
        arts = [a for a in self.artifacts(name)]
        with self._lock:
            self._c.execute("BEGIN IMMEDIATE")
            for t in ("caches", "docs", "files", "artifacts", "counters"):
                col = "name" if t == "caches" else "cache"
                self._c.execute(f"DELETE FROM {t} WHERE {col} = ?", (name,))
            self._c.execute("COMMIT")
        return arts

    # -- documents -------------------------------------------------------------------------------
    def doc(self, cache: str, key: str) -> Doc | None:
        rows = self._q("SELECT body, etag, last_modified, fetched_at FROM docs WHERE cache=? AND key=?",
                       (cache, key))
        if not rows:
            return None
        b, e, lm, f = rows[0]
        return Doc(bytes(b), e, lm, float(f))

    def put_doc(self, cache: str, key: str, d: Doc) -> None:
        self._q("INSERT OR REPLACE INTO docs VALUES (?,?,?,?,?,?)",
                (cache, key, d.body, d.etag, d.last_modified, d.fetched_at))

    def touch_doc(self, cache: str, key: str, fetched_at: float) -> None:
        self._q("UPDATE docs SET fetched_at=? WHERE cache=? AND key=?", (fetched_at, cache, key))

    def doc_keys(self, cache: str, prefix: str) -> list[str]:
        return [str(k) for (k,) in self._q("SELECT key FROM docs WHERE cache=? AND key LIKE ? ORDER BY key",
                                           (cache, prefix.replace("%", "") + "%"))]

    # -- published files -------------------------------------------------------------------------
    def put_files(self, cache: str, project: str,
                  rows: Iterable[tuple[str, str, str | None, int | None, str | None]]) -> None:
        self._many("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)",
                   ((cache, project, *r) for r in rows))

    def file(self, cache: str, project: str, filename: str) -> FileRow | None:
        rows = self._q("SELECT url, sha256, size, meta_sha256 FROM files WHERE cache=? AND project=? "
                       "AND filename=?", (cache, project, filename))
        return FileRow(*rows[0]) if rows else None

    def file_by_hash(self, sha256: str) -> tuple[str, str, FileRow] | None:
        """``(cache, filename, row)`` of a file some index published with this sha256."""
        rows = self._q("SELECT cache, filename, url, sha256, size, meta_sha256 FROM files WHERE sha256=? "
                       "LIMIT 1", (sha256,))
        if not rows:
            return None
        c, fn, *rest = rows[0]
        return str(c), str(fn), FileRow(*rest)

    # -- artifacts -------------------------------------------------------------------------------
    def artifact(self, sha256: str) -> Artifact | None:
        rows = self._q("SELECT * FROM artifacts WHERE sha256=?", (sha256,))
        return _artifact(rows[0]) if rows else None

    def add_artifact(self, a: Artifact) -> None:
        now = time.time()
        self._q("INSERT OR REPLACE INTO artifacts VALUES (?,?,?,?,?,?,?,?)",
                (a.sha256, a.cid, a.size, int(a.verified), a.cache, a.filename, now, now))

    def rm_artifact(self, sha256: str) -> None:
        self._q("DELETE FROM artifacts WHERE sha256=?", (sha256,))

    def artifacts(self, cache: str) -> Iterator[Artifact]:
        for r in self._q("SELECT * FROM artifacts WHERE cache=? ORDER BY last_access", (cache,)):
            yield _artifact(r)

    def cached_size(self, cache: str) -> tuple[int, int, int]:
        """``(artifacts, bytes, unverified)`` held by a cache."""
        (n, b, u), = self._q("SELECT COUNT(*), COALESCE(SUM(size),0), COALESCE(SUM(1-verified),0) "
                             "FROM artifacts WHERE cache=?", (cache,))
        return int(n), int(b), int(u)

    def touch_artifacts(self, times: dict[str, float]) -> None:
        self._many("UPDATE artifacts SET last_access=MAX(last_access, ?) WHERE sha256=?",
                   ((t, h) for h, t in times.items()))

    def unverified(self, url: str) -> str | None:
        """The sha256 of an artifact stored from ``url`` that no index published a hash for."""
        rows = self._q("SELECT sha256 FROM unverified WHERE url=?", (url,))
        return str(rows[0][0]) if rows else None

    def add_unverified(self, url: str, sha256: str) -> None:
        self._q("INSERT OR REPLACE INTO unverified VALUES (?,?)", (url, sha256))

    # -- counters --------------------------------------------------------------------------------
    def add_counters(self, deltas: dict[tuple[str, str], int]) -> None:
        self._many("INSERT INTO counters VALUES (?,?,?) ON CONFLICT (cache, name) "
                   "DO UPDATE SET value = value + excluded.value",
                   ((c, n, v) for (c, n), v in deltas.items()))

    def counters(self, cache: str) -> dict[str, int]:
        return {str(n): int(v) for n, v in self._q(
            "SELECT name, value FROM counters WHERE cache=?", (cache,))}


def _artifact(r: Any) -> Artifact:
    h, cid, size, ver, cache, fn, st, la = r
    return Artifact(str(h), str(cid), int(size), bool(ver), str(cache), str(fn), float(st),
                    float(la))

"""The cache machinery shared by every ecosystem: settings, freshness of metadata documents,
artifact lookup (database first, then the store by hash), storing, LRU eviction and counters.
One ``CacheCore`` per process (each HTTP worker has its own; they share the files on disk).

Usage::

    core = CacheCore(db, store, profile, repo / "caches", client, Limits())   # client: upstream.Client
    cs = core.settings("pypi")                               # CacheSettings or None
    doc = await core.get_doc(cs, "simple/foo", url, accept, convert)   # DocResult
    art = await core.lookup(sha256)                          # Artifact (stored) or None
    job = core.job(cs, url, sha256, size, filename)           # a fills.Job for fills.join

Freshness (per cache ``ttl``): a document younger than the TTL is served as stored; an older one is
revalidated (``If-None-Match`` / ``If-Modified-Since``); when the upstream errors or times out the
stored one is served anyway, marked stale (``Age`` and ``Warning`` headers, a log line). In offline
mode (per cache, or ``offline`` for all) the upstream is never asked; a core that may not write
(``writes=False``, for ``serve --read-only``) is offline and records nothing. Fetches of one document are
coalesced within a process. Counters and access times are kept in memory and written every few
seconds (``flush``), not per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ipmirror.cache import cas
from ipmirror.cache.db import Artifact, CacheDB, CacheSettings, Doc
from ipmirror.cache.fill import Fills, Job
from ipmirror.cache.pipconf import redact
from ipmirror.cache.upstream import Client, Limits, Upstream
from ipmirror.codec.cid import CID
from ipmirror.errors import DecodeError, UpstreamError
from ipmirror.store.base import Store
from ipmirror.unixfs.profile import Profile

log = logging.getLogger("ipmirror.cache")
Convert = Callable[[bytes, str, str], bytes]  # (upstream body, content type, final URL) -> stored form


@dataclass(frozen=True, slots=True)
class DocResult:
    body: bytes
    fetched_at: float
    stale: bool = False  # served without the upstream's word (offline, or the upstream failed)
    warning: str = ""


class CacheCore:
    def __init__(self, db: CacheDB, store: Store, profile: Profile, state_dir: Path,
                 client: Client, limits: Limits | None = None, *,
                 offline: bool = False, writes: bool = True) -> None:
        self.db = db
        self.store = store
        self.profile = profile
        self.fills = Fills(state_dir / "fills")
        self.client = client
        self.limits = limits or Limits()
        self.writes = writes  # False (``serve --read-only``): offline, and nothing is recorded
        self.offline = offline or not writes
        self._settings: dict[str, CacheSettings] = {}
        self._settings_at = 0.0
        self._inflight: dict[tuple[str, str], asyncio.Future[DocResult]] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._access: dict[str, float] = {}

    # -- settings (re-read every 2 s: ``cache add/set/rm`` reach a running server) ----------------
    def settings(self, name: str) -> CacheSettings | None:
        now = time.monotonic()
        if now - self._settings_at > 2.0:
            self._settings = {c.name: c for c in self.db.caches()}
            self._settings_at = now
        return self._settings.get(name)

    def is_offline(self, cs: CacheSettings) -> bool:
        return self.offline or cs.offline

    def upstream(self, cs: CacheSettings) -> Upstream:
        return Upstream(self.client, cs.upstream, self.limits)

    # -- counters --------------------------------------------------------------------------------
    def count(self, cache: str, name: str, n: int = 1) -> None:
        k = (cache, name)
        self._counts[k] = self._counts.get(k, 0) + n

    def touch(self, sha256: str) -> None:
        self._access[sha256] = time.time()

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        access, self._access = self._access, {}
        if not self.writes:
            return
        if counts:
            self.db.add_counters(counts)
        if access:
            self.db.touch_artifacts(access)

    async def run_flusher(self, every: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                self.flush()
            except Exception as e:  # keep serving; the next flush retries
                log.warning("cache: writing counters failed: %s", e)

    # -- metadata documents ----------------------------------------------------------------------
    async def get_doc(self, cs: CacheSettings, key: str, url: str, accept: str,
                      convert: Convert) -> DocResult:
        k = (cs.name, key)
        fut = self._inflight.get(k)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[k] = fut
        try:
            res = await self._get_doc(cs, key, url, accept, convert)
            fut.set_result(res)
            return res
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            del self._inflight[k]

    async def _get_doc(self, cs: CacheSettings, key: str, url: str, accept: str,
                       convert: Convert) -> DocResult:
        old = self.db.doc(cs.name, key)
        now = time.time()
        if old is not None and now - old.fetched_at < cs.ttl:
            self.count(cs.name, "doc_hits")
            return DocResult(old.body, old.fetched_at)
        if self.is_offline(cs):
            if old is None:
                raise UpstreamError("not in the cache (offline mode)", 404)
            return DocResult(old.body, old.fetched_at, stale=True, warning='112 - "Disconnected Operation"')
        headers = {"Accept": accept}
        if old is not None and old.etag:
            headers["If-None-Match"] = old.etag
        if old is not None and old.last_modified:
            headers["If-Modified-Since"] = old.last_modified
        up = self.upstream(cs)
        try:
            async with up.get(url, headers) as resp:
                if resp.status == 304 and old is not None:
                    self.db.touch_doc(cs.name, key, now)
                    self.count(cs.name, "doc_revalidated")
                    return DocResult(old.body, now)
                if resp.status == 404:
                    raise UpstreamError(f"not found upstream: {redact(url)}", 404)
                if resp.status != 200:
                    raise UpstreamError(f"upstream answered {resp.status} for {redact(url)}")
                body = await up.read_capped(resp, self.limits.max_doc_bytes)
                stored = convert(body, resp.headers.get("Content-Type", ""), str(resp.url))
                etag, lm = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
        except (UpstreamError, DecodeError) as e:
            if old is None or (isinstance(e, UpstreamError) and e.status == 404):
                self.count(cs.name, "upstream_errors")
                if isinstance(e, DecodeError):
                    raise UpstreamError(f"upstream sent a malformed document: {e}") from None
                raise
            log.warning("cache %s: serving %s stale (%d s old): %s", cs.name, key, now - old.fetched_at, e)
            self.count(cs.name, "stale_served")
            return DocResult(old.body, old.fetched_at, stale=True, warning='111 - "Revalidation Failed"')
        self.db.put_doc(cs.name, key, Doc(stored, etag, lm, now))
        self.count(cs.name, "doc_fetches")
        return DocResult(stored, now)

    # -- artifacts -------------------------------------------------------------------------------
    async def lookup(self, sha256: str, cache: str = "", filename: str = "") -> Artifact | None:
        """A stored artifact by its sha256: the database, else a raw block with that hash (bytes a
        mirror or another cache holds; recorded for this cache then)."""
        art = self.db.artifact(sha256)
        if art is not None:
            self.touch(sha256)
            return art
        cid = cas.raw_cid(sha256)
        if await asyncio.to_thread(self.store.has, cid) and cache:
            size = await asyncio.to_thread(cas.size_of, self.store, cid)
            art = Artifact(sha256, str(cid), size, True, cache, filename)
            if not self.writes:
                return art
            await asyncio.to_thread(self.store.pin_add, cid, "recursive", cas.OWNER)
            self.db.add_artifact(art)
            self.count(cache, "found_in_store")
            return art
        return None

    def job(self, cs: CacheSettings, url: str, sha256: str | None, size: int | None, filename: str) -> Job:
        key = sha256 or "u" + hashlib.sha256(url.encode()).hexdigest()
        up = self.upstream(cs)

        async def download() -> AsyncIterator[bytes]:
            self.count(cs.name, "upstream_downloads")
            async with up.get(url) as resp:
                if resp.status == 404:
                    raise UpstreamError(f"not found upstream: {filename}", 404)
                if resp.status != 200:
                    raise UpstreamError(f"upstream answered {resp.status} for {filename}")
                if resp.content_length is not None and resp.content_length > self.limits.max_artifact_bytes:
                    raise UpstreamError(f"{filename} is larger than the cache's limit")
                try:
                    async for chunk in resp.content.iter_any():
                        yield chunk
                except (aiohttp.ClientError, TimeoutError, OSError) as e:
                    raise UpstreamError(f"upstream failed mid-body: {type(e).__name__}: {e}") from None
                if resp.content_length is None and not resp.content.at_eof():
                    raise UpstreamError("upstream closed the connection mid-body")

        async def stored() -> bool:
            if sha256 is not None:
                return await self.lookup(sha256, cs.name, filename) is not None
            return self.db.unverified(url) is not None

        async def store(fd: int, n: int, digest: str) -> None:
            cid = await asyncio.to_thread(cas.import_artifact, self.store, self.profile, fd)
            self.db.add_artifact(Artifact(digest, str(cid), n, sha256 is not None, cs.name, filename))
            if sha256 is None:
                self.db.add_unverified(url, digest)
                self.count(cs.name, "unverified_stored")
            self.count(cs.name, "stored")
            if cs.max_size:
                await asyncio.to_thread(self.evict, cs, keep=digest)

        return Job(key, sha256, size, self.limits.max_artifact_bytes, download, stored, store)

    def evict(self, cs: CacheSettings, keep: str = "") -> int:
        """Drop least recently used artifacts nobody else pinned until the cache fits ``max_size``;
        how many. Their blocks are freed by the next ``repo gc`` (another mirror or cache may
        share them)."""
        self.flush()
        _n, total, _u = self.db.cached_size(cs.name)
        dropped = 0
        for a in list(self.db.artifacts(cs.name)):
            if total <= cs.max_size:
                break
            cid = CID.parse(a.cid)
            if a.sha256 == keep or cas.pinned_by_others(self.store, cid):
                continue
            cas.unpin(self.store, cid)
            self.db.rm_artifact(a.sha256)
            total -= a.size
            dropped += 1
        if dropped:
            self.count(cs.name, "evicted", dropped)
            log.info("cache %s: evicted %d artifacts", cs.name, dropped)
        return dropped

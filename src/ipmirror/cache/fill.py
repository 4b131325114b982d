"""Coalesced artifact downloads: one upstream download per artifact, across every request and
every process of ``serve``; everyone who asked receives the bytes as they arrive; nobody receives
the last byte of an artifact that did not verify. Ecosystem-neutral (a download is a ``Job``).

Usage::

    fills = Fills(repo / "caches" / "fills")
    body = await fills.join(job)        # None: the artifact was stored meanwhile (serve the store)
    async for chunk in body: ...        # FillFailed (``.status``) if the download fails or mismatches

How (files in ``fills/``, per artifact key ``K``):

- ``K.lock``: whoever holds an exclusive ``flock`` on it is the *filler*; the kernel drops the lock
  when the filler's process dies, so a crashed fill never blocks the next one.
- ``K.part``: the bytes so far. The filler removes an old part and creates a new one (a new inode)
  under the lock, writes as bytes arrive (hashing them), and removes it once the artifact is stored.
- ``K.state``: the filler's verdict for one part, named by its inode: ``INO ok SIZE`` once the
  bytes matched the published sha256 (written before the artifact is put into the store, so
  waiters finish without waiting for that), or ``INO bad STATUS REASON``.
- A waiter opens the part and tails it (``pread``; woken by the filler in its own process, polling
  otherwise). It holds back the last byte until the verdict for *its* inode is ``ok``; on ``bad``,
  or when the lock is free with no verdict (the filler died), it fails. Before a response started
  that is a clean error status; after, the transfer is cut short — never a complete wrong file.
- The filler runs as a task of its own: a client going away does not stop a fill others wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from ipmirror.errors import UpstreamError

log = logging.getLogger("ipmirror.cache")
CHUNK = 256 << 10
JOIN_TRIES = 500  # x 10 ms: how long a waiter looks for a part that a filler is about to create


class FillFailed(UpstreamError):
    """The download that a request joined failed (``.status`` to answer with before streaming)."""


@dataclass(frozen=True, slots=True)
class Job:
    """One artifact to download. ``key`` names it in ``fills/`` (a hex digest: no path tricks)."""

    key: str
    sha256: str | None  # published hash, checked before anyone gets the whole file
    size: int | None  # published size, if any
    max_bytes: int
    download: Callable[[], AsyncIterator[bytes]]  # the upstream's body (UpstreamError on failure)
    stored: Callable[[], Awaitable[bool]]  # is it in the store already (then nothing to fill)
    store: Callable[[int, int, str], Awaitable[None]]  # (part fd, size, sha256): put it in the store


class Fills:
    def __init__(self, directory: Path) -> None:
        with contextlib.suppress(OSError):  # a read-only server never fills
            directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self._progress: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.downloads = 0  # fills this process ran (for stats and tests)

    def _p(self, key: str, ext: str) -> str:
        return str(self.dir / f"{key}.{ext}")

    # -- locks -----------------------------------------------------------------------------------
    def _try_lock(self, key: str) -> int | None:
        fd = os.open(self._p(key, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def _lock_free(self, key: str) -> bool:
        fd = os.open(self._p(key, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)  # drops the shared lock too
        return True

    # -- verdicts --------------------------------------------------------------------------------
    def _state(self, key: str) -> tuple[int, str, int, str] | None:
        """``(inode, "ok"|"bad", size|status, reason)``."""
        try:
            with open(self._p(key, "state")) as f:
                ino, verdict, n, *reason = f.read().split(" ", 3)
            return int(ino), verdict, int(n), reason[0] if reason else ""
        except (FileNotFoundError, ValueError):
            return None

    def _set_state(self, key: str, text: str) -> None:
        tmp = self._p(key, f"state.{os.getpid()}")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self._p(key, "state"))

    def sweep(self) -> int:
        """Remove parts that no live filler owns (left by a process that was killed); how many.
        Safe beside running fills: a part is removed only under its lock."""
        n = 0
        for part in self.dir.glob("*.part"):
            key = part.name[: -len(".part")]
            lock = self._try_lock(key)
            if lock is None:
                continue
            try:
                for ext in ("part", "state"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._p(key, ext))
                n += 1
            finally:
                os.close(lock)
        return n

    # -- joining ---------------------------------------------------------------------------------
    async def join(self, job: Job) -> AsyncIterator[bytes] | None:
        """The artifact's bytes as they arrive (from a fill this call starts or joins), or None if
        it is in the store already."""
        for _ in range(JOIN_TRIES):
            lock = self._try_lock(job.key)
            if lock is not None:
                try:
                    if await job.stored():
                        os.close(lock)
                        return None
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._p(job.key, "state"))
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._p(job.key, "part"))
                    wfd = os.open(self._p(job.key, "part"),
                                  os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                except BaseException:
                    os.close(lock)
                    raise
                rfd = os.open(self._p(job.key, "part"), os.O_RDONLY | os.O_CLOEXEC)
                ino = os.fstat(wfd).st_ino
                self._progress[job.key] = asyncio.Event()
                task = asyncio.create_task(self._fill(job, lock, wfd, ino))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return self._tail(job.key, rfd, ino)
            try:
                rfd = os.open(self._p(job.key, "part"), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:  # the filler is about to create it, or has just finished
                if await job.stored():
                    return None
                await asyncio.sleep(0.01)
                continue
            return self._tail(job.key, rfd, os.fstat(rfd).st_ino)
        raise FillFailed("could not join the download of this artifact", 503)

    async def _tail(self, key: str, fd: int, ino: int) -> AsyncIterator[bytes]:
        pos, pending = 0, b""
        try:
            while True:
                ev = self._progress.get(key)
                data = os.pread(fd, CHUNK, pos)
                if data:
                    pos += len(data)
                    out = pending + data if pending else data
                    if len(out) > 1:
                        yield out[:-1]
                    pending = out[-1:]
                    continue
                st = self._state(key)
                if st is None and self._lock_free(key):
                    st = self._state(key)  # written just before the lock went
                    if st is None or st[0] != ino:
                        raise FillFailed("the download of this artifact was interrupted")
                if st is not None and st[0] == ino:
                    if st[1] != "ok":
                        raise FillFailed(st[3] or "download failed", st[2])
                    if pos >= st[2]:
                        if pending:
                            yield pending
                        return
                    continue  # the verdict came with bytes not read yet
                if st is not None and self._lock_free(key):
                    raise FillFailed("the download of this artifact was interrupted")
                if ev is not None and not ev.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ev.wait(), 0.05)
                else:
                    await asyncio.sleep(0.01)
        finally:
            os.close(fd)

    # -- filling ---------------------------------------------------------------------------------
    def _wake(self, key: str) -> None:
        ev = self._progress.get(key)
        if ev is not None:
            ev.set()
            self._progress[key] = asyncio.Event()

    async def _fill(self, job: Job, lock: int, wfd: int, ino: int) -> None:
        self.downloads += 1
        key = job.key
        try:
            h = hashlib.sha256()
            n = 0
            async for chunk in job.download():
                n += len(chunk)
                if n > job.max_bytes or (job.size is not None and n > job.size):
                    raise UpstreamError(f"upstream sent more than the {job.size or job.max_bytes} "
                                        "bytes expected")
                os.write(wfd, chunk)
                h.update(chunk)
                self._wake(key)
            digest = h.hexdigest()
            if job.sha256 is not None and digest != job.sha256:
                raise UpstreamError(f"upstream bytes do not match the published sha256 (got {digest}); "
                                    "nothing cached")
            if job.size is not None and n != job.size:
                raise UpstreamError(f"upstream sent {n} bytes, the index says {job.size}; nothing cached")
            self._set_state(key, f"{ino} ok {n}")
            self._wake(key)
            try:
                await job.store(wfd, n, digest)
            except Exception as e:  # the waiters have their verified bytes; only caching failed
                log.warning("cache: storing %s failed: %s", key, e)
        except Exception as e:
            status = e.status if isinstance(e, UpstreamError) else 502
            reason = str(e) if isinstance(e, UpstreamError) else f"{type(e).__name__}: {e}"
            log.warning("cache: download of %s failed: %s", key, reason)
            self._set_state(key, f"{ino} bad {status} {reason}")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._p(key, "part"))
            os.close(wfd)
            self._wake(key)
            self._progress.pop(key, None)
            os.close(lock)

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

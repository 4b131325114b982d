"""The caches' background upkeep (one per server, in the service process): every ``every``
seconds, evict what exceeds a cache's ``max_size`` (a lowered ``cache set --max-size`` takes
effect without a request), sweep parts left by killed fills, and write the counters.

Usage::

    m = Maintenance(core, every=60.0)
    await m.run()          # until cancelled
    m.status()             # {"caches": {name: {"artifacts", "bytes", "unverified", "max_size"}}, ...}
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ipmirror.cache.core import CacheCore

log = logging.getLogger("ipmirror.cache")


class Maintenance:
    name = "cache"

    def __init__(self, core: CacheCore, every: float = 60.0) -> None:
        self.core = core
        self.every = every
        self.rounds = 0
        self.evicted = 0
        self.swept = 0
        self._status: dict[str, Any] = {}

    def round(self) -> None:
        core = self.core
        caches = core.db.caches()
        self.swept += core.fills.sweep()
        sizes: dict[str, Any] = {}
        for cs in caches:
            if cs.max_size:
                self.evicted += core.evict(cs)
            n, size, unverified = core.db.cached_size(cs.name)
            sizes[cs.name] = {"type": cs.type, "artifacts": n, "bytes": size, "unverified": unverified,
                              "max_size": cs.max_size, "offline": cs.offline or core.offline}
        core.flush()
        self.rounds += 1
        self._status = sizes

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.round)
            except Exception as e:  # keep going; the next round retries
                log.warning("cache upkeep failed: %s", e)
            await asyncio.sleep(self.every)

    def status(self) -> dict[str, Any]:
        return {"caches": self._status, "rounds": self.rounds, "evicted": self.evicted, "swept": self.swept}

"""The republisher service: re-signs the IPNS records of local keys well before they expire.

Usage::

    ServiceSpec("republisher", lambda repo: Republisher(lambda: repo.names, cfg.republish),
                settings=cfg.republish, commands=("republish",))

It checks every ``interval`` seconds and re-signs records expiring within ``within`` hours
(each for ``lifetime`` hours). The ``republish`` command (``ipmirror name republish`` while
a server runs) does the same at once with the caller's window and lifetime; one lock keeps a
command and the periodic check from signing at the same time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from ipmirror.config import RepublishConfig
from ipmirror.errors import InvalidInput
from ipmirror.naming.names import Names, Published
from ipmirror.server.plan import Command, Service

log = logging.getLogger("ipmirror.serve")
HOUR_NS = 3600 * 1_000_000_000


def published_json(p: Published) -> dict[str, Any]:
    return {"name": str(p.name), "value": p.value, "sequence": p.sequence, "validity": p.validity}


class Republisher(Service):
    name = "republisher"

    def __init__(self, names: Callable[[], Names], settings: RepublishConfig) -> None:
        self._names = names
        self.settings = settings
        self._lock = asyncio.Lock()
        self.checks = 0
        self.republished = 0
        self.last_check = 0.0
        self.last_error = ""

    async def run(self) -> None:
        s = self.settings
        while True:
            try:
                done = await self.republish(int(s.within * HOUR_NS), int(s.lifetime * HOUR_NS))
                for p in done:
                    log.warning("ipmirror: warning: republished %s -> %s (sequence %d)",
                                p.name, p.value, p.sequence)
                self.last_error = ""
            except Exception as e:  # keep checking; say why
                self.last_error = str(e)
                log.warning("ipmirror: warning: republishing failed: %s", e)
            await asyncio.sleep(s.interval)

    async def republish(self, within_ns: int, lifetime_ns: int) -> list[Published]:
        async with self._lock:
            done = await asyncio.get_running_loop().run_in_executor(
                None, lambda: self._names().republish(within_ns=within_ns, lifetime_ns=lifetime_ns))
        self.checks += 1
        self.republished += len(done)
        self.last_check = time.time()
        return done

    async def _command(self, args: dict[str, Any]) -> Any:
        within, lifetime = args.get("within_ns"), args.get("lifetime_ns")
        if not isinstance(within, int) or not isinstance(lifetime, int) or within < 0 or lifetime <= 0:
            raise InvalidInput("republish takes within_ns and lifetime_ns (nanoseconds)")
        return [published_json(p) for p in await self.republish(within, lifetime)]

    def commands(self) -> Mapping[str, Command]:
        return {"republish": self._command}

    def status(self) -> dict[str, Any]:
        s = self.settings
        out: dict[str, Any] = {"interval": s.interval, "within_hours": s.within,
                               "lifetime_hours": s.lifetime, "checks": self.checks,
                               "republished": self.republished, "last_check": self.last_check or None}
        if self.last_error:
            out["last_error"] = self.last_error
        return out

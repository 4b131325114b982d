"""The watch service: syncs a mirror again whenever its directory changes.

Usage::

    Watcher("debian", "/srv/debian", sync=lambda: mirrors.sync("debian"), settings=cfg.watch,
            on_version=print_version, initial=True)

File-system notifications (watchdog, on its own threads) only mark the directory as changed;
a sync starts once ``debounce`` seconds pass without one, or ``max_wait`` seconds after the
first while they keep coming. The sync runs on a thread (it blocks), one at a time; a change
seen during a sync is picked up by the next. With ``initial`` the service syncs once at start,
so changes made while nothing watched are not missed (``serve``); ``mirror sync --watch`` has
just synced and starts without. A failed sync raises: the host restarts the service. A sync
refused by a source check (``Refused``: an unmounted disk, too many files removed) is not a
failure of the service: it is logged, and the next change tries again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ipmirror.config import WatchConfig
from ipmirror.errors import Refused
from ipmirror.mirror.db import Version
from ipmirror.server.plan import Service

log = logging.getLogger("ipmirror.serve")
TICK = 0.1


class Watcher(Service):
    def __init__(self, mirror: str, directory: str, sync: Callable[[], Version], settings: WatchConfig,
                 on_version: Callable[[Version], None] | None = None, initial: bool = False) -> None:
        self.name = f"watch:{mirror}"
        self.mirror, self.directory = mirror, directory
        self._sync, self.settings, self.on_version, self.initial = sync, settings, on_version, initial
        self._lock = threading.Lock()
        self._first = self._last = 0.0
        self.syncs = 0
        self.last_version: Version | None = None

    def _changed(self) -> None:
        now = time.monotonic()
        with self._lock:
            self._first = self._first or now
            self._last = now

    def _due(self) -> bool:
        s = self.settings
        with self._lock:
            now = time.monotonic()
            due = bool(self._first) and (now - self._last >= s.debounce or now - self._first >= s.max_wait)
            if due:
                self._first = self._last = 0.0
        return due

    async def run(self) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        changed = self._changed

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type not in ("opened", "closed_no_write"):
                    changed()

        observer = Observer()
        observer.schedule(Handler(), self.directory, recursive=True)
        observer.start()
        log.warning("ipmirror: warning: watching %s for changes (debounce %ss)", self.directory,
                    self.settings.debounce)
        try:
            if self.initial:
                await self._sync_now()
            while True:
                await asyncio.sleep(TICK)
                if self._due():
                    await self._sync_now()
        finally:
            observer.stop()
            await asyncio.get_running_loop().run_in_executor(None, observer.join)

    async def _sync_now(self) -> None:
        try:
            v = await asyncio.get_running_loop().run_in_executor(None, self._sync)
        except Refused as e:
            log.warning("ipmirror: %s", e)
            return
        self.syncs += 1
        self.last_version = v
        if self.on_version is not None:
            self.on_version(v)

    def status(self) -> dict[str, Any]:
        v = self.last_version
        return {"mirror": self.mirror, "dir": self.directory, "syncs": self.syncs,
                "debounce": self.settings.debounce, "max_wait": self.settings.max_wait,
                "last_version": None if v is None else {"number": v.number, "root": v.root}}

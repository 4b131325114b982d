"""Request counting for ``/-/metrics``: plain counters per worker, handed to ``prometheus_client``
(multiprocess mode: one memory-mapped file per worker, summed at a scrape) in batches.

Usage::

    meter = process_meter(routes)              # one per worker process
    handler = meter.wrap(handler)              # before routing: replayed answers are counted too
    meter.flush()                              # at a scrape; else once a second while counting
    meter.status()                             # {"requests": n, "rate": per second, last minute}

Calling ``prometheus_client`` per request costs more than serving a small file from memory does
(a lock and an mmap write per value), so a request costs a dict update and a bucket increment,
and a timer moves the counts into the metric objects at most once a second (only while there
are new counts). ``PROMETHEUS_MULTIPROC_DIR`` is set by ``serve`` before the workers start.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from aiohttp import web

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FLUSH_EVERY: Final = 1.0  # seconds


class Meter:
    """The request counts of one process, by route (the URL map's prefix) and status code."""

    def __init__(self, routes: Sequence[str]) -> None:
        self.routes = sorted(set(routes), key=len, reverse=True)
        self._top = {r: r for r in self.routes if r.count("/") == 2 and r.endswith("/")}
        self.pending: dict[tuple[str, int], int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}
        self.total = 0
        self._history: collections.deque[tuple[float, int]] = collections.deque(maxlen=61)
        self._armed = False
        self._metrics: Any = None

    def route(self, path: str) -> str:
        r = self._top.get(path[:path.find("/", 1) + 1])  # "/ipfs/…": one slice and a dict lookup
        if r is not None:
            return r
        for r in self.routes:
            if path.startswith(r) if r != "/" else path == "/":
                return r
        return "other"

    def add(self, path: str, code: int, seconds: float) -> None:
        route = self.route(path)
        key = (route, code)
        self.pending[key] = self.pending.get(key, 0) + 1
        b = self.buckets.get(route)
        if b is None:
            b = self.buckets[route] = [0] * (len(BUCKETS) + 1)
            self.sums[route] = 0.0
        b[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sums[route] += seconds
        self.total += 1
        if not self._armed:
            self._armed = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_EVERY, self._tick)
            except RuntimeError:
                self._armed = False

    def wrap(self, handler: Handler) -> Handler:
        add = self.add
        clock = time.perf_counter

        async def metered(request: web.BaseRequest) -> web.StreamResponse:
            t0 = clock()
            try:
                resp = await handler(request)
            except web.HTTPException as e:
                add(request.raw_path, e.status, clock() - t0)
                raise
            except Exception:
                add(request.raw_path, 500, clock() - t0)
                raise
            add(request.raw_path, resp.status, clock() - t0)
            return resp

        return metered

    def _tick(self) -> None:
        self._armed = False
        self.flush()

    def flush(self) -> None:
        """Move the counts into ``prometheus_client``'s values (this process's file)."""
        self._history.append((time.monotonic(), self.total))
        if not self.pending:
            return
        requests, duration = self._prometheus()
        pending, self.pending = self.pending, {}
        buckets, self.buckets = self.buckets, {}
        sums, self.sums = self.sums, {}
        for (route, code), n in pending.items():
            requests.labels(route, str(code)).inc(n)
        for route, counts in buckets.items():
            child = duration.labels(route)
            for i, n in enumerate(counts):
                if n:
                    child._buckets[i].inc(n)  # no public call adds n observations at once
            child._sum.inc(sums[route])

    def _prometheus(self) -> tuple[Any, Any]:
        if self._metrics is None:
            from prometheus_client import Counter, Histogram, values

            if not getattr(values.ValueClass, "_multiprocess", False) and os.environ.get(
                    "PROMETHEUS_MULTIPROC_DIR"):
                values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call] # imported before the variable was set
            self._metrics = (
                Counter("ipmirror_http_requests", "HTTP requests answered, by route and status code",
                        ["route", "code"], registry=None),
                Histogram("ipmirror_http_request_duration_seconds",
                          "Time to answer an HTTP request (until the handler returned), by route",
                          ["route"], buckets=BUCKETS, registry=None),
            )
        return self._metrics  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        """Requests so far and per second over the last minute (from the flushes' history)."""
        rate = 0.0
        if self._history:
            t0, n0 = self._history[0]
            dt = time.monotonic() - t0
            if dt > 0:
                rate = (self.total - n0) / dt
        return {"requests": self.total, "rate": round(rate, 3)}


_meter: tuple[int, Meter] | None = None


def process_meter(routes: Sequence[str]) -> Meter:
    """This process's meter (a forked child makes its own)."""
    global _meter
    if _meter is None or _meter[0] != os.getpid():
        _meter = (os.getpid(), Meter(routes))
    return _meter[1]

"""The cache's aiohttp application: ``/cache/<name>/…`` dispatched by the cache's type, and
``/by-hash/<algorithm>/<digest>``; error mapping and hostile-path checks for both.

Usage::

    client = HttpClient(cfg.http)            # serve (serving.py); outside it: Sessions()
    core = CacheCore(repo.cache_db, repo.store, repo.profile, repo.path / "caches", client)
    app = make_app(core, client)             # one per process; on /cache/ and /by-hash/
    add_routes(other_app, core, client)      # or on an app it shares

Adding an ecosystem: a module with ``async handle(request, core, settings, rest)`` in ``TYPES``.

Rules: a request whose raw path holds ``..``, ``%2e%2e`` (any case), NUL or another control
character (raw or percent-encoded) is refused with 400 before routing. Errors map to statuses
here only: ``UpstreamError`` its ``.status`` (502 by default, 404 for what the upstream or the
offline cache does not have), ``NotFound`` 404, ``Unacceptable`` 406, other ``InvalidInput`` 400,
anything else 500 (logged); each as one line of text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from ipmirror import __version__
from ipmirror.cache import pypi
from ipmirror.cache.core import CacheCore
from ipmirror.cache.db import CacheSettings
from ipmirror.cache.pypi_index import Unacceptable
from ipmirror.cache.respond import by_hash
from ipmirror.cache.upstream import Client
from ipmirror.errors import InvalidInput, NotFound, UpstreamError

log = logging.getLogger("ipmirror.cache")
CORE: web.AppKey[CacheCore] = web.AppKey("cache-core", CacheCore)
_HOSTILE = re.compile(r"\.\.|%2e%2e|%2e\.|\.%2e|%00|%[01][0-9a-f]|%7f|[\x00-\x1f\x7f]", re.IGNORECASE)
FLUSHER: web.AppKey[asyncio.Task[None]] = web.AppKey("cache-flusher", asyncio.Task)
USER_AGENT = f"ipmirror/{__version__}"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TypeHandler(Protocol):
    def __call__(self, request: web.Request, core: CacheCore, cs: CacheSettings,
                 rest: str) -> Awaitable[web.StreamResponse]: ...


TYPES: dict[str, TypeHandler] = {"pypi": pypi.handle}


def hostile(raw_path: str) -> bool:
    return _HOSTILE.search(raw_path.partition("?")[0]) is not None


def guarded(handler: Handler) -> Handler:
    async def run(request: web.Request) -> web.StreamResponse:
        return await guard(request, handler)
    return run


async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if hostile(request.raw_path):
        return web.Response(status=400, text="path with '..', NUL or control characters refused\n")
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except UpstreamError as e:
        return web.Response(status=e.status, text=f"{e}\n")
    except NotFound as e:
        return web.Response(status=404, text=f"{e}\n")
    except Unacceptable as e:
        return web.Response(status=406, text=f"{e}\n", headers={"Vary": "Accept"})
    except InvalidInput as e:
        return web.Response(status=400, text=f"{e}\n")
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("cache: internal error serving %s", request.path)
        return web.Response(status=500, text="internal error\n")


async def _cache(request: web.Request) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
    core = request.app[CORE]
    name = request.match_info["name"]
    cs = core.settings(name)
    if cs is None:
        raise NotFound(f"no cache named {name[:100]!r}")
    handler = TYPES.get(cs.type)
    if handler is None:
        raise NotFound(f"cache {name!r} has type {cs.type!r}, which this version does not serve")
    return await handler(request, core, cs, request.match_info["rest"])


async def _by_hash(request: web.Request) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
    return await by_hash(request, request.app[CORE])


class Sessions:
    """A plain upstream client (made on first use, on the running loop) for a cache app outside
    ``serve`` (tests, tools); ``serve`` gives the app the runtime's one ``HttpClient``."""

    def __init__(self, limit: int = 64) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def get(self, url: str, **kw: Any) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit), headers={"User-Agent": USER_AGENT})
        return self._session.get(url, **kw)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def make_app(core: CacheCore, client: Client | None = None) -> web.Application:
    app = web.Application(client_max_size=64 << 10)
    add_routes(app, core, client)
    return app


def add_routes(app: web.Application, core: CacheCore, client: Client | None = None) -> None:
    """The cache's routes and life cycle on ``app`` (its own, or one it shares); ``client`` is
    closed with the app when given."""
    app[CORE] = core
    app.router.add_route("*", "/cache/{name}/{rest:.*}", guarded(_cache))
    app.router.add_route("*", "/by-hash/{algo}/{digest}", guarded(_by_hash))

    async def start(app: web.Application) -> None:
        if core.writes:
            await asyncio.to_thread(core.fills.sweep)
        app[FLUSHER] = asyncio.create_task(core.run_flusher())

    async def stop(app: web.Application) -> None:
        app[FLUSHER].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await app[FLUSHER]
        await core.fills.aclose()
        core.flush()
        if client is not None:
            await client.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)

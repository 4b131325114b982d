"""The status app (aiohttp): the page, its JSON, health checks, metrics and mirror diffs.

Usage (``serving.py`` registers it as the app ``status``)::

    app = make_app(repo, cfg, server_status=lambda: ask("status"), meter=meter)

Routes (all GET/HEAD, none writes): ``/`` and ``/-/status`` (HTML), ``/-/status.json``,
``/-/healthy`` (the process answers), ``/-/ready`` (the store answers and the worker is not
shutting down; else 503), ``/-/metrics`` (Prometheus text; 404 when ``status.metrics`` is off),
``/-/mirrors/<name>/diff/<v1>..<v2>`` (the changes between two versions, at most ``MAX_CHANGES``).
Facts are gathered on a thread (LMDB reads, ``stat`` calls, the control channel).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from ipmirror.config import Config
from ipmirror.errors import InvalidInput, NotFound
from ipmirror.mirror.manager import Mirrors
from ipmirror.status import page
from ipmirror.status.collect import Source, collect
from ipmirror.status.meter import Meter
from ipmirror.status.sections import Section

log = logging.getLogger("ipmirror.status")
MAX_CHANGES = 5000
ServerStatus = Callable[[], dict[str, Any] | None]

_NOSTORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class _State:
    def __init__(self, source: Source, cfg: Config, server_status: ServerStatus,
                 sections: Sequence[Section], meter: Meter | None) -> None:
        self.source, self.cfg, self.server_status = source, cfg, server_status
        self.sections, self.meter = list(sections), meter
        self.stopping = False

    def facts(self) -> dict[str, Any]:
        try:
            server = self.server_status()
        except Exception as e:  # the page shows what it knows: a server that does not answer
            log.debug("server status unavailable: %s", e)
            server = None
        return collect(self.source, server, self.cfg.status, self.sections)


STATE: web.AppKey[_State] = web.AppKey("state", _State)


async def _thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn)


@web.middleware
async def _errors(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    try:
        resp: web.StreamResponse = await handler(request)
        return resp
    except NotFound as e:
        return web.Response(status=404, text=f"{e}\n")
    except InvalidInput as e:
        return web.Response(status=400, text=f"{e}\n")


async def html_status(request: web.Request) -> web.StreamResponse:
    st = request.app[STATE]
    facts = await _thread(st.facts)
    return web.Response(text=page.render(facts, st.sections), content_type="text/html", headers=_NOSTORE)


async def json_status(request: web.Request) -> web.StreamResponse:
    facts = await _thread(request.app[STATE].facts)
    return web.Response(text=json.dumps(facts, indent=1), content_type="application/json", headers=_NOSTORE)


async def healthy(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok\n", headers=_NOSTORE)


async def ready(request: web.Request) -> web.StreamResponse:
    st = request.app[STATE]
    if st.stopping:
        return web.Response(status=503, text="shutting down\n", headers=_NOSTORE)
    try:
        await _thread(st.source.store.stat)
    except Exception as e:
        return web.Response(status=503, text=f"store unavailable: {type(e).__name__}\n", headers=_NOSTORE)
    return web.Response(text="ready\n", headers=_NOSTORE)


async def metrics(request: web.Request) -> web.StreamResponse:
    st = request.app[STATE]
    if st.meter is None:
        raise NotFound("metrics are off (config status.metrics)")
    from ipmirror.status.exposition import scrape

    st.meter.flush()
    facts = await _thread(st.facts)
    body, ctype = scrape(facts, st.sections)
    resp = web.Response(body=body, headers=_NOSTORE)
    resp.headers["Content-Type"] = ctype
    return resp


async def mirror_diff(request: web.Request) -> web.StreamResponse:
    st = request.app[STATE]
    name = request.match_info["name"]
    a, sep, b = request.match_info["range"].partition("..")
    if not (sep and a.isdigit() and b.isdigit()):
        raise InvalidInput("a diff is /-/mirrors/NAME/diff/V1..V2 (version numbers)")
    v1, v2 = int(a), int(b)

    def changes() -> list[tuple[str, str]]:
        mirrors = Mirrors(st.source.mirror_db, st.source.store)
        it = mirrors.diff(name, v1, v2)
        return [(c.kind, c.path) for c in itertools.islice(it, MAX_CHANGES + 1)]

    out = await _thread(changes)
    return web.Response(text=page.diff_page(name, v1, v2, out[:MAX_CHANGES], len(out) > MAX_CHANGES),
                        content_type="text/html", headers=_NOSTORE)


def make_app(source: Source, cfg: Config, server_status: ServerStatus, *,
             sections: Sequence[Section] = (), meter: Meter | None = None) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=4096)
    state = _State(source, cfg, server_status, sections, meter)
    app[STATE] = state

    async def on_shutdown(app: web.Application) -> None:
        state.stopping = True

    app.on_shutdown.append(on_shutdown)
    r = app.router
    r.add_get("/", html_status)
    r.add_get("/-/status", html_status)
    r.add_get("/-/status.json", json_status)
    r.add_get("/-/healthy", healthy)
    r.add_get("/-/ready", ready)
    r.add_get("/-/metrics", metrics)
    r.add_get("/-/mirrors/{name}/diff/{range}", mirror_diff)
    return app


def app_status(app: web.Application) -> dict[str, Any]:
    """``AppSpec.status``: this worker's request meter."""
    meter = app[STATE].meter
    return {"meter": meter.status()} if meter is not None else {}

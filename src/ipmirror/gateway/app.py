"""The aiohttp application: routes, error mapping, CORS.

Usage::

    app = make_app(backend, GatewayConfig())
    web.run_app(app, host="127.0.0.1", port=8080)

Error mapping (one JSON-free, one-line text body): bad CIDs and paths 400, unknown content and
names 404, methods 405, everything unexpected 500 (logged with its traceback).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ipmirror.errors import Conflict, InvalidInput, NotFound, PathNotFound, UnsupportedFormat
from ipmirror.gateway.backend import Backend
from ipmirror.gateway.common import GatewayConfig, resolve_target, run_blocking, split_request_path
from ipmirror.gateway.path import serve_unixfs

log = logging.getLogger("ipmirror.gateway")
BACKEND: web.AppKey[Backend] = web.AppKey("backend", Backend)
CONFIG: web.AppKey[GatewayConfig] = web.AppKey("config", GatewayConfig)

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Range, User-Agent, X-Requested-With",
    "Access-Control-Expose-Headers": "Content-Range, Content-Length, X-Ipfs-Path, X-Ipfs-Roots, "
                                     "X-Chunked-Output, X-Stream-Output",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as e:
        e.headers.update(CORS)
        raise
    except (PathNotFound, NotFound) as e:
        return web.Response(status=404, text=f"{e}\n", headers=CORS)
    except UnsupportedFormat as e:
        return web.Response(status=501 if "codec" in str(e) else 400, text=f"{e}\n", headers=CORS)
    except Conflict as e:
        return web.Response(status=409, text=f"{e}\n", headers=CORS)
    except InvalidInput as e:
        return web.Response(status=400, text=f"{e}\n", headers=CORS)
    except (ConnectionResetError, BrokenPipeError):
        raise
    except Exception:
        log.exception("internal error serving %s", request.path)
        return web.Response(status=500, text="internal error\n", headers=CORS)
    if not resp.prepared:
        for k, v in CORS.items():
            resp.headers.setdefault(k, v)
    return resp


async def content(request: web.Request) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
    backend = request.app[BACKEND]
    cfg = request.app[CONFIG]
    namespace = request.match_info["ns"]
    rest = split_request_path(request.match_info.get("rest", ""))
    if not rest:
        raise web.HTTPBadRequest(text=f"missing CID or name after /{namespace}/\n")
    head, tail = rest[0], rest[1:]
    target = await run_blocking(lambda: resolve_target(backend, namespace, head, tail))
    return await serve_unixfs(request, backend, cfg, target)


async def options(request: web.Request) -> web.StreamResponse:
    return web.Response(status=200, headers=CORS)


def make_app(backend: Backend, cfg: GatewayConfig | None = None) -> web.Application:
    app = web.Application(middlewares=[errors], client_max_size=64 << 10)
    app[BACKEND] = backend
    app[CONFIG] = cfg or GatewayConfig()
    app.router.add_route("OPTIONS", "/{tail:.*}", options)
    app.router.add_route("*", r"/{ns:ipfs|ipns}/{rest:.*}", content)
    return app

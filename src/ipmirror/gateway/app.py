"""The aiohttp application: routes, format dispatch, error mapping, CORS.

Usage::

    app = make_app(backend, GatewayConfig())
    web.run_app(app, host="127.0.0.1", port=8080)

Routes: ``/ipfs/…`` and ``/ipns/…`` (one handler per response format: unixfs_handler.py for
files and directories, trustless.py for raw blocks and CARs, tar.py, ipns_routes.py for signed
records), and ``/routing/v1/…`` (delegated_routing.py). Paths are resolved by unixfs/resolve.py
(one ``Resolver`` with its decoded-directory cache per app), repeated paths answered by
pathcache.py, repeated small files by replay.py.

Error mapping, here and only here (the layers below raise the project's errors, errors.py; one
JSON-free, one-line text body): unknown content, paths and names 404; a block of a codec we do
not read (``UnsupportedCodec``) 501; nothing acceptable to produce (``Unacceptable``) 406; a name
that exists already (``Conflict``) 409; other bad input (CIDs, paths, parameters) 400; methods 405;
a damaged block (``Corrupt``: its stored bytes do not match its hash, found by the backend's
hash-on-read check) 500 without a traceback (store/verified.py logs and counts it); a store that
cannot be used (``StoreError``: a damaged database) 500, logged in one line; everything
unexpected 500 (logged with its traceback). An error after a response has started
streaming cannot change its status: it is logged in one line and the connection is closed before
the final chunk, so the client sees a truncated body.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ipmirror.codec.cid import CID
from ipmirror.errors import (
    Conflict,
    Corrupt,
    InvalidInput,
    NotFound,
    PathNotFound,
    StoreError,
    UnsupportedCodec,
)
from ipmirror.gateway.backend import Backend
from ipmirror.gateway.config import GatewayConfig
from ipmirror.gateway.delegated_routing import add_routes, preflight, url_multiaddr
from ipmirror.gateway.headers import decorate
from ipmirror.gateway.ipns_routes import serve_ipns_record
from ipmirror.gateway.negotiate import CODEC_FORMATS, Negotiated, Unacceptable, negotiate, plain_accept
from ipmirror.gateway.pathcache import PathCache, resolve_cached
from ipmirror.gateway.replay import REPLAY, Prebuilt, Replay
from ipmirror.gateway.streaming import STARTED, run_blocking
from ipmirror.gateway.tar import serve_tar
from ipmirror.gateway.target import resolve_target, split_request_path
from ipmirror.gateway.trustless import PathRecorder, serve_block, serve_car
from ipmirror.gateway.unixfs_handler import serve_unixfs
from ipmirror.unixfs.resolve import NodeCache, Resolver

log = logging.getLogger("ipmirror.gateway")
BACKEND: web.AppKey[Backend] = web.AppKey("backend", Backend)
CONFIG: web.AppKey[GatewayConfig] = web.AppKey("config", GatewayConfig)
RESOLVER: web.AppKey[Resolver] = web.AppKey("resolver", Resolver)
PATHS: web.AppKey[PathCache] = web.AppKey("paths", PathCache)

_CODECS = {codec: name for name, codec in CODEC_FORMATS.items()}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _cut_short(request: web.Request, e: BaseException) -> web.StreamResponse:
    """A failure while streaming: close the connection so the body stays visibly incomplete.
    A client that went away is routine (debug level): it must not flood the log."""
    if isinstance(e, ConnectionError):
        log.debug("client went away during %s", request.path_qs)
    else:
        log.warning("response to %s cut short: %s", request.path_qs, e)
    if request.transport is not None:
        request.transport.close()
    return web.StreamResponse()  # its write fails on the closed transport; aiohttp expects that


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map errors to statuses, and give every response not streamed yet the common headers
    (streamed ones got them in ``start_stream``, replayed ones have them in their head)."""
    try:
        resp = await handler(request)
    except Exception as e:
        if request.get(STARTED):
            return _cut_short(request, e)
        if isinstance(e, web.HTTPException):
            decorate(request, e)
            raise
        resp = _error_response(request, e)
    if not resp.prepared and type(resp) is not Prebuilt:
        decorate(request, resp)
    return resp


def _error_response(request: web.Request, e: Exception) -> web.Response:
    if isinstance(e, (PathNotFound, NotFound)):
        return web.Response(status=404, text=f"{e}\n")
    if isinstance(e, UnsupportedCodec):
        return web.Response(status=501, text=f"{e}\n")
    if isinstance(e, Unacceptable):
        return web.Response(status=406, text=f"{e}\n")
    if isinstance(e, Conflict):
        return web.Response(status=409, text=f"{e}\n")
    if isinstance(e, InvalidInput):
        return web.Response(status=400, text=f"{e}\n")
    if isinstance(e, Corrupt):  # never cacheable: an error answer carries no Cache-Control
        return web.Response(status=500, text=f"{e}\n")
    if isinstance(e, StoreError):  # e.g. a damaged database: the message says it all
        log.error("error serving %s: %s", request.path, e)
        return web.Response(status=500, text="internal error\n")
    log.exception("internal error serving %s", request.path)
    return web.Response(status=500, text="internal error\n")


async def content(request: web.Request) -> web.StreamResponse:
    replayed = request.app[REPLAY].answer(request, request.app[BACKEND])
    if replayed is not None:
        return replayed
    if request.method not in ("GET", "HEAD"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
    backend = request.app[BACKEND]
    cfg = request.app[CONFIG]
    namespace = request.match_info["ns"]
    rest = split_request_path(request.match_info.get("rest", ""))
    if not rest:
        raise web.HTTPBadRequest(text=f"missing CID or name after /{namespace}/\n")
    head, tail = rest[0], rest[1:]
    accept = request.headers.getall("Accept", [])
    fmt = plain_accept(tuple(accept)) if not request.query_string else negotiate(request.query, accept)
    if fmt.format == "ipns-record":
        return await serve_ipns_record(request, backend, namespace, head, tail, fmt)
    if namespace == "ipfs" and "only-if-cached" in request.headers.get("Cache-Control", "").lower():
        root = CID.parse(head)
        if not await run_blocking(lambda: backend.has(root)):
            raise web.HTTPPreconditionFailed()
    if fmt.format == "car":
        rec = PathRecorder(backend.get)  # no cache: every block proving the path is read, in order
        target = await run_blocking(lambda: resolve_target(backend, Resolver(rec), namespace, head, tail))
        return await serve_car(request, backend, target, rec.blocks, fmt)
    app = request.app
    resolver = app[RESOLVER]
    target, node = await resolve_cached(backend, app[PATHS], resolver, namespace, head, tail)
    if fmt.format == "tar":
        return await serve_tar(request, backend, target, fmt)
    if fmt.format:
        return await serve_block(request, backend, target, fmt)
    if target.cid.codec in _CODECS:  # JSON/CBOR data: the block, typed by its codec (path-gateway.md)
        return await serve_block(request, backend, target, Negotiated(_CODECS[target.cid.codec]))
    return await serve_unixfs(request, backend, resolver, cfg, target, node)


async def options(request: web.Request) -> web.StreamResponse:
    if request.path.startswith("/routing/"):
        return preflight()
    return web.Response(status=200)


def make_app(backend: Backend, cfg: GatewayConfig | None = None) -> web.Application:
    cfg = cfg or GatewayConfig()
    if cfg.public_url:
        url_multiaddr(cfg.public_url)  # a bad --public-url fails here, not in every routing answer
    app = web.Application(middlewares=[errors], client_max_size=64 << 10)
    app[BACKEND] = backend
    app[CONFIG] = cfg
    app[RESOLVER] = Resolver(backend.get, NodeCache())
    app[PATHS] = PathCache()
    app[REPLAY] = Replay()
    app.router.add_route("OPTIONS", "/{tail:.*}", options)
    app.router.add_route("*", r"/{ns:ipfs|ipns}/{rest:.*}", content)
    add_routes(app, BACKEND, CONFIG)
    return app

"""Delegated routing v1 (ipfs/specs http-routing-v1.md, IPIP-484 filters, IPIP-513): this node
answers for itself, as an HTTP gateway provider of what its store holds.

Usage::

    add_routes(app, backend_key, config_key)    # /routing/v1/… (called by make_app)

Rules kept here:

- ``/providers/{cid}`` lists this node (schema ``peer``, its ``self`` key as ID, protocol
  ``transport-ipfs-gateway-http``) when the block is in the store, and nothing otherwise: an
  empty result is ``200`` (IPIP-513), cached briefly. ``/peers/{id}`` knows this node only.
- ``Addrs`` is the gateway's public URL as a multiaddr (``/dns/host/tcp/443/https``), or else the
  address the request came in on (``/ip4/127.0.0.1/tcp/8080/http``), so it is right for the client
  asking even when we listen on every interface.
- JSON unless the client asks for ``application/x-ndjson``; other Accept values are 400, unknown
  paths 400, known paths we do not serve (``PUT /providers``, DHT) 501, as the spec says.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import time
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import quote, urlsplit

from aiohttp import web

from ipmirror.codec.cid import CID
from ipmirror.codec.peerid import PeerID
from ipmirror.errors import InvalidCID, InvalidInput, UnsupportedFormat
from ipmirror.gateway import ipns_routes
from ipmirror.gateway.backend import Backend
from ipmirror.gateway.config import GatewayConfig
from ipmirror.gateway.streaming import run_blocking

PROTOCOL: Final = "transport-ipfs-gateway-http"
JSON_TYPE: Final = "application/json"
NDJSON_TYPE: Final = "application/x-ndjson"
MAX_AGE_FOUND: Final = 300
MAX_AGE_NONE: Final = 15
MAX_STALE: Final = 48 * 3600
CORS_METHODS: Final = "GET, PUT, OPTIONS"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def url_multiaddr(url: str) -> str:
    """``https://host[:port][/path]`` as a multiaddr: ``/dns/host/tcp/443/https[/http-path/…]``."""
    u = urlsplit(url if "://" in url else "http://" + url)
    try:
        port = u.port or (443 if u.scheme == "https" else 80)
    except ValueError:
        port = 0
    if u.scheme not in ("http", "https") or not u.hostname or not port:
        raise InvalidInput(f"public URL {url!r} is not an http(s) URL")
    try:
        ip = ipaddress.ip_address(u.hostname)
        host = f"/ip{ip.version}/{ip}"
    except ValueError:
        host = f"/dns/{u.hostname}"
    path = u.path.strip("/")
    return f"{host}/tcp/{port}/{u.scheme}" + (f"/http-path/{quote(path, safe='')}" if path else "")


def _local_multiaddr(request: web.Request) -> str | None:
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    if not isinstance(sock, tuple) or len(sock) < 2:
        return None  # a Unix socket: no address to give
    ip = ipaddress.ip_address(str(sock[0]).split("%")[0])
    return f"/ip{ip.version}/{ip}/tcp/{sock[1]}/http"


def _filter(values: str) -> list[str]:
    return [v.strip().lower() for v in values.split(",") if v.strip()]


def _filter_addrs(addrs: list[str], spec: list[str]) -> list[str] | None:
    """IPIP-484 ``filter-addrs``: the addresses that pass, or None to drop the record."""
    if not spec:
        return addrs
    if not addrs:
        return addrs if "unknown" in spec else None
    pos = [s for s in spec if not s.startswith("!") and s != "unknown"]
    neg = [s[1:] for s in spec if s.startswith("!")]
    out = []
    for a in addrs:
        names = {p.lower() for p in a.split("/")[1::2]}  # protocol names sit at odd positions
        if any(n in names for n in neg):
            continue
        if pos and not any(p in names for p in pos):
            continue
        out.append(a)
    return out or None


def _peer_record(request: web.Request, cfg: GatewayConfig, peer: PeerID) -> dict[str, object] | None:
    q = request.query
    protocols = _filter(q.get("filter-protocols", ""))
    if protocols and PROTOCOL not in protocols:
        return None
    local = _local_multiaddr(request)
    addrs = [url_multiaddr(cfg.public_url)] if cfg.public_url else [local] if local else []
    kept = _filter_addrs(addrs, _filter(q.get("filter-addrs", "")))
    if kept is None:
        return None
    return {"Addrs": kept, "ID": peer.to_base58(), "Protocols": [PROTOCOL], "Schema": "peer"}


def _response_type(request: web.Request) -> str:
    kinds = [m.split(";")[0].strip().lower() for h in request.headers.getall("Accept", [])
             for m in h.split(",")]
    if not kinds or JSON_TYPE in kinds or "*/*" in kinds or "application/*" in kinds:
        return NDJSON_TYPE if NDJSON_TYPE in kinds else JSON_TYPE
    if NDJSON_TYPE in kinds:
        return NDJSON_TYPE
    raise web.HTTPBadRequest(text=f"Accept {JSON_TYPE} or {NDJSON_TYPE}\n")


def _records_response(request: web.Request, key: str, records: list[dict[str, object]]) -> web.Response:
    kind = _response_type(request)
    max_age = MAX_AGE_FOUND if records else MAX_AGE_NONE
    headers = {"Vary": "Accept", "Access-Control-Allow-Methods": CORS_METHODS,
               "Cache-Control": f"public, max-age={max_age}, stale-while-revalidate={MAX_STALE}, "
                                f"stale-if-error={MAX_STALE}",
               "Last-Modified": email.utils.formatdate(time.time(), usegmt=True)}
    if kind == NDJSON_TYPE:
        body = "".join(json.dumps(r) + "\n" for r in records)
    else:
        body = json.dumps({key: records}) + "\n"
    return web.Response(body=body.encode(), content_type=kind, headers=headers)


def preflight() -> web.Response:
    """The answer to a CORS preflight (``OPTIONS``) under /routing/v1/."""
    return web.Response(status=200, headers={"Access-Control-Allow-Methods": CORS_METHODS})


def add_routes(app: web.Application, backend_key: web.AppKey[Backend],
               config_key: web.AppKey[GatewayConfig]) -> None:
    async def providers(request: web.Request) -> web.StreamResponse:
        text = request.match_info["cid"]
        try:
            cid = CID.parse(text)
        except InvalidCID as e:
            raise web.HTTPBadRequest(text=f"not a CID: {e}\n") from None
        backend = request.app[backend_key]
        found = await run_blocking(lambda: backend.has(cid))
        record = None
        if found:
            peer = await run_blocking(backend.peer_id)
            record = _peer_record(request, request.app[config_key], peer)
        return _records_response(request, "Providers", [record] if record else [])

    async def peers(request: web.Request) -> web.StreamResponse:
        text = request.match_info["peer"]
        try:
            wanted = PeerID.parse(text)
        except (InvalidInput, UnsupportedFormat) as e:
            raise web.HTTPBadRequest(text=f"not a peer ID: {e}\n") from None
        backend = request.app[backend_key]
        peer = await run_blocking(backend.peer_id)
        record = _peer_record(request, request.app[config_key], peer) if wanted == peer else None
        return _records_response(request, "Peers", [record] if record else [])

    async def ipns_get(request: web.Request) -> web.StreamResponse:
        return await ipns_routes.routing_get(request, request.app[backend_key])

    async def ipns_put(request: web.Request) -> web.StreamResponse:
        return await ipns_routes.routing_put(request, request.app[backend_key])

    async def not_implemented(request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":  # these routes are tried before the app's OPTIONS route
            return preflight()
        raise web.HTTPNotImplemented(text=f"{request.method} {request.path} is not supported here\n")

    async def unknown(request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return preflight()
        raise web.HTTPBadRequest(text=f"unknown delegated routing path {request.path}\n")

    r = app.router
    r.add_get("/routing/v1/providers/{cid}", providers)
    r.add_get("/routing/v1/peers/{peer}", peers)
    r.add_get("/routing/v1/ipns/{name}", ipns_get)
    r.add_put("/routing/v1/ipns/{name}", ipns_put)
    for path in ("/routing/v1/providers", "/routing/v1/peers", "/routing/v1/providers/{cid}",
                 "/routing/v1/peers/{peer}", "/routing/v1/ipns/{name}",
                 "/routing/v1/dht/closest/peers/{key}"):
        r.add_route("*", path, not_implemented)
    r.add_route("*", "/routing/v1/{tail:.*}", unknown)

"""The URL map: which app answers which path prefix on a listener (the table in docs/design.md).

Usage::

    check(listener_apps)                       # overlapping prefixes on one listener: InvalidInput
    handler = dispatch(first_handler, first_prefixes, [(prefix, app), ...])

A listener serves the apps its config names (``server.listeners[i].apps``). The first is the
listener's root application: aiohttp's server runs it (its routing and middlewares) for the
prefixes it declares. Every further app answers the prefixes it declares (longest first),
each with its own routing and middlewares, chosen before any routing. Any other path is 404.
The prefix ``/`` is special: it claims the path ``/`` alone (a status page at the root), so it
overlaps no other claim.
Prefixes reserved for coming issues are listed in ``RESERVED``: an app claims one by
declaring it; until then those paths answer 404 like any unknown path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Final

from aiohttp import web

from ipmirror.errors import InvalidInput
from ipmirror.server.plan import Handler

RESERVED: Final = (
    "/-/healthy", "/-/ready", "/-/metrics", "/-/status", "/-/status.json", "/-/mirrors/",  # operate
    "/cache/", "/by-hash/",  # the cache issues
    "/pinning/",  # the Pinning Service API (follow issue)
)


def check(claims: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Refuse two apps of one listener claiming the same or nested prefixes."""
    seen: list[tuple[str, str]] = []
    for name, prefixes in claims:
        for p in prefixes:
            if not p.startswith("/"):
                raise InvalidInput(f"app {name}: prefix {p!r} must start with '/'")
            for other, q in seen:
                nested = p == q if "/" in (p, q) else (p.startswith(q) or q.startswith(p))
                if other != name and nested:
                    raise InvalidInput(f"apps {other} and {name} both claim {min(p, q, key=len)!r}")
            seen.append((name, p))


def dispatch(root: Handler, root_prefixes: Sequence[str],
             mounted: Sequence[tuple[str, web.Application]]) -> Handler:
    """``root`` (the server's handler for the listener's first app), preceded by a prefix
    match for the others: a request under one of their prefixes goes to that application's
    own request handling (routing and middlewares), with ``request.app`` being it. A path no
    app claims is answered 404 here (an ``OPTIONS`` preflight goes to the root app)."""
    table = sorted(((p, app._handle) for p, app in mounted if p != "/"), key=lambda x: -len(x[0]))
    exact: dict[str, Handler] = {p: app._handle for p, app in mounted if p == "/"}  # type: ignore[misc]
    claimed = tuple(p for p in root_prefixes if p != "/")
    if "/" in root_prefixes:
        exact["/"] = root

    def by_prefix(request: web.BaseRequest) -> Awaitable[web.StreamResponse]:
        # a plain function handing on the chosen handler's coroutine: no extra frame per request
        path = request.rel_url.raw_path
        if path.startswith(claimed) or request.method == "OPTIONS":
            return root(request)
        for prefix, handle in table:
            if path.startswith(prefix):
                return handle(request)  # type: ignore[arg-type]
        only = exact.get(path)
        if only is not None:
            return only(request)
        return _not_found()

    return by_prefix


async def _not_found() -> web.StreamResponse:
    return web.Response(status=404, text="404: Not Found\n")

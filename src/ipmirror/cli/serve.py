"""``ipmirror serve``: its options, as overrides of the repository's configuration. The runtime
is ``server/`` and its composition ``serving.py``, imported when serving, so other commands do
not load asyncio, aiohttp and the gateway."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable

from ipmirror.cli.common import Ctx
from ipmirror.config import Config, Listener
from ipmirror.errors import InvalidInput


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="serve the store over HTTP (path + trustless gateway)")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="serve the gateway on this address only (default: config server.listeners, "
                        "127.0.0.1:8080; port 0 picks a free one)")
    p.add_argument("--port-file", metavar="PATH",
                   help="once listening, write the bound port to PATH (for scripts and tests using port 0)")
    p.add_argument("--public-url", help="the URL clients use, when behind a reverse proxy")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="HTTP worker processes sharing the port (default: config server.workers, or "
                        "the number of usable CPUs, at most 4)")
    p.add_argument("--json", action="store_true", help="access log as JSON lines")
    p.add_argument("--no-access-log", action="store_true")
    p.add_argument("--read-only", action="store_true",
                   help="run no service that writes to the repository (no republishing, no watching)")
    p.add_argument("--republish-every", type=float, default=None, metavar="SECONDS",
                   help="how often to check local IPNS records (default: config republish.interval, 3600)")
    p.add_argument("--republish-within", type=float, default=None, metavar="HOURS",
                   help="re-sign records that expire within this many hours (default: config "
                        "republish.within, 24)")
    p.add_argument("--swarm", action="append", metavar="MULTIADDR",
                   help="run the libp2p host listening on this address (/ip4/127.0.0.1/tcp/4001; "
                        "repeatable; default: config swarm.listen, none)")
    p.set_defaults(func=serve)


def _overrides(a: argparse.Namespace) -> Callable[[Config], Config]:
    """The command line's settings, applied over the configuration (on every reload too)."""
    if a.workers is not None and a.workers < 1:
        raise InvalidInput("--workers must be at least 1")

    def apply(cfg: Config) -> Config:
        s, r = cfg.server, cfg.republish
        if a.listen is not None:
            s = dataclasses.replace(s, listeners=(Listener(a.listen, ("gateway",)),))
        if a.workers is not None:
            s = dataclasses.replace(s, workers=a.workers)
        if a.public_url is not None:
            s = dataclasses.replace(s, public_url=a.public_url)
        if a.no_access_log or a.json:
            s = dataclasses.replace(s, access_log="off" if a.no_access_log else "json")
        if a.republish_every is not None:
            r = dataclasses.replace(r, interval=a.republish_every)
        if a.republish_within is not None:
            r = dataclasses.replace(r, within=a.republish_within)
        sw = cfg.swarm if a.swarm is None else dataclasses.replace(cfg.swarm, listen=tuple(a.swarm))
        return dataclasses.replace(cfg, server=s, republish=r, swarm=sw)

    return apply


def serve(ctx: Ctx) -> int:
    from ipmirror.server import runtime
    from ipmirror.serving import serve_plan

    a = ctx.args
    apply = _overrides(a)
    if a.listen is not None:
        runtime.parse_address(a.listen)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    plan = serve_plan(ctx.repo_path, apply, read_only=a.read_only, port_file=a.port_file or "")
    return runtime.serve(plan, ctx.warn)

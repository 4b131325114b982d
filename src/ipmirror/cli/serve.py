"""``ipmirror serve``: its options. The server itself is in ``cli/serving.py``, imported when it
runs, so other commands do not load asyncio, aiohttp and the gateway."""

from __future__ import annotations

import argparse

from ipmirror.cli.common import Ctx


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="serve the store over HTTP (path + trustless gateway)")
    p.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                   help="address to bind (default 127.0.0.1:8080; port 0 picks a free one)")
    p.add_argument("--port-file", metavar="PATH",
                   help="once listening, write the bound port to PATH (for scripts and tests using port 0)")
    p.add_argument("--public-url", default="", help="the URL clients use, when behind a reverse proxy")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="server processes sharing the port (default: the number of usable CPUs, "
                        "at most 4)")
    p.add_argument("--json", action="store_true", help="access log as JSON lines")
    p.add_argument("--no-access-log", action="store_true")
    p.add_argument("--republish-every", type=float, default=3600.0, metavar="SECONDS",
                   help="how often to check local IPNS records (default 3600)")
    p.add_argument("--republish-within", type=float, default=24.0, metavar="HOURS",
                   help="re-sign records that expire within this many hours (default 24)")
    p.set_defaults(func=serve)



def serve(ctx: Ctx) -> int:
    from ipmirror.cli.serving import serve as run

    return run(ctx)

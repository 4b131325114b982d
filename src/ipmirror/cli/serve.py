"""``ipmirror serve``: the one long-running process — the HTTP gateway, and republishing the
IPNS records of local keys well before they expire."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_log import AccessLogger

from ipmirror.cli.common import Ctx
from ipmirror.errors import InvalidInput
from ipmirror.gateway.app import make_app
from ipmirror.gateway.common import GatewayConfig
from ipmirror.node import Repo

DAY_NS = 24 * 3600 * 1_000_000_000


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="serve the store over HTTP (path + trustless gateway)")
    p.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                   help="address to bind (default 127.0.0.1:8080; port 0 picks a free one)")
    p.add_argument("--port-file", metavar="PATH",
                   help="once listening, write the bound port to PATH (for scripts and tests using port 0)")
    p.add_argument("--public-url", default="", help="the URL clients use, when behind a reverse proxy")
    p.add_argument("--json", action="store_true", help="access log as JSON lines")
    p.add_argument("--no-access-log", action="store_true")
    p.add_argument("--republish-every", type=float, default=3600.0, metavar="SECONDS",
                   help="how often to check local IPNS records (default 3600)")
    p.add_argument("--republish-within", type=float, default=24.0, metavar="HOURS",
                   help="re-sign records that expire within this many hours (default 24)")
    p.set_defaults(func=serve)


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InvalidInput(f"--listen takes HOST:PORT, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class _JsonAccess(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, t: float) -> None:
        self.logger.info(json.dumps({"time": time.time(), "remote": request.remote, "method": request.method,
                                     "path": request.path_qs, "status": response.status,
                                     "bytes": response.body_length, "seconds": round(t, 6)}))


async def _republisher(repo: Repo, every: float, within_ns: int, ctx: Ctx) -> None:
    while True:
        try:
            done = await asyncio.get_running_loop().run_in_executor(
                None, lambda: repo.names.republish(within_ns=within_ns))
            for p in done:
                ctx.warn(f"republished {p.name} -> {p.value} (sequence {p.sequence})")
        except Exception as e:  # keep serving; say why
            ctx.warn(f"republishing failed: {e}")
        await asyncio.sleep(every)


def _bind(host: str, port: int, port_file: str | None) -> socket.socket:
    """A listening socket; with ``port_file``, its port is written there (atomically) once it is
    listening, so a script that waits for the file can connect at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=128)
    except OSError as e:
        raise InvalidInput(f"cannot listen on {host}:{port}: {e.strerror}") from None
    if port_file:
        tmp = Path(f"{port_file}.tmp")
        tmp.write_text(f"{sock.getsockname()[1]}\n")
        os.replace(tmp, port_file)
    return sock


def serve(ctx: Ctx) -> int:
    a = ctx.args
    host, port = _listen(a.listen)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    with ctx.open_repo() as repo:
        app = make_app(repo.gateway_backend(), GatewayConfig(public_url=a.public_url))

        async def start_bg(app: web.Application) -> None:
            app["republisher"] = asyncio.create_task(
                _republisher(repo, a.republish_every, int(a.republish_within * 3600e9), ctx))

        async def stop_bg(app: web.Application) -> None:
            app["republisher"].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await app["republisher"]

        app.on_startup.append(start_bg)
        app.on_cleanup.append(stop_bg)
        access = None if a.no_access_log else logging.getLogger("ipmirror.access")
        sock = _bind(host, port, a.port_file)
        web.run_app(app, sock=sock, access_log=access,
                    access_log_class=_JsonAccess if a.json else AccessLogger,
                    print=lambda msg: ctx.warn(msg.strip()), shutdown_timeout=10, handle_signals=True)
    return 0

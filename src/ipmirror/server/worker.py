"""An HTTP worker process: serves every listener's apps on the sockets the supervisor bound.

Usage (in a forked child, see ``server/supervisor.py``)::

    code = run_worker(plan, config, sockets, channel_socket)

The worker opens its own resources (``plan.open()``: the repository), builds each listener's
applications, and serves until SIGTERM/SIGINT or until its channel to the supervisor closes
(the supervisor is gone), then lets requests under way finish (10 s). Event loop: uvloop
where installed (~5–10% less CPU per request than asyncio's, measured).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Sequence
from typing import Any, Generic

from aiohttp import web

from ipmirror.config import Config, Listener
from ipmirror.gateway.accesslog import AccessSink
from ipmirror.server.channel import Channel
from ipmirror.server.plan import AppSpec, Plan, R
from ipmirror.server.protocol import GuardedSite, one_arena
from ipmirror.server.urlmap import check, dispatch

log = logging.getLogger("ipmirror.serve")


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # not installed for this platform: asyncio's own loop works too
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_worker(plan: Plan[R], config: Config, socks: Sequence[socket.socket], chan: socket.socket) -> int:
    one_arena()  # memory of stalled readers can be given back (server/protocol.py, rule 3)
    with plan.open() as res, asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(_Worker(plan, config, res).serve(socks, chan))
    return 0


class _Worker(Generic[R]):
    def __init__(self, plan: Plan[R], config: Config, res: R) -> None:
        self.plan, self.config, self.res = plan, config, res
        self.built: list[tuple[str, AppSpec[R], web.Application]] = []  # (listener, spec, app)
        self.runners: list[web.AppRunner] = []
        self.listening: list[tuple[str, web.AppRunner]] = []  # (address, the listener's runner)
        self.sinks: list[AccessSink] = []

    async def serve(self, socks: Sequence[socket.socket], chan: socket.socket) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: None)  # reloads come on the channel
        channel = Channel(chan, {"status": self.status}, on_close=stop.set)
        try:
            for listener, sock in zip(self.config.server.listeners, socks, strict=True):
                await self._start(listener, sock)
            await channel.start()
            channel.event("ready")
            await stop.wait()
        finally:
            await channel.close()
            for r in self.runners:
                await r.cleanup()
            for s in self.sinks:
                s.flush()

    async def _start(self, listener: Listener, sock: socket.socket) -> None:
        specs = []
        for name in listener.apps:
            spec = self.plan.apps.get(name)
            if spec is None:
                raise ValueError(f"listener {listener.address}: unknown app {name!r}")  # checked before
            specs.append(spec)
        check([(s.name, s.prefixes) for s in specs])
        apps = [(s, s.build(self.res, self.config)) for s in specs]
        host, port = sock.getsockname()[:2]
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.built += [(address, s, a) for s, a in apps]
        root_spec, root = apps[0]
        mounted = []
        for spec, app in apps[1:]:
            r = web.AppRunner(app, access_log=None)
            await r.setup()  # startup signals, frozen; served through the root's server below
            self.runners.append(r)
            mounted += [(p, app) for p in spec.prefixes]
        access = self.config.server.access_log
        if access == "off":
            runner = web.AppRunner(root, access_log=None, shutdown_timeout=10)
        else:
            sink = AccessSink(logging.getLogger("ipmirror.access"), json_lines=access == "json")
            self.sinks.append(sink)
            runner = web.AppRunner(root, access_log=sink.logger, access_log_class=sink.logger_class(),
                                   shutdown_timeout=10)
        await runner.setup()
        self.runners.insert(0, runner)
        self.listening.append((address, runner))
        if runner.server is not None:  # app hooks before aiohttp's routing (server/urlmap.py)
            handler = dispatch(runner.server.request_handler, root_spec.prefixes, mounted)
            if root_spec.front is not None:
                handler = root_spec.front(root, handler)
            runner.server.request_handler = handler
        await GuardedSite(runner, sock, header_timeout=self.config.server.header_timeout).start()

    async def status(self, args: dict[str, Any]) -> dict[str, Any]:
        apps: dict[str, Any] = {}
        for address, spec, app in self.built:
            apps.setdefault(spec.name, {"listeners": []})["listeners"].append(address)
            if spec.status is not None:
                apps[spec.name].update(spec.status(app))
        listeners = [{"address": address, "requests": r.server.requests_count if r.server else 0,
                      "connections": len(r.server.connections) if r.server else 0}
                     for address, r in self.listening]
        return {"apps": apps, "listeners": listeners}

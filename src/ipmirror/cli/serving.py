"""Running ``ipmirror serve`` (its options are in ``cli/serve.py``): the one long-running
service — the HTTP gateway, and republishing the IPNS records of local keys well before they
expire.

With ``--workers N`` (N > 1) the parent binds the socket, forks N workers that all accept on it,
and only supervises: it forwards SIGTERM/SIGINT/SIGHUP to them and waits; if one dies, it stops
the others and exits 1 (a service manager restarts the lot); if the parent dies, the workers notice
within a second and stop. Rules:

1. No LMDB environment crosses a fork: the parent opens the repository only to make the node key,
   and closes it before forking; every worker opens its own.
2. Worker 0 alone runs the republisher, so records are re-signed once, not N times.
3. With N = 1 the same worker code runs in the one process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ipmirror.cli.common import Ctx
from ipmirror.errors import InvalidInput

if TYPE_CHECKING:  # the server's modules load when serving, not for every other command
    from aiohttp import web

    from ipmirror.node import Repo

DAY_NS = 24 * 3600 * 1_000_000_000
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InvalidInput(f"--listen takes HOST:PORT, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


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
    listening, so a script that waits for the file can connect at once (connections wait in the
    backlog until a worker accepts them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=1024)
    except OSError as e:
        raise InvalidInput(f"cannot listen on {host}:{port}: {e.strerror}") from None
    if port_file:
        tmp = Path(f"{port_file}.tmp")
        tmp.write_text(f"{sock.getsockname()[1]}\n")
        os.replace(tmp, port_file)
    return sock


def default_workers() -> int:
    return max(1, min(4, len(os.sched_getaffinity(0))))


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # not installed for this platform: asyncio's own loop works too
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _serve_app(app: web.Application, sock: socket.socket, a: argparse.Namespace,
                     parent: int | None) -> None:
    """Serve ``app`` on ``sock`` until SIGTERM or SIGINT (or, with ``parent``, until that process
    is gone), then finish requests under way (10 s)."""
    from aiohttp import web

    from ipmirror.gateway.accesslog import AccessSink
    from ipmirror.gateway.app import BACKEND
    from ipmirror.gateway.replay import REPLAY, replay_first

    if a.no_access_log:
        sink = None
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=10)
    else:
        sink = AccessSink(logging.getLogger("ipmirror.access"), json_lines=a.json)
        runner = web.AppRunner(app, access_log=sink.logger, access_log_class=sink.logger_class(),
                               shutdown_timeout=10)
    await runner.setup()
    if runner.server is not None:  # replayed answers before routing (gateway/replay.py)
        runner.server.request_handler = replay_first(app[REPLAY], app[BACKEND], runner.server.request_handler)
    try:
        await web.SockSite(runner, sock).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if parent is not None:
            _watch_parent(loop, parent, stop)
        await stop.wait()
    finally:
        await runner.cleanup()
        if sink is not None:
            sink.flush()


def _watch_parent(loop: asyncio.AbstractEventLoop, parent: int, stop: asyncio.Event) -> None:
    """Stop once the supervising parent is gone (killed with SIGKILL, say): no orphan workers
    holding the port."""
    if os.getppid() != parent:
        stop.set()
    else:
        loop.call_later(1.0, _watch_parent, loop, parent, stop)


def _worker(ctx: Ctx, sock: socket.socket, republish: bool, parent: int | None = None) -> int:

    from ipmirror.gateway.app import make_app
    from ipmirror.gateway.config import GatewayConfig

    a = ctx.args
    with ctx.open_repo() as repo:  # opened here, in the worker: LMDB must not cross a fork
        app = make_app(repo.gateway_backend(), GatewayConfig(public_url=a.public_url))
        # The caches' routes on the gateway's app until the runtime (server/) mounts apps itself.
        from ipmirror.cache.app import Sessions, add_routes
        from ipmirror.cache.core import CacheCore
        sessions = Sessions()
        add_routes(app, CacheCore(repo.cache_db, repo.store, repo.profile, repo.path / "caches", sessions),
                   sessions)
        if republish:
            async def start_bg(app: web.Application) -> None:
                app["republisher"] = asyncio.create_task(
                    _republisher(repo, a.republish_every, int(a.republish_within * 3600e9), ctx))

            async def stop_bg(app: web.Application) -> None:
                app["republisher"].cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await app["republisher"]

            app.on_startup.append(start_bg)
            app.on_cleanup.append(stop_bg)
        with asyncio.Runner(loop_factory=_new_loop) as runner:
            runner.run(_serve_app(app, sock, a, parent))
    return 0


def _fork_worker(ctx: Ctx, sock: socket.socket, index: int) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)  # the parent's forwarding handler is not ours
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked by the parent to fork
        code = _worker(ctx, sock, republish=index == 0, parent=parent)
    except BaseException:
        logging.getLogger("ipmirror.serve").exception("worker %d failed", index)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _supervise(ctx: Ctx, sock: socket.socket, n: int) -> int:
    live: set[int] = set()
    stopping = False
    code = 0

    def stop(signum: int = signal.SIGTERM, frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for sig in _STOP_SIGNALS:
        signal.signal(sig, stop)
    try:
        for i in range(n):
            if stopping:
                break
            # No signal between fork and the child's own handlers: the child would run this
            # process's forwarding handler and swallow it. Held here, a signal reaches the
            # parent once the new pid is in ``live`` (and is forwarded to it).
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                live.add(_fork_worker(ctx, sock, i))
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    except OSError as e:
        ctx.warn(f"cannot start worker: {e.strerror}")
        code = 1
        stopping = True
    if stopping:  # a signal (or a failure) while forking: reach the workers forked since
        stop()
    sock.close()  # the workers accept; the parent only waits
    while live:
        pid, status = os.wait()
        live.discard(pid)
        rc = os.waitstatus_to_exitcode(status)
        if not stopping:
            ctx.warn(f"worker {pid} exited ({rc}); stopping the others")
            code = 1
            stop()
        elif rc not in (0, -signal.SIGTERM, -signal.SIGINT):
            code = 1
    return code


def serve(ctx: Ctx) -> int:
    a = ctx.args
    host, port = _listen(a.listen)
    n = default_workers() if a.workers is None else a.workers
    if n < 1:
        raise InvalidInput("--workers must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    with ctx.open_repo() as repo:
        repo.gateway_backend()  # makes the node key once, before any worker could race to
    sock = _bind(host, port, a.port_file)
    bound = sock.getsockname()
    ctx.warn(f"serving on http://{host if ':' not in host else f'[{host}]'}:{bound[1]} "
             f"({n} worker{'s' if n > 1 else ''})")
    if n == 1:
        with sock:
            return _worker(ctx, sock, republish=True)
    return _supervise(ctx, sock, n)

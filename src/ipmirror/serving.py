"""Composition of ``ipmirror serve``: which HTTP apps and background services it runs, each given
the repository its own process opens. A later feature registers here: an ``AppSpec`` in
``apps()`` or a ``ServiceSpec`` from ``services()`` (see ``server/plan.py``).

Usage::

    plan = serve_plan(repo_path, overrides, read_only=False)
    code = runtime.serve(plan, warn)
    status = server_status(repo_path)        # the status page's facts (status/collect.py)

The configuration is the repository's ``config.json`` (``config.py``), with the command line's
overrides applied on top, read again on every reload.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from ipmirror.cache import app as cache_app
from ipmirror.cache.core import CacheCore
from ipmirror.cache.maintain import Maintenance
from ipmirror.cache.upstream import Client, Limits
from ipmirror.config import Config
from ipmirror.errors import IpmirrorError, StoreError
from ipmirror.gateway.app import BACKEND, make_app
from ipmirror.gateway.config import GatewayConfig
from ipmirror.gateway.node_backend import NodeBackend
from ipmirror.gateway.replay import REPLAY, replay_first
from ipmirror.mirror.db import Version
from ipmirror.node import Repo, read_settings
from ipmirror.server import control
from ipmirror.server.client import HttpClient
from ipmirror.server.host import run_foreground
from ipmirror.server.plan import AppSpec, Handler, Plan, Service, ServiceSpec
from ipmirror.server.republish import Republisher
from ipmirror.server.swarm import SWARM_COMMANDS, SwarmService
from ipmirror.server.watch import Watcher
from ipmirror.status.app import app_status
from ipmirror.status.app import make_app as make_status_app
from ipmirror.status.collect import collect
from ipmirror.status.collect import server_facts as collect_server
from ipmirror.status.meter import Meter, process_meter
from ipmirror.status.sections import default_sections

Overrides = Callable[[Config], Config]
log = logging.getLogger("ipmirror.serve")


def _warn(msg: str) -> None:
    log.warning("ipmirror: warning: %s", msg)


GATEWAY_PREFIXES = ("/ipfs/", "/ipns/", "/routing/v1/")
STATUS_PREFIXES = ("/-/healthy", "/-/ready", "/-/metrics", "/-/status", "/-/mirrors/", "/")
METER: web.AppKey[Meter] = web.AppKey("meter", Meter)


CACHE_PREFIXES = ("/cache/", "/by-hash/")


def _meter_of(cfg: Config) -> Meter | None:
    """This worker's request meter when ``status.metrics`` is on."""
    return process_meter(GATEWAY_PREFIXES + CACHE_PREFIXES + STATUS_PREFIXES) if cfg.status.metrics else None


def _metered(handler: Handler, app: web.Application) -> Handler:
    """Counted before anything else answers (replayed answers included): the listener's front."""
    meter = app.get(METER)
    return meter.wrap(handler) if meter is not None else handler


def _gateway(repo: Repo, cfg: Config) -> web.Application:
    app = make_app(repo.gateway_backend(), GatewayConfig(public_url=cfg.server.public_url))
    meter = _meter_of(cfg)
    if meter is not None:
        app[METER] = meter  # read by the front
    return app


def _gateway_front(app: web.Application, handler: Handler) -> Handler:
    """Replayed answers before routing (gateway/replay.py), all of it metered."""
    return _metered(replay_first(app[REPLAY], app[BACKEND], handler), app)


def _status(repo: Repo, cfg: Config) -> web.Application:
    sock = control.socket_path(repo.path, cfg.server.control_socket)

    def server_status() -> dict[str, Any] | None:
        out: dict[str, Any] = control.request(sock, "status", timeout=5)
        return out

    meter = _meter_of(cfg)
    app = make_status_app(repo, cfg, server_status, sections=default_sections(), meter=meter)
    if meter is not None:
        app[METER] = meter
    return app


def _gateway_status(app: web.Application) -> dict[str, Any]:
    backend = app[BACKEND]
    return {"integrity": backend.integrity()} if isinstance(backend, NodeBackend) else {}


def _cache_core(repo: Repo, cfg: Config, client: Client, *, writes: bool) -> CacheCore:
    c = cfg.cache
    limits = Limits(connect_timeout=cfg.http.connect_timeout, read_timeout=c.read_timeout,
                    max_doc_bytes=c.max_doc_bytes)
    return CacheCore(repo.cache_db, repo.store, repo.profile, repo.path / "caches", client, limits,
                     offline=c.offline, writes=writes)


def _cache_app(read_only: bool) -> Callable[[Repo, Config], web.Application]:
    def build(repo: Repo, cfg: Config) -> web.Application:
        client = HttpClient(cfg.http)
        try:
            core = _cache_core(repo, cfg, client, writes=not read_only)
        except StoreError as e:
            if not (read_only or repo.readonly):
                raise
            # a reader who may not open the caches' database still serves everything else
            log.warning("ipmirror: warning: caches not served: %s", e)
            return _caches_unavailable()
        app = cache_app.make_app(core, client)
        meter = _meter_of(cfg)
        if meter is not None:
            app[METER] = meter  # read by the front: cache requests are counted too
        return app
    return build


def _cache_status(app: web.Application) -> dict[str, Any]:
    if cache_app.CORE not in app:
        return {"available": False}
    core = app[cache_app.CORE]
    return {"offline": core.offline, "fills": core.fills.downloads}


def _caches_unavailable() -> web.Application:
    """The cache routes of a server that cannot open the caches (a read-only user): 503."""
    async def unavailable(request: web.Request) -> web.Response:
        return web.Response(status=503, text="the caches are not available on this server (read-only)\n")

    app = web.Application()
    app.router.add_route("*", "/cache/{rest:.*}", unavailable)
    app.router.add_route("*", "/by-hash/{rest:.*}", unavailable)
    return app


class _CacheUpkeep(Service):
    """The caches' background upkeep (cache/maintain.py) as a service of the service process."""

    name = "cache"

    def __init__(self, repo: Repo, cfg: Config) -> None:
        self._m = Maintenance(_cache_core(repo, cfg, _NoClient(), writes=True), cfg.cache.upkeep_interval)

    async def run(self) -> None:
        await self._m.run()

    def status(self) -> dict[str, Any]:
        return self._m.status()


class _NoClient:
    """The upkeep never asks an upstream."""

    def get(self, url: str, **kw: Any) -> Any:
        raise IpmirrorError("the cache upkeep makes no upstream requests")

    async def close(self) -> None:
        return None


def apps(read_only: bool = False) -> dict[str, AppSpec[Repo]]:
    """The HTTP apps a listener may name (``server.listeners[i].apps``)."""
    return {
        "gateway": AppSpec("gateway", GATEWAY_PREFIXES, _gateway, front=_gateway_front,
                           status=_gateway_status),
        "cache": AppSpec("cache", CACHE_PREFIXES, _cache_app(read_only),
                         front=lambda app, h: _metered(h, app), status=_cache_status),
        "status": AppSpec("status", STATUS_PREFIXES, _status, front=lambda app, h: _metered(h, app),
                          status=app_status),
    }


def services(cfg: Config) -> list[ServiceSpec[Repo]]:
    """The services ``cfg`` asks for (before ``--read-only`` leaves out the writing ones)."""
    out: list[ServiceSpec[Repo]] = []
    rp = cfg.republish
    if rp.enabled:
        out.append(ServiceSpec("republisher", lambda repo: Republisher(lambda: repo.names, rp),
                               settings=rp, commands=("republish",)))
    for name in cfg.watch.mirrors:
        out.append(ServiceSpec(f"watch:{name}", _watcher(name, cfg), settings=cfg.watch))
    if cfg.cache.upkeep_interval > 0:
        out.append(ServiceSpec("cache", lambda repo: _CacheUpkeep(repo, cfg), settings=cfg.cache))
    sw = cfg.swarm
    if sw.listen:  # the libp2p host: reads the repository (keys), writes nothing
        out.append(ServiceSpec("swarm", lambda repo: SwarmService(repo.keystore, sw), settings=sw,
                               writes=False, commands=SWARM_COMMANDS))
    return out


def _watcher(name: str, cfg: Config) -> Callable[[Repo], Watcher]:
    def build(repo: Repo) -> Watcher:
        mirrors = repo.mirrors()
        return Watcher(name, mirrors.get(name).dir, lambda: mirrors.sync(name, on_warning=_warn), cfg.watch,
                       initial=True)
    return build


def serve_plan(repo_path: Path, overrides: Overrides, *, read_only: bool = False,
               port_file: str = "") -> Plan[Repo]:
    def load() -> Config:
        return overrides(read_settings(repo_path)[1])

    @contextlib.contextmanager
    def open_repo() -> Iterator[Repo]:
        with Repo.open(repo_path, create=False, readonly=read_only) as repo:
            yield repo

    with Repo.open(repo_path, create=False, readonly=read_only) as repo:  # serve creates none
        if not read_only:
            repo.gateway_backend()  # an older repository's node key: made once, before workers race
    cfg = load()
    sock = control.socket_path(repo_path, cfg.server.control_socket)
    if cfg.status.metrics:  # before any worker imports prometheus_client
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(repo_path))
    return Plan(open=open_repo, load_config=load, services=services, apps=apps(read_only),
                read_only=read_only, control_socket=str(sock), port_file=port_file)


def watch(repo: Repo, name: str, cfg: Config, on_version: Callable[[Version], None],
          checksum: bool = False) -> None:
    """``mirror sync NAME --watch``: the watch service of ``serve``, in this process, until
    SIGINT or SIGTERM (``checksum``: the first sync re-reads every file)."""
    mirrors = repo.mirrors()
    first = [checksum]

    def sync() -> Version:
        check, first[0] = first[0], False
        return mirrors.sync(name, checksum=check, on_warning=_warn)

    w = Watcher(name, mirrors.get(name).dir, sync, cfg.watch, on_version=on_version, initial=True)
    run_foreground([ServiceSpec(w.name, lambda _repo: w)], repo)


def control_path(repo_path: Path) -> Path:
    """The control socket of the repository (NoServer when there is no repository)."""
    try:
        cfg = read_settings(repo_path)[1]
    except StoreError as e:
        raise control.NoServer(str(e)) from None
    return control.socket_path(repo_path, cfg.server.control_socket)


def ask(repo_path: Path, cmd: str, args: dict[str, Any] | None = None, timeout: float = 60) -> Any:
    """Send a command to the server running on this repository (``control.NoServer`` if none)."""
    return control.request(control_path(repo_path), cmd, args, timeout=timeout)


def server_status(repo_path: Path) -> dict[str, Any]:
    """``ipmirror status``: the facts of the status page (``status/collect.py``), with the running
    server's answer when one runs (else ``server.running`` is false)."""
    server: dict[str, Any] | None = None
    with contextlib.suppress(control.NoServer):
        server = ask(repo_path, "status", timeout=10)
    try:
        _raw, cfg = read_settings(repo_path)
        with Repo.open(repo_path, create=False) as repo:
            status = collect(repo, server, cfg.status, default_sections(), local=True)
            for m in status["mirrors"]:
                m["watch"] = m["name"] in cfg.watch.mirrors
            status["keys"] = len(repo.keystore.names())
    except IpmirrorError as e:
        return {**collect_server(server, local=True), "repo": str(repo_path), "error": str(e)}
    if server is None:
        status["repo"] = str(repo_path)
    return status


def metrics_dir(repo_path: Path) -> Path:
    """A fresh directory for the workers' metric files (``PROMETHEUS_MULTIPROC_DIR``):
    ``run/metrics-<pid>`` in the repository (else in the temporary directory); those of
    servers that no longer run are removed."""
    base = repo_path / "run"
    try:
        base.mkdir(exist_ok=True)
        for d in base.glob("metrics-*"):
            pid = d.name.partition("-")[2]
            if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
                shutil.rmtree(d, ignore_errors=True)
        d = base / f"metrics-{os.getpid()}"
        d.mkdir(mode=0o700)
        return d
    except OSError:  # a repository this user may only read (serve --read-only)
        return Path(tempfile.mkdtemp(prefix="ipmirror-metrics-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

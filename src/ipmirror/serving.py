"""Composition of ``ipmirror serve``: which HTTP apps and background services it runs, each given
the repository its own process opens. A later feature registers here: an ``AppSpec`` in
``apps()`` or a ``ServiceSpec`` from ``services()`` (see ``server/plan.py``).

Usage::

    plan = serve_plan(repo_path, overrides, read_only=False)
    code = runtime.serve(plan, warn)
    status = server_status(repo_path)        # over the control channel, or from disk

The configuration is the repository's ``config.json`` (``config.py``), with the command line's
overrides applied on top, read again on every reload.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from ipmirror.config import Config
from ipmirror.errors import IpmirrorError, StoreError
from ipmirror.gateway.app import BACKEND, make_app
from ipmirror.gateway.config import GatewayConfig
from ipmirror.gateway.node_backend import NodeBackend
from ipmirror.gateway.replay import REPLAY, replay_first
from ipmirror.mirror.db import Version
from ipmirror.node import Repo, read_settings
from ipmirror.server import control
from ipmirror.server.host import run_foreground
from ipmirror.server.plan import AppSpec, Handler, Plan, ServiceSpec
from ipmirror.server.republish import Republisher
from ipmirror.server.swarm import SWARM_COMMANDS, SwarmService
from ipmirror.server.watch import Watcher

Overrides = Callable[[Config], Config]
log = logging.getLogger("ipmirror.serve")


def _warn(msg: str) -> None:
    log.warning("ipmirror: warning: %s", msg)


def _gateway(repo: Repo, cfg: Config) -> web.Application:
    return make_app(repo.gateway_backend(), GatewayConfig(public_url=cfg.server.public_url))


def _gateway_front(app: web.Application, handler: Handler) -> Handler:
    """Replayed answers before routing (gateway/replay.py)."""
    return replay_first(app[REPLAY], app[BACKEND], handler)


def _gateway_status(app: web.Application) -> dict[str, Any]:
    backend = app[BACKEND]
    return {"integrity": backend.integrity()} if isinstance(backend, NodeBackend) else {}


def apps() -> dict[str, AppSpec[Repo]]:
    """The HTTP apps a listener may name (``server.listeners[i].apps``)."""
    return {
        "gateway": AppSpec("gateway", ("/ipfs/", "/ipns/", "/routing/v1/"), _gateway, front=_gateway_front,
                           status=_gateway_status),
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
    return Plan(open=open_repo, load_config=load, services=services, apps=apps(), read_only=read_only,
                control_socket=str(sock), port_file=port_file)


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
    """``ipmirror status``: the running server's answer, or what the disk says."""
    with contextlib.suppress(control.NoServer):
        out: dict[str, Any] = ask(repo_path, "status", timeout=10)
        return out
    status: dict[str, Any] = {"server": {"running": False}, "repo": str(repo_path)}
    try:
        _raw, cfg = read_settings(repo_path)
        with Repo.open(repo_path, create=False) as repo:
            mirrors = repo.mirrors()
            rows = []
            for m in mirrors.all():
                vs = mirrors.log(m.name)
                rows.append({"name": m.name, "versions": len(vs), "latest": vs[-1].root if vs else None,
                             "watch": m.name in cfg.watch.mirrors, "checked": m.checked or None,
                             "refused": m.refused or None})
            status["mirrors"] = rows
            status["keys"] = len(repo.keystore.names())
    except IpmirrorError as e:
        status["error"] = str(e)
    return status

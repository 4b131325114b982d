"""What the runtime runs: HTTP apps, background services, their status and control commands.

This is the registration API. A later feature (a cache, a follower, a peer, a status page)
adds itself by contributing an :class:`AppSpec` or a :class:`ServiceSpec` to the :class:`Plan`
that ``ipmirror serve`` builds (in ``ipmirror/serving.py``); nothing else in the runtime changes.

Usage::

    class Republisher(Service):
        name = "republisher"
        async def run(self) -> None: ...            # until cancelled; raising = a crash
        def status(self) -> dict[str, Any]: ...     # the provider hook: state and counters
        def commands(self) -> Mapping[str, Command]:
            return {"republish": self.republish}    # reached over the control channel

    ServiceSpec("republisher", settings=cfg.republish, writes=True, commands=("republish",),
                build=lambda repo: Republisher(repo.names, cfg.republish))
    AppSpec("gateway", ("/ipfs/", "/ipns/", "/routing/v1/"), build=make_gateway)

Rules:

1. ``build`` runs in the process that uses the value (an HTTP worker for apps, the service
   process for services), with that process's own resources (``Plan.open``: the repository,
   opened after the fork — no LMDB environment crosses a fork).
2. A service's ``settings`` is the part of the configuration it depends on: on a reload the
   service is restarted when it changed (and left running when not); ``writes`` services are
   not run by ``serve --read-only``.
3. Control commands are JSON in, JSON out (``dict`` of arguments, any JSON result); errors are
   the project's exceptions, answered to the client as one line.
4. The provider hook (``status``) is cheap and never blocks: it reports what the object knows.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import web

from ipmirror.config import Config

R = TypeVar("R")
Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
Command = Callable[[dict[str, Any]], Awaitable[Any]]


class Provider(Protocol):
    """Anything that can say how it is doing (rendered by ``ipmirror status``)."""

    def status(self) -> dict[str, Any]: ...


class Service(abc.ABC):
    """A background service with a life cycle: ``run`` is started as a task and cancelled to stop
    it (clean up in ``finally``); if it raises, the host logs it and starts a new one from its
    spec after a backoff (0.5 s, doubling, at most 30 s)."""

    name: str = "service"

    @abc.abstractmethod
    async def run(self) -> None: ...

    def status(self) -> dict[str, Any]:
        return {}

    def commands(self) -> Mapping[str, Command]:
        return {}


@dataclass(frozen=True)
class ServiceSpec(Generic[R]):
    name: str  # unique within a plan: "republisher", "watch:debian"
    build: Callable[[R], Service]
    settings: object = None  # compared on a reload: a change restarts the service
    writes: bool = True
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class AppSpec(Generic[R]):
    """An HTTP app: the URL prefixes it answers (the URL map in docs/design.md) and how a worker
    builds its aiohttp application. ``front`` may put a fast path before aiohttp's routing
    (called with the application and the server's handler, returns the handler to use; only
    when the app is a listener's first); ``status`` reports on a built application."""
    name: str
    prefixes: tuple[str, ...]
    build: Callable[[R, Config], web.Application]
    front: Callable[[web.Application, Handler], Handler] | None = None
    status: Callable[[web.Application], dict[str, Any]] | None = None


@dataclass(frozen=True)
class Plan(Generic[R]):
    """Everything ``serve`` runs. ``load_config`` re-reads the configuration (a reload: the file
    plus the command line's overrides); ``services`` lists the services a configuration asks
    for (evaluated in the supervisor, so it must not open anything)."""
    open: Callable[[], AbstractContextManager[R]]
    load_config: Callable[[], Config]
    services: Callable[[Config], Sequence[ServiceSpec[R]]]
    apps: Mapping[str, AppSpec[R]] = field(default_factory=dict)
    read_only: bool = False
    control_socket: str = ""  # empty: no control channel
    port_file: str = ""

    def service_specs(self, config: Config) -> list[ServiceSpec[R]]:
        specs = list(self.services(config))
        return [s for s in specs if not (self.read_only and s.writes)]

"""Runs background services: in ``serve``'s service process, or in the foreground of a command.

Usage::

    code = run_service_process(plan, config, channel_socket)     # forked by the supervisor
    run_foreground(specs, resources)                             # ``mirror sync --watch``

Each service runs as a task under a keeper: if ``run`` raises, the failure is logged with the
service's name, its state becomes ``crashed`` and a new instance is built from the spec after a
backoff (0.5 s doubling to 30 s; back to 0.5 s after a minute of running). A crashing service
never stops the others nor the process. On a reload the supervisor sends the new configuration;
services whose ``settings`` changed are restarted, removed ones stopped, new ones started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic

from ipmirror import config as config_mod
from ipmirror.config import Config
from ipmirror.errors import IpmirrorError
from ipmirror.server.channel import Channel
from ipmirror.server.plan import Command, Plan, R, Service, ServiceSpec
from ipmirror.server.worker import new_loop

log = logging.getLogger("ipmirror.serve")
BACKOFF_MIN, BACKOFF_MAX, STEADY = 0.5, 30.0, 60.0


@dataclass
class _Slot(Generic[R]):
    spec: ServiceSpec[R]
    task: asyncio.Task[None] | None = None
    service: Service | None = None
    state: str = "starting"
    restarts: int = 0
    last_error: str = ""
    since: float = field(default_factory=time.time)


class Host(Generic[R]):
    """The services of one process and their keepers."""

    def __init__(self, res: R, on_crash: Callable[[BaseException], None] | None = None) -> None:
        self.res = res
        self.on_crash = on_crash  # given: a crash is handed to it instead of restarting
        self.slots: dict[str, _Slot[R]] = {}

    async def apply(self, specs: Sequence[ServiceSpec[R]]) -> None:
        """Run exactly ``specs``: stop what is gone or changed, start what is new or changed."""
        want = {s.name: s for s in specs}
        for name, slot in list(self.slots.items()):
            new = want.get(name)
            if new is None or new.settings != slot.spec.settings:
                await self._stop(slot)
                del self.slots[name]
        for name, spec in want.items():
            if name not in self.slots:
                slot = self.slots[name] = _Slot(spec)
                slot.task = asyncio.create_task(self._keep(slot), name=f"service {name}")

    async def stop(self) -> None:
        for slot in self.slots.values():
            await self._stop(slot)
        self.slots.clear()

    async def _stop(self, slot: _Slot[R]) -> None:
        if slot.task is not None:
            slot.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await slot.task
        slot.state = "stopped"

    async def _keep(self, slot: _Slot[R]) -> None:
        delay = BACKOFF_MIN
        while True:
            started = time.monotonic()
            try:
                slot.service = slot.spec.build(self.res)
                slot.state, slot.since = "running", time.time()
                await slot.service.run()
                slot.state = "done"
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if self.on_crash is not None:
                    slot.state = "crashed"
                    self.on_crash(e)
                    return
                if time.monotonic() - started > STEADY:
                    delay = BACKOFF_MIN
                slot.state, slot.since, slot.last_error = "crashed", time.time(), f"{type(e).__name__}: {e}"
                slot.restarts += 1
                log.error("service %s failed: %s; restarting in %gs", slot.spec.name, slot.last_error,
                          delay, exc_info=not isinstance(e, IpmirrorError))
                await asyncio.sleep(delay)
                delay = min(BACKOFF_MAX, delay * 2)

    def status(self) -> list[dict[str, Any]]:
        out = []
        for name, slot in self.slots.items():
            row: dict[str, Any] = {"name": name, "state": slot.state, "writes": slot.spec.writes,
                                   "restarts": slot.restarts, "since": slot.since}
            if slot.last_error:
                row["last_error"] = slot.last_error
            if slot.service is not None and slot.state == "running":
                row.update(slot.service.status())
            out.append(row)
        return out

    async def command(self, cmd: str, args: dict[str, Any]) -> Any:
        for slot in self.slots.values():
            if cmd in slot.spec.commands:
                if slot.service is None or slot.state != "running":
                    raise IpmirrorError(f"service {slot.spec.name} is {slot.state}; try again")
                handler = slot.service.commands().get(cmd)
                if handler is not None:
                    return await handler(args)
        raise IpmirrorError(f"no running service handles {cmd!r}")


def run_service_process(plan: Plan[R], config: Config, chan: socket.socket) -> int:
    with plan.open() as res, asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(_serve(plan, config, Host(res), chan))
    return 0


async def _serve(plan: Plan[R], config: Config, host: Host[R], chan: socket.socket) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)  # reloads come on the channel

    async def status(args: dict[str, Any]) -> Any:
        return {"services": host.status()}

    async def reload(args: dict[str, Any]) -> Any:
        new = config_mod.parse(args.get("config"))
        await host.apply(plan.service_specs(new))
        return {"services": [s["name"] for s in host.status()]}

    channel = Channel(chan, _Commands(host, {"status": status, "reload": reload}), on_close=stop.set)
    try:
        await host.apply(plan.service_specs(config))
        await channel.start()
        channel.event("ready")
        await stop.wait()
    finally:
        await channel.close()
        await host.stop()


class _Commands(Mapping[str, Command]):
    """The process's own commands, and every other name routed to the service that declares
    it (looked up per request, so services started by a reload are reached too)."""

    def __init__(self, host: Host[Any], own: dict[str, Command]) -> None:
        self.host, self.own = host, own

    def __getitem__(self, cmd: str) -> Command:
        if cmd in self.own:
            return self.own[cmd]

        async def routed(args: dict[str, Any]) -> Any:
            return await self.host.command(cmd, args)
        return routed

    def __iter__(self) -> Iterator[str]:
        return iter(self.own)

    def __len__(self) -> int:
        return len(self.own)


def run_foreground(specs: Sequence[ServiceSpec[R]], res: R) -> None:
    """Run ``specs`` in this process until SIGINT or SIGTERM (``mirror sync --watch``). A
    service that fails ends the run with its exception (a command reports it and exits 1)."""
    async def main() -> None:
        stop = asyncio.Event()
        crashed: list[BaseException] = []
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def on_crash(e: BaseException) -> None:
            crashed.append(e)
            stop.set()

        host = Host(res, on_crash)
        try:
            await host.apply(specs)
            await stop.wait()
        finally:
            await host.stop()
        if crashed:
            raise crashed[0]

    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(main())

"""The libp2p host as a service of ``serve`` (``serve --swarm ADDR``, config ``swarm.listen``).

Usage::

    ServiceSpec("swarm", lambda repo: SwarmService(repo.keystore, cfg.swarm), settings=cfg.swarm,
                writes=False, commands=SWARM_COMMANDS)

One host, one peer ID: the service runs in the service process only (never in an HTTP worker),
with the repository's ``self`` key. py-libp2p runs on trio in the host's own thread
(``peer/host.py``); this asyncio service starts and stops it in a worker thread and answers the
control channel's ``id`` and ``swarm.*`` commands with ``peer/control.py``, also in a worker
thread, since those calls block until the trio side answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ipmirror.config import SwarmConfig
from ipmirror.errors import PeerError
from ipmirror.naming.keystore import Keystore
from ipmirror.peer import control
from ipmirror.peer.config import HostConfig
from ipmirror.peer.host import PeerHost
from ipmirror.server.plan import Command, Service

SWARM_COMMANDS: tuple[str, ...] = tuple(control.METHODS)


class SwarmService(Service):
    name = "swarm"

    def __init__(self, keystore: Keystore, settings: SwarmConfig) -> None:
        self.settings = settings
        self._keystore = keystore
        self.host: PeerHost | None = None

    async def run(self) -> None:
        s = self.settings
        cfg = HostConfig(listen=s.listen, max_peers=s.max_peers, max_streams_per_peer=s.max_streams_per_peer)
        self._keystore.identity()  # the node key, made once (as for the gateway's peer ID)
        host = PeerHost(self._keystore.get("self"), cfg)
        await asyncio.to_thread(host.start)
        self.host = host
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            self.host = None
            await asyncio.shield(asyncio.to_thread(host.stop))

    def status(self) -> dict[str, Any]:
        host = self.host
        return dict(host.status()) if host is not None else {"running": False}

    def commands(self) -> Mapping[str, Command]:
        return {method: self._command(method) for method in SWARM_COMMANDS}

    def _command(self, method: str) -> Command:
        async def call(args: dict[str, Any]) -> Any:
            host = self.host
            if host is None:
                raise PeerError("the libp2p host is starting; try again")
            return await asyncio.to_thread(control.handle, host, method, args)
        return call

"""The runtime's entry point: check a plan's listeners, bind them, and run the supervisor.

Usage::

    code = serve(plan, warn=ctx.warn)    # until SIGTERM/SIGINT (SIGHUP reloads)
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from ipmirror.errors import InvalidInput
from ipmirror.server import control, urlmap
from ipmirror.server.plan import Plan, R
from ipmirror.server.supervisor import Supervisor


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InvalidInput(f"a listen address is HOST:PORT, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (the supervisor keeps it; workers accept on it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=1024)
    except OSError as e:
        raise InvalidInput(f"cannot listen on {host}:{port}: {e.strerror}") from None


def serve(plan: Plan[R], warn: Callable[[str], None]) -> int:
    config = plan.load_config()
    listeners = config.server.listeners
    for lst in listeners:
        unknown = [a for a in lst.apps if a not in plan.apps]
        if unknown or not lst.apps:
            raise InvalidInput(f"listener {lst.address}: unknown app {', '.join(unknown) or '(none)'} "
                               f"(known: {', '.join(plan.apps)})")
        urlmap.check([(a, plan.apps[a].prefixes) for a in lst.apps])
    addrs = [parse_address(lst.address) for lst in listeners]
    ctl = control.listen(Path(plan.control_socket)) if plan.control_socket else None  # one server
    socks: list[socket.socket] = []
    try:
        for host, port in addrs:
            socks.append(bind(host, port))
    except BaseException:
        for s in socks:
            s.close()
        if ctl is not None:
            ctl.close()
            os.unlink(plan.control_socket)
        raise
    if plan.port_file:  # once listening: a script waiting for the file can connect at once
        tmp = Path(f"{plan.port_file}.tmp")
        tmp.write_text(f"{socks[0].getsockname()[1]}\n")
        os.replace(tmp, plan.port_file)
    sup = Supervisor(plan, config, socks, ctl, warn)
    n = len(sup.workers)
    for (host, _), s, lst in zip(addrs, socks, listeners, strict=True):
        shown = f"[{host}]" if ":" in host else host
        warn(f"serving on http://{shown}:{s.getsockname()[1]} ({n} worker{'s' if n > 1 else ''}): "
             f"{', '.join(lst.apps)}")
    if plan.read_only:
        warn("read-only: no writing service runs (no IPNS republishing, no mirror watching)")
    return sup.run()

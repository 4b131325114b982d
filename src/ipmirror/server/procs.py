"""The supervisor's record of one child process, and the restart backoff.

Usage::

    p = Proc("worker", 0)
    p.started(pid, channel)
    ran = p.exited()                   # seconds it ran
    p.due = time.monotonic() + backoff(p, ran)
"""

from __future__ import annotations

import signal
import socket
import time
from dataclasses import dataclass
from typing import Any

BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0
STEADY = 60.0  # a child that ran this long starts over at the shortest delay


@dataclass(eq=False)
class Proc:
    kind: str  # "worker" or "services"
    index: int
    pid: int = 0
    chan: socket.socket | None = None
    buf: bytes = b""
    state: str = "starting"  # starting, running, replacing, restarting, stopped
    restarts: int = 0
    failures: int = 0  # deaths in a row, for the backoff
    since: float = 0.0  # monotonic start time
    due: float = 0.0  # monotonic time of the next start (0: none planned)
    replace: bool = False  # asked to stop to be replaced (a reload): start again at once
    retire: bool = False  # asked to stop for good (no service left to run)
    generation: int = 0  # of the configuration it was forked with

    @property
    def label(self) -> str:
        return "the service process" if self.kind == "services" else f"worker {self.index}"

    def started(self, pid: int, chan: socket.socket) -> None:
        self.pid, self.chan, self.buf = pid, chan, b""
        self.state, self.since = "starting", time.monotonic()
        chan.setblocking(False)

    def exited(self) -> float:
        ran = time.monotonic() - self.since
        self.pid, self.chan, self.buf = 0, None, b""
        self.state = "restarting"
        return ran

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pid": self.pid or None, "state": self.state, "restarts": self.restarts}
        if self.kind == "worker":
            out = {"index": self.index, **out}
        return out


def backoff(p: Proc, ran: float = 0.0) -> float:
    """The delay before starting ``p`` again after it died having run ``ran`` seconds."""
    p.failures = 1 if ran >= STEADY else p.failures + 1
    return min(BACKOFF_MAX, BACKOFF_MIN * 2.0 ** (p.failures - 1))


def describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            return f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"was killed by signal {-rc}"
    return f"exited with status {rc}"

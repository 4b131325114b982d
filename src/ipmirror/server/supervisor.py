"""The supervisor: binds the listeners, forks the HTTP workers and the service process, keeps
them running, and answers the control channel.

Usage::

    code = Supervisor(plan, config, warn).run()      # until SIGTERM/SIGINT; SIGHUP reloads

Process model (docs/design.md, "Process model"):

1. The supervisor opens no repository and runs no event loop: a ``selectors`` loop over the
   control socket, the children's channels and a signal wake-up pipe. It keeps the listening
   sockets open (it never accepts on them), so a worker forked later accepts on the same ones.
2. N HTTP workers (``server/worker.py``) and, when the configuration asks for any service,
   one service process (``server/host.py``). Each child opens its own resources after the
   fork and talks to the supervisor over a socketpair (``server/channel.py``).
3. A child that dies unasked is started again after a backoff: 0.5 s, doubling per failure in a
   row to 30 s, back to 0.5 s once it ran for a minute. The others keep running meanwhile.
4. SIGTERM/SIGINT: every child gets SIGTERM and finishes its work under way; after 20 s the
   rest get SIGKILL. No child outlives the supervisor: a child whose channel reaches end of
   file (the supervisor is gone, even by SIGKILL) stops.
5. SIGHUP or a ``reload`` request re-reads the configuration: the service process applies it
   live; workers are replaced one by one when a setting they use changed; listeners and the
   control socket change at the next start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic

from ipmirror import config as config_mod
from ipmirror.config import Config
from ipmirror.errors import IpmirrorError
from ipmirror.server import control
from ipmirror.server.plan import Plan, R
from ipmirror.server.procs import Proc, backoff, describe_exit
from ipmirror.server.worker import run_worker

log = logging.getLogger("ipmirror.serve")
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
KILL_AFTER = 20.0
STATUS_WAIT = 2.0
COMMAND_WAIT = 300.0


@dataclass
class _Pending:
    client: socket.socket
    waiting: set[int]  # pids still to answer
    deadline: float
    finish: Callable[[dict[int, dict[str, Any]]], dict[str, Any]]
    replies: dict[int, dict[str, Any]] = field(default_factory=dict)


class Supervisor(Generic[R]):
    def __init__(self, plan: Plan[R], config: Config, socks: list[socket.socket],
                 ctl: socket.socket | None, warn: Callable[[str], None]) -> None:
        self.plan, self.config, self.socks, self.warn = plan, config, socks, warn
        self.control = ctl  # control.listen()
        self.sel = selectors.DefaultSelector()
        self.workers = [Proc("worker", i) for i in range(self._nworkers(config))]
        self.services: Proc | None = None
        self.stopping = False
        self.kill_at = 0.0
        self.code = 0
        self.started = time.time()
        self._flags: set[int] = set()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._clients: dict[int, tuple[socket.socket, bytearray]] = {}
        self._roll: list[Proc] = []
        self._control_ino = 0
        self.generation = 0  # of the configuration: counts reloads

    @staticmethod
    def _nworkers(config: Config) -> int:
        return config.server.workers or max(1, min(4, len(os.sched_getaffinity(0))))

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> int:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake = (wake_r, wake_w)
        old_fd = signal.set_wakeup_fd(wake_w)
        for sig in _SIGNALS:
            signal.signal(sig, self._on_signal)
        self.sel.register(wake_r, selectors.EVENT_READ, "wake")
        if self.control is not None:
            self._control_ino = os.stat(self.plan.control_socket).st_ino
            self.sel.register(self.control, selectors.EVENT_READ, "control")
        try:
            if self.plan.service_specs(self.config):
                self.services = Proc("services", 0)
            for p in self._procs():
                p.due = time.monotonic()
            while True:
                self._handle_flags()
                self._reap()
                live = [p for p in self._procs() if p.pid]
                if self.stopping and not live:
                    break
                now = time.monotonic()
                if not self.stopping:
                    for p in self._procs():
                        if not p.pid and p.due and p.due <= now:
                            self._start(p)
                    self._advance_roll()
                elif now >= self.kill_at:
                    for p in live:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(p.pid, signal.SIGKILL)
                    self.kill_at = now + 5
                self._expire(now)
                for key, _ in self.sel.select(self._timeout(now)):
                    self._ready(key)
        finally:
            self._close(old_fd)
        return self.code

    def _procs(self) -> list[Proc]:
        return self.workers + ([self.services] if self.services is not None else [])

    def _timeout(self, now: float) -> float:
        times = [p.due for p in self._procs() if not p.pid and p.due and not self.stopping]
        times += [q.deadline for q in self._pending.values()]
        if self.stopping:
            times.append(self.kill_at)
        return max(0.0, min(times, default=now + 1.0) - now) if times else 1.0

    def _on_signal(self, signum: int, frame: object) -> None:
        self._flags.add(signum)

    def _handle_flags(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake[0], 512):
                pass
        flags = set(self._flags)  # a copy, then in place: a signal arriving meanwhile stays
        self._flags -= flags
        if flags & {signal.SIGTERM, signal.SIGINT}:
            self.stop()
        elif signal.SIGHUP in flags and not self.stopping:
            try:
                notes = self.reload()
                self.warn(f"reloaded the configuration{': ' + '; '.join(notes) if notes else ''}")
            except IpmirrorError as e:
                self.warn(f"reload failed: {e}")

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.kill_at = time.monotonic() + KILL_AFTER
        for p in self._procs():
            p.due = 0.0
            if p.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)

    # -- children ---------------------------------------------------------------------------------
    def _start(self, p: Proc) -> None:
        p.due = 0.0
        parent_end, child_end = socket.socketpair()
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # no handler of ours runs in the child
        try:
            pid = os.fork()
            if pid == 0:
                self._child(p, child_end, parent_end)
        except OSError as e:
            self.warn(f"cannot start {p.label}: {e.strerror}")
            parent_end.close()
            p.due = time.monotonic() + backoff(p)
            return
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        child_end.close()
        p.started(pid, parent_end)
        p.generation = self.generation
        self.sel.register(parent_end, selectors.EVENT_READ, p)

    def _child(self, p: Proc, chan: socket.socket, parent_end: socket.socket) -> None:
        code = 1
        try:
            for sig in _SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            os.close(self._wake[0])
            os.close(self._wake[1])
            for other in [parent_end, self.control, *[c for c, _ in self._clients.values()],
                          *[q.chan for q in self._procs() if q.chan is not None]]:
                if other is not None:
                    other.close()
            if p.kind == "services":
                for s in self.socks:
                    s.close()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            if p.kind == "services":
                from ipmirror.server.host import run_service_process
                code = run_service_process(self.plan, self.config, chan)
            else:
                code = run_worker(self.plan, self.config, self.socks, chan)
        except BaseException:
            log.exception("%s failed", p.label)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            p = next((q for q in self._procs() if q.pid == pid), None)
            if p is not None:
                self._exited(p, os.waitstatus_to_exitcode(status))

    def _exited(self, p: Proc, rc: int) -> None:
        if p.chan is not None:
            self.sel.unregister(p.chan)
            p.chan.close()
        pid = p.pid
        for q in list(self._pending.values()):
            if pid in q.waiting:
                q.replies[pid] = {"ok": False, "error": f"{p.label} exited"}
                q.waiting.discard(pid)
        ran = p.exited()
        if self.stopping:
            p.state = "stopped"
            if rc not in (0, -signal.SIGTERM, -signal.SIGINT):
                self.code = 1
        elif p.retire:
            p.state = "stopped"
            if p is self.services:
                self.services = None
        elif p.replace:
            p.replace = False
            p.due = time.monotonic()
        else:
            delay = backoff(p, ran)
            p.restarts += 1
            p.due = time.monotonic() + delay
            self.warn(f"{p.label} (pid {pid}) {describe_exit(rc)}; restarting it in {delay:g}s")

    def _advance_roll(self) -> None:
        """Replace the workers in ``_roll`` one at a time, each once the previous one is ready."""
        if not self._roll or any(w.state != "running" for w in self.workers):
            return
        w = self._roll.pop(0)
        if w.pid:
            w.replace = True
            w.state = "replacing"
            with contextlib.suppress(ProcessLookupError):
                os.kill(w.pid, signal.SIGTERM)

    # -- channels ---------------------------------------------------------------------------------
    def _ready(self, key: selectors.SelectorKey) -> None:
        if key.data == "wake":
            return
        if key.data == "control":
            self._accept()
        elif isinstance(key.data, Proc):
            self._from_child(key.data)
        else:
            self._from_client(key.fd)

    def _from_child(self, p: Proc) -> None:
        assert p.chan is not None
        try:
            data = p.chan.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(p.chan)  # the child closes: its exit is reaped soon
            p.chan.close()
            p.chan = None
            return
        p.buf += data
        while b"\n" in p.buf:
            line, _, p.buf = p.buf.partition(b"\n")
            try:
                msg = control.decode(line)
            except IpmirrorError:
                continue
            if msg.get("event") == "ready":
                p.state = "running"
                if p.generation != self.generation and p.kind == "services":  # reloaded meanwhile
                    self._send(p, next(self._ids), "reload", {"config": config_mod.to_json(self.config)})
            q = self._pending.get(msg.get("id", -1))
            if q is not None and p.pid in q.waiting:
                q.waiting.discard(p.pid)
                q.replies[p.pid] = msg
                if not q.waiting:
                    self._finish(msg["id"])

    def _send(self, p: Proc, rid: int, cmd: str, args: dict[str, Any]) -> bool:
        if p.chan is None or p.state not in ("running", "replacing"):
            return False
        try:
            p.chan.settimeout(1.0)
            p.chan.sendall(control.encode({"id": rid, "cmd": cmd, "args": args}))
            return True
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                p.chan.setblocking(False)

    def _accept(self) -> None:
        assert self.control is not None
        with contextlib.suppress(BlockingIOError, InterruptedError):
            conn, _ = self.control.accept()
            conn.setblocking(False)
            self._clients[conn.fileno()] = (conn, bytearray())
            self.sel.register(conn, selectors.EVENT_READ, None)

    def _from_client(self, fd: int) -> None:
        conn, buf = self._clients[fd]
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        buf += data
        if not data or len(buf) > control.MAX_LINE:
            self._drop(conn)
            return
        if b"\n" not in buf:
            return
        self.sel.unregister(conn)
        del self._clients[fd]
        try:
            msg = control.decode(bytes(buf).split(b"\n", 1)[0])
            self._request(conn, str(msg.get("cmd")), msg.get("args") or {})
        except IpmirrorError as e:
            self._reply(conn, {"ok": False, "error": str(e)})
        except Exception as e:  # a bug in one answer must not stop the supervisor
            log.exception("control request failed")
            self._reply(conn, {"ok": False, "error": f"internal error: {type(e).__name__}: {e}"})

    def _drop(self, conn: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(conn)
        self._clients.pop(conn.fileno(), None)
        conn.close()

    def _reply(self, conn: socket.socket, msg: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(2.0)
            conn.sendall(control.encode(msg))
        conn.close()

    def _request(self, conn: socket.socket, cmd: str, args: dict[str, Any]) -> None:
        if cmd == "ping":
            self._reply(conn, {"ok": True, "result": {"pid": os.getpid()}})
        elif cmd == "reload":
            self._reply(conn, {"ok": True, "result": {"notes": self.reload()}})
        elif cmd == "status":
            self._ask(conn, "status", {}, self._procs(), STATUS_WAIT, self._status)
        else:
            svc = self.services
            if svc is None or svc.state != "running":
                raise IpmirrorError(f"no service process runs to handle {cmd!r}"
                                    + (" (read-only)" if self.plan.read_only else ""))
            self._ask(conn, cmd, args, [svc], COMMAND_WAIT, _only_reply)

    def _ask(self, conn: socket.socket, cmd: str, args: dict[str, Any], procs: list[Proc],
             wait: float, finish: Callable[[dict[int, dict[str, Any]]], dict[str, Any]]) -> None:
        rid = next(self._ids)
        q = self._pending[rid] = _Pending(conn, set(), time.monotonic() + wait, finish)
        for p in procs:
            if self._send(p, rid, cmd, args):
                q.waiting.add(p.pid)
        if not q.waiting:
            self._finish(rid)

    def _expire(self, now: float) -> None:
        for rid, q in list(self._pending.items()):
            if q.deadline <= now:
                self._finish(rid)

    def _finish(self, rid: int) -> None:
        q = self._pending.pop(rid)
        try:
            reply = q.finish(q.replies)
        except Exception as e:  # a bug in an answer must not stop the supervisor
            log.exception("control answer failed")
            reply = {"ok": False, "error": f"internal error: {e}"}
        self._reply(q.client, reply)

    def _status(self, replies: dict[int, dict[str, Any]]) -> dict[str, Any]:
        def part(p: Proc) -> dict[str, Any]:
            r = replies.get(p.pid, {})
            return r.get("result") or {} if r.get("ok") else {}

        server = {"running": True, "pid": os.getpid(), "read_only": self.plan.read_only,
                  "started": self.started, "control_socket": self.plan.control_socket,
                  "listeners": [{"address": _address(s), "apps": list(lst.apps)}
                                for s, lst in zip(self.socks, self.config.server.listeners, strict=True)]}
        workers = [{**w.info(), **part(w)} for w in self.workers]
        svc = self.services
        services = part(svc).get("services", []) if svc is not None else []
        return {"ok": True, "result": {"server": server, "workers": workers,
                                       "service_process": svc.info() if svc is not None else None,
                                       "services": services}}

    # -- reload -----------------------------------------------------------------------------------
    def reload(self) -> list[str]:
        new = self.plan.load_config()
        old, self.config = self.config, new
        self.generation += 1
        notes = []
        s, t = new.server, old.server
        if s.listeners != t.listeners or s.control_socket != t.control_socket:
            notes.append("listeners and the control socket change at the next start")
        if _worker_view(new) != _worker_view(old):
            self._roll = [w for w in self.workers if w.pid]
            notes.append("workers are replaced one by one")
        want = bool(self.plan.service_specs(new))
        svc = self.services
        if want and svc is None:
            self.services = Proc("services", 0, due=time.monotonic())
        elif want and svc is not None and svc.retire:  # still stopping: start it again at once
            svc.retire, svc.replace = False, True
        elif not want and svc is not None:
            svc.retire = True
            svc.due = 0.0
            if svc.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(svc.pid, signal.SIGTERM)
            else:
                self.services = None
        elif svc is not None and svc.pid:
            rid = next(self._ids)  # the answer is not awaited: the service process logs failures
            self._send(svc, rid, "reload", {"config": config_mod.to_json(new)})
        return notes

    def _close(self, old_fd: int) -> None:
        for conn, _ in list(self._clients.values()):
            conn.close()
        for q in self._pending.values():
            q.client.close()
        if self.control is not None:
            path = self.plan.control_socket
            with contextlib.suppress(OSError):
                if os.stat(path).st_ino == self._control_ino:  # not one a newer server made
                    os.unlink(path)
            self.control.close()
        for s in self.socks:
            s.close()
        signal.set_wakeup_fd(old_fd)
        os.close(self._wake[0])
        os.close(self._wake[1])
        self.sel.close()


def _only_reply(replies: dict[int, dict[str, Any]]) -> dict[str, Any]:
    if not replies:
        return {"ok": False, "error": "the service process did not answer"}
    (r,) = replies.values()
    return {k: v for k, v in r.items() if k != "id"}


def _worker_view(cfg: Config) -> Config:
    """The part of the configuration workers use (the rest is the service process's)."""
    d = Config()
    return dataclasses.replace(cfg, republish=d.republish, watch=d.watch)


def _address(s: socket.socket) -> str:
    host, port = s.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


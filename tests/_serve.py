"""A real ``ipmirror serve`` process on 127.0.0.1 for tests and a small HTTP client (http.client, so
requests go out byte for byte as written: no URL normalisation). The CLI runner is tests/_cli.py
(``run_cli``/``cli_bytes`` are importable from here too).

Usage::

    run_cli(repo, "mirror", "add", "site", str(tree))
    with serve(repo, tmp) as srv:
        r = srv.request("GET", "/ipns/site/hello.txt")
        srv.proc_status()["RssAnon"]

Nothing here reaches beyond loopback.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from _cli import cli_bytes, cli_env, run_cli

__all__ = ["HOST", "Reply", "Server", "cli_bytes", "cli_env", "ipns_name", "run_cli", "serve"]

HOST = "127.0.0.1"


def ipns_name(repo: Path, key: str) -> str:
    """The k51… name of a key (``ipmirror key list -l``)."""
    for line in run_cli(repo, "key", "list", "-l").splitlines():
        name, _, k = line.partition(" ")
        if k.strip() == key:
            return name
    raise AssertionError(f"no key named {key!r}")


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str:
        """A header that must be there (AssertionError otherwise)."""
        value = self.headers.get(name)
        assert value is not None, f"no {name} header in a {self.status} response: {dict(self.headers)}"
        return value

    def optional(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def connection(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(HOST, self.port, timeout=timeout)

    def request(self, method: str, path: str, headers: Mapping[str, str] | None = None,
                timeout: float = 30) -> Reply:
        conn = self.connection(timeout)
        try:
            conn.request(method, path, headers=dict(headers or {}))
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers)

    def raw(self, request_line: bytes, timeout: float = 30) -> tuple[int, bytes]:
        """Send ``request_line`` exactly as given (for input http.client refuses to send); the
        status code and the whole response."""
        with socket.create_connection((HOST, self.port), timeout=timeout) as s:
            s.sendall(request_line + b"\r\nHost: " + HOST.encode() + b"\r\nConnection: close\r\n\r\n")
            chunks = []
            while c := s.recv(65536):
                chunks.append(c)
        data = b"".join(chunks)
        return int(data.split(b" ", 2)[1]), data

    # -- the process, as the kernel sees it -------------------------------------------------------
    def proc_status(self) -> dict[str, int]:
        """Numeric fields of /proc/PID/status (kB for memory; Threads)."""
        out = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            parts = v.split()
            if parts and parts[0].isdigit():
                out[k] = int(parts[0])
        return out

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serve(repo: Path, workdir: Path, *args: str, start_timeout: float = 30) -> Iterator[Server]:
    """``ipmirror serve`` on a free loopback port (``--port-file``) for the ``with`` block; stopped
    with SIGTERM after it (SIGKILL if it does not stop in 15 s)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port_file = workdir / "serve.port"
    port_file.unlink(missing_ok=True)
    log = workdir / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ipmirror", "serve", "--listen", f"{HOST}:0",
                                 "--port-file", str(port_file), "--no-access-log", *args],
                                env=cli_env(repo), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + start_timeout
        while not port_file.exists():
            if proc.poll() is not None:
                raise AssertionError(f"ipmirror serve exited with {proc.returncode}:\n"
                                     f"{log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise AssertionError(f"ipmirror serve did not start in {start_timeout}s")
            time.sleep(0.02)
        yield Server(proc, int(port_file.read_text()), log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

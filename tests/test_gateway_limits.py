"""The gateway under hostile clients (issue #10, point 5): partial headers are cut off, stalled
readers pin bounded memory that is given back, malformed requests get short answers and one log
line each, and the access log escapes what clients send."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from _serve import HOST, Server, cli_env, run_cli, serve
from test_serve_workers import children


def _worker(srv: Server) -> int:
    deadline = time.monotonic() + 20
    while not (kids := children(srv.proc.pid)):
        assert time.monotonic() < deadline, "no worker"
        time.sleep(0.05)
    # the worker is the child that serves HTTP: with --read-only there is no service process
    return kids[0]


def _rss_anon(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) << 10
    raise AssertionError("no RssAnon")


def _closed(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_partial_headers_are_cut_off(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli(repo, "init")
    run_cli(repo, "config", "set", "server.header_timeout", "1.5")
    with serve(repo, tmp_path, "--workers", "1", "--read-only") as srv:
        silent = socket.create_connection((HOST, srv.port))
        slow = [socket.create_connection((HOST, srv.port)) for _ in range(20)]
        for s in slow:
            s.sendall(b"GET /ipfs/bafkqaaa HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        for s in slow[:3]:  # one more header line a second: still cut off at the deadline
            s.sendall(b"X-A: 1\r\n")
        assert all(_closed(s, 5) for s in [silent, *slow])
        assert time.monotonic() - t0 < 4
        # a client that sends its request in pieces but in time is served, and kept alive
        with socket.create_connection((HOST, srv.port)) as s:
            s.sendall(b"GET /ipfs/bafkqaaa HTTP/1.1\r\n")
            time.sleep(0.5)
            s.sendall(b"Host: x\r\n\r\n")
            s.settimeout(5)
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
            time.sleep(2)  # idle between requests: keep-alive, not the header limit
            s.sendall(b"GET /ipfs/bafkqaaa HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
        for s in [silent, *slow]:
            s.close()


def test_malformed_requests_get_short_answers_and_one_log_line(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli(repo, "init")
    with serve(repo, tmp_path, "--workers", "1", "--read-only") as srv:
        bad_header = b"X-Bad: " + b"\x01<script>" * 10_000
        garbage = [b"GET /ipfs/bafkqaaa HTTP/1.1\r\nHost: x\r\n" + bad_header + b"\r\n\r\n",
                   b"\x16\x03\x01" + os.urandom(100_000) + b"\r\n\r\n",
                   b"GET /" + b"A" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"]
        for g in garbage:
            with socket.create_connection((HOST, srv.port), timeout=10) as s:
                s.sendall(g[:65536])
                with contextlib.suppress(OSError):
                    s.sendall(g[65536:])
                out = b""
                with contextlib.suppress(OSError):
                    while c := s.recv(65536):
                        out += c
            assert out[:len(b"HTTP/1.x 4")] in (b"HTTP/1.1 4", b"HTTP/1.0 4"), out[:200]
            assert len(out) < 1000 and b"<script>" not in out and b"AAAA" not in out, out
        time.sleep(0.5)
        log = srv.log_text()
        assert "Traceback" not in log, log[-3000:]
        assert log.count("malformed request from") == len(garbage), log[-3000:]


def test_stalled_readers_pin_bounded_memory_given_back(tmp_path: Path) -> None:
    """200 clients start a 16 MB download and stop reading; the worker's anonymous memory stays
    bounded while they stall and comes back to within 20 MB once they leave."""
    repo = tmp_path / "repo"
    f = tmp_path / "big"
    f.write_bytes(os.urandom(16 << 20))
    cid = run_cli(repo, "add", "-Q", f).strip()
    with serve(repo, tmp_path, "--workers", "1", "--read-only") as srv:
        pid = _worker(srv)
        assert srv.get(f"/ipfs/{cid}").status == 200  # warm: caches, pools and arenas in use
        before = _rss_anon(pid)
        socks = []
        for _ in range(200):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect((HOST, srv.port))
            s.sendall(f"GET /ipfs/{cid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            socks.append(s)
        time.sleep(3)
        stalled = _rss_anon(pid)
        for s in socks:
            s.close()
        time.sleep(3)
        after = _rss_anon(pid)
        assert stalled - before < 200 * (3 << 19), (before, stalled)  # a block (1 MiB) and a little each
        assert after - before < 20 << 20, (before, stalled, after)
        assert srv.get(f"/ipfs/{cid}").status == 200


def test_access_log_escapes_quotes_and_control_characters(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli(repo, "init")
    log = tmp_path / "serve.log"
    port_file = tmp_path / "port"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ipmirror", "serve", "--listen", f"{HOST}:0",
                                 "--port-file", str(port_file), "--workers", "1", "--read-only"],
                                env=cli_env(repo), stdout=out, stderr=subprocess.STDOUT)
    try:
        while not port_file.exists():
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        port = int(port_file.read_text())
        with socket.create_connection((HOST, port), timeout=10) as s:
            s.sendall(b'GET /ipfs/bafkqaaa?q=%22 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n'
                      b'User-Agent: evil" 200 "x\ty\r\nReferer: a"b\\c\r\n\r\n')
            while s.recv(65536):
                pass
        deadline = time.monotonic() + 5
        while "GET /ipfs/bafkqaaa" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(15)
    line = next(ln for ln in log.read_text(errors="replace").splitlines() if "GET /ipfs/bafkqaaa" in ln)
    assert '"a\\"b\\\\c" "evil\\" 200 \\"x\\x09y"' in line, line
    assert "\t" not in line

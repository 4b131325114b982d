"""``ipmirror serve --workers N``: several processes accept on one socket, stop together, see new
versions written by other processes, and none of them republishes (the service process does);
and the small-file path (answered from memory) agrees with the streamed one. The process model
itself (restarts, the control channel) is tested in test_server.py.

Each test starts its own server (a real process tree on 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from _serve import Server, run_cli, serve


@dataclass
class Site:
    repo: Path
    tree: Path
    files: dict[str, bytes]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("workers")
    repo, tree = tmp / "repo", tmp / "site"
    rnd = random.Random(7)
    files = {f"f{i:02d}.bin": rnd.randbytes(rnd.randrange(1, 64 << 10)) for i in range(40)}
    for name, content in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(content)
    run_cli(repo, "mirror", "add", "site", tree)
    run_cli(repo, "mirror", "sync", "site")
    yield Site(repo, tree, files)


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def wait_workers(srv: Server, n: int, timeout: float = 20, services: int = 1) -> list[int]:
    """The supervisor's children once there are ``n`` workers and ``services`` service processes."""
    deadline = time.monotonic() + timeout
    while len(kids := children(srv.proc.pid)) != n + services:
        assert time.monotonic() < deadline, f"expected {n} workers, have {kids}"
        time.sleep(0.05)
    return kids


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def fetch_all(srv: Server, paths: list[str]) -> list[tuple[int, bytes]]:
    """Each path on its own connection, 16 at a time."""
    with ThreadPoolExecutor(16) as pool:
        return [(r.status, r.body) for r in pool.map(srv.get, paths)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_workers_share_the_port_and_stop_together(site: Site, tmp_path: Path, sig: int) -> None:
    with serve(site.repo, tmp_path, "--workers", "3") as srv:
        kids = wait_workers(srv, 3)
        names = sorted(site.files) * 5
        replies = fetch_all(srv, [f"/ipns/site/{n}" for n in names])
        for (status, body), name in zip(replies, names, strict=True):
            assert status == 200 and body == site.files[name], (name, status)
        srv.proc.send_signal(sig)
        assert srv.proc.wait(20) == 0, srv.log_text()
    assert all(gone(k) for k in kids), kids
    assert "serving on http://127.0.0.1:" in srv.log_text() and "(3 workers)" in srv.log_text()


def test_every_worker_serves_a_version_synced_by_another_process(site: Site, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "v.txt").write_bytes(b"one\n")
    run_cli(site.repo, "mirror", "add", "moving", tree)
    run_cli(site.repo, "mirror", "sync", "moving")
    with serve(site.repo, tmp_path / "srv", "--workers", "2") as srv:
        wait_workers(srv, 2)
        assert {r for r in fetch_all(srv, ["/ipns/moving/v.txt"] * 32)} == {(200, b"one\n")}
        (tree / "v.txt").write_bytes(b"two, longer\n")
        os.utime(tree / "v.txt", (time.time() - 10, time.time() - 10))  # not "racily clean"
        v2 = json.loads(run_cli(site.repo, "mirror", "sync", "moving", "--json"))["root"]
        replies = fetch_all(srv, ["/ipns/moving/v.txt"] * 32)
        assert set(replies) == {(200, b"two, longer\n")}, replies[:3]
        r = srv.get("/ipns/moving/v.txt")
        assert r.header("X-Ipfs-Roots").split(",")[0] == v2


def test_records_are_republished_once(site: Site, tmp_path: Path) -> None:
    # every local record expires within 10^6 hours: each check re-signs all of them, once
    with serve(site.repo, tmp_path, "--workers", "3", "--republish-within", "1000000") as srv:
        wait_workers(srv, 3)
        deadline = time.monotonic() + 20
        while "republished" not in srv.log_text():
            assert time.monotonic() < deadline, srv.log_text()
            time.sleep(0.1)
        time.sleep(1.5)  # time for a second worker to do the same, if one did
        names = re.findall(r"republished (\S+) ->", srv.log_text())
    assert names and len(names) == len(set(names)), names


def test_small_multi_block_files_from_memory(site: Site, tmp_path: Path) -> None:
    """A file of many small blocks below the in-memory limit: whole, ranges and HEAD agree with
    the bytes (the same answers the streamed path gives, see test_gateway_path)."""
    content = random.Random(3).randbytes(100_000)
    (tmp_path / "m.bin").write_bytes(content)
    cid = run_cli(site.repo, "add", "-Q", "--chunker", "size-1024", "--max-links", "4",
                  tmp_path / "m.bin").strip()
    with serve(site.repo, tmp_path / "srv", "--workers", "1") as srv:
        r = srv.get(f"/ipfs/{cid}")
        assert r.status == 200 and r.body == content and r.header("Content-Length") == "100000"
        r = srv.get(f"/ipfs/{cid}", {"Range": "bytes=5000-70000"})
        assert r.status == 206 and r.body == content[5000:70001]
        assert r.header("Content-Range") == "bytes 5000-70000/100000"
        r = srv.request("HEAD", f"/ipfs/{cid}")
        assert r.status == 200 and r.body == b"" and r.header("Content-Length") == "100000"
        again = srv.get(f"/ipfs/{cid}", {"If-None-Match": r.header("ETag")})
        assert again.status == 304


def test_workers_do_not_outlive_a_killed_parent(site: Site, tmp_path: Path) -> None:
    with serve(site.repo, tmp_path, "--workers", "2") as srv:
        kids = wait_workers(srv, 2)
        srv.proc.kill()
        srv.proc.wait()
        deadline = time.monotonic() + 15
        while not all(gone(k) for k in kids):
            assert time.monotonic() < deadline, "workers still running after their parent died"
            time.sleep(0.1)


def test_replayed_answers_match_the_general_path(site: Site, tmp_path: Path) -> None:
    """A plain request seen before is answered from remembered headers (gateway/replay.py): the
    second answer must equal the first, and anything not plain still gets its own answer."""
    root = run_cli(site.repo, "name", "resolve", "site").strip()  # /ipfs/<root>
    name = sorted(site.files)[3]
    url = f"{root}/{name}"
    with serve(site.repo, tmp_path, "--workers", "1") as srv:
        first, second = srv.get(url), srv.get(url)
        drop = {"Date"}
        assert first.status == second.status == 200 and first.body == second.body == site.files[name]
        assert ({k: v for k, v in first.headers.items() if k not in drop}
                == {k: v for k, v in second.headers.items() if k not in drop})
        head = srv.request("HEAD", url)
        assert head.status == 200 and head.body == b""
        assert head.header("Content-Length") == str(len(site.files[name]))
        assert srv.get(f"{root}/./{name}").header("X-Ipfs-Path") == f"{root}/./{name}"
        etag = first.header("ETag")
        assert srv.get(url, {"If-None-Match": etag}).status == 304
        r = srv.get(url, {"Range": "bytes=1-3"})
        assert r.status == 206 and r.body == site.files[name][1:4]
        raw = srv.get(url, {"Accept": "application/vnd.ipld.raw"})
        assert raw.header("Content-Type") == "application/vnd.ipld.raw" and raw.body == site.files[name]
        dl = srv.get(f"{url}?filename=x.txt&download=true")
        assert dl.header("Content-Disposition").startswith("attachment") and dl.body == site.files[name]
        assert second.header("Access-Control-Allow-Origin") == "*" and second.header("Vary") == "Accept"


def _raw_exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on one connection; everything received until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(1 << 16):
            out += chunk
    return out


def _split_answers(raw: bytes) -> list[tuple[bytes, dict[str, str], bytes]]:
    """Consecutive HTTP/1.x answers to GETs, with Content-Length bodies."""
    answers = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        status, *lines = head.decode().split("\r\n")
        headers = {k.lower(): v for k, _, v in (x.partition(": ") for x in lines)}
        n = int(headers.get("content-length", "0"))
        answers.append((status.encode(), headers, rest[:n]))
        raw = rest[n:]
    return answers


def test_replayed_answers_on_the_wire(site: Site, tmp_path: Path) -> None:
    """Replays written in one piece (gateway/replay.py ``Prebuilt``) keep HTTP/1.1 semantics:
    several (pipelined) answers on one connection, HEAD without a body, and HTTP/1.0 or
    ``Connection: close`` requests answered with the right ``Connection`` handling."""
    root = run_cli(site.repo, "name", "resolve", "site").strip()
    a, b = sorted(site.files)[5:7]
    with serve(site.repo, tmp_path, "--workers", "1") as srv:
        general = {n: srv.get(f"{root}/{n}") for n in (a, b)}  # remembered by the general path
        req = "GET {} HTTP/1.1\r\nHost: x\r\n\r\n"
        pipelined = (req.format(f"{root}/{a}") + req.format(f"{root}/{b}") + req.format(f"{root}/{a}")
                     + f"GET {root}/{b} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode()
        answers = _split_answers(_raw_exchange(srv.port, pipelined))
        assert [x[2] for x in answers] == [site.files[n] for n in (a, b, a, b)]
        for (status, h, _), n in zip(answers, (a, b, a, b), strict=True):
            assert status == b"HTTP/1.1 200 OK"
            skip = ("date", "connection")
            want = {k.lower(): v for k, v in general[n].headers.items() if k.lower() not in skip}
            assert {k: v for k, v in h.items() if k not in skip} == want
            assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", h["date"])
        assert "connection" not in answers[0][1] and answers[3][1]["connection"] == "close"

        raw = _raw_exchange(srv.port, (f"HEAD {root}/{a} HTTP/1.1\r\nHost: x\r\n\r\n"  # no body
                                       f"GET {root}/{b} HTTP/1.1\r\nHost: x\r\n"
                                       "Connection: close\r\n\r\n").encode())
        head, _, after = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert f"Content-Length: {len(site.files[a])}\r\n".encode() in head + b"\r\n"
        assert [x[2] for x in _split_answers(after)] == [site.files[b]]

        old = _split_answers(_raw_exchange(srv.port, f"GET {root}/{a} HTTP/1.0\r\n\r\n".encode()))
        assert len(old) == 1 and old[0][0] == b"HTTP/1.0 200 OK" and old[0][2] == site.files[a]
        assert old[0][1].get("connection", "close").lower() == "close"

        with contextlib.closing(srv.connection()) as conn:  # keep-alive: the same connection again
            for n in (a, b, a):
                conn.request("GET", f"{root}/{n}")
                r = conn.getresponse()
                assert r.status == 200 and r.read() == site.files[n]

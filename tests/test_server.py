"""The server runtime as processes (server/): a dead worker or service process is restarted with
backoff while the rest keep answering, SIGTERM leaves nothing behind, commands reach a running
server over the control channel (and work without one), ``config set`` reaches it without a
restart, ``--read-only`` runs no writing service, and the URL map answers 404 off the map.

Each test starts its own ``ipmirror serve`` (a real process tree on 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _serve import HOST, Server, cli_env, run_cli, serve


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    repo, tree = tmp_path / "repo", tmp_path / "site"
    tree.mkdir()
    (tree / "a.txt").write_bytes(b"alpha\n")
    run_cli(repo, "mirror", "add", "site", tree)
    run_cli(repo, "mirror", "sync", "site")
    yield repo


def status(repo: Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(run_cli(repo, "status", "--json"))
    return out


def wait_for(what: Callable[[], Any], timeout: float = 20, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while not (v := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(step)
    return v


def ready(repo: Path, workers: int, service: bool = True) -> dict[str, Any]:
    """The status once every process is running."""
    def check() -> dict[str, Any] | None:
        st = status(repo)
        ws = st.get("workers", [])
        sp = st.get("service_process")
        ok = (len(ws) == workers and all(w["state"] == "running" for w in ws)
              and (sp is not None and sp["state"] == "running" if service else sp is None))
        return st if ok else None
    st: dict[str, Any] = wait_for(check)
    return st


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Poller:
    """Fetches a URL over and over on a thread, counting answers that were not 200 + body."""

    def __init__(self, srv: Server, path: str, body: bytes) -> None:
        self.srv, self.path, self.body = srv, path, body
        self.ok = self.bad = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                r = self.srv.get(self.path)
                good = r.status == 200 and r.body == self.body
            except OSError:
                good = False
            if good:
                self.ok += 1
            else:
                self.bad += 1

    def __enter__(self) -> Poller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def test_a_killed_service_process_is_restarted_while_workers_answer(site: Path, tmp_path: Path) -> None:
    with serve(site, tmp_path / "srv", "--workers", "2") as srv:
        st = ready(site, 2)
        assert [s["name"] for s in st["services"]] == ["republisher"]
        old = st["service_process"]["pid"]
        with Poller(srv, "/ipns/site/a.txt", b"alpha\n") as poll:
            os.kill(old, signal.SIGKILL)
            st = wait_for(lambda: (s := ready(site, 2))["service_process"]["pid"] != old and s)
            time.sleep(0.3)
        assert poll.bad == 0 and poll.ok > 0
        assert st["service_process"]["restarts"] == 1
        assert [s["state"] for s in st["services"]] == ["running"]
        assert "the service process" in srv.log_text() and "restarting it in 0.5s" in srv.log_text()


def test_a_killed_worker_is_restarted_with_backoff_while_the_other_answers(site: Path,
                                                                           tmp_path: Path) -> None:
    with serve(site, tmp_path / "srv", "--workers", "2") as srv:
        st = ready(site, 2)
        pids = [w["pid"] for w in st["workers"]]
        with Poller(srv, "/ipns/site/a.txt", b"alpha\n") as poll:
            os.kill(pids[0], signal.SIGKILL)
            time.sleep(0.2)
            during = status(site)["workers"][0]
            assert during["state"] in ("restarting", "starting", "running")
            st = wait_for(lambda: (s := ready(site, 2))["workers"][0]["pid"] != pids[0] and s)
            os.kill(st["workers"][0]["pid"], signal.SIGKILL)  # again: the delay doubles
            st = wait_for(lambda: (s := ready(site, 2))["workers"][0]["restarts"] == 2 and s)
            ok = poll.ok
            time.sleep(0.3)
        # at most the one request in flight on the killed worker is lost, each time
        assert poll.bad <= 2 and poll.ok > ok
        assert st["workers"][1]["pid"] == pids[1] and st["workers"][1]["restarts"] == 0
        log = srv.log_text()
        assert "worker 0 (pid" in log and "restarting it in 0.5s" in log and "restarting it in 1s" in log


def test_sigterm_stops_every_process(site: Path, tmp_path: Path) -> None:
    with serve(site, tmp_path / "srv", "--workers", "2") as srv:
        st = ready(site, 2)
        pids = [w["pid"] for w in st["workers"]] + [st["service_process"]["pid"]]
        sock = Path(st["server"]["control_socket"])
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(20) == 0, srv.log_text()
    assert not any(alive(p) for p in pids)
    assert not sock.exists()
    assert status(site)["server"] == {"running": False}


def test_status_without_a_repository(tmp_path: Path) -> None:
    st = status(tmp_path / "none")
    assert st["server"] == {"running": False} and "no repository at" in st["error"]


def test_status_and_republish_without_a_server(site: Path) -> None:
    st = status(site)
    assert st["server"] == {"running": False}
    assert [m["name"] for m in st["mirrors"]] == ["site"] and st["mirrors"][0]["versions"] == 1
    out = run_cli(site, "name", "republish", "--within", "1000000h")
    assert out.startswith("Republished ") and "(sequence 1," in out
    assert "not running" in run_cli(site, "status")


def test_republish_goes_to_the_running_server(site: Path, tmp_path: Path) -> None:
    with serve(site, tmp_path / "srv", "--workers", "1", "--republish-every", "100000") as srv:
        st = ready(site, 1)
        checks = st["services"][0]["checks"]
        out = run_cli(site, "name", "republish", "--within", "1000000h")
        assert out.startswith("Republished ") and "valid until" in out
        svc = status(site)["services"][0]
        assert svc["checks"] == checks + 1 and svc["republished"] >= 1  # done by the service
        assert run_cli(site, "name", "resolve", "site").startswith("/ipfs/")
        assert srv.proc.poll() is None


def test_config_set_reaches_the_running_server_without_a_restart(site: Path, tmp_path: Path) -> None:
    with serve(site, tmp_path / "srv", "--workers", "1") as srv:
        st = ready(site, 1)
        assert st["services"][0]["interval"] == 3600.0
        pids = (st["server"]["pid"], st["workers"][0]["pid"], st["service_process"]["pid"])
        r = subprocess.run([sys.executable, "-m", "ipmirror", "config", "set", "republish.interval", "7200"],
                           env=cli_env(site), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "reloaded" in r.stderr, r.stderr
        st = ready(site, 1)
        assert st["services"][0]["interval"] == 7200.0
        assert (st["server"]["pid"], st["workers"][0]["pid"], st["service_process"]["pid"]) == pids
        run_cli(site, "config", "set", "republish.enabled", "false")
        st = wait_for(lambda: (s := status(site))["service_process"] is None and s)
        assert st["services"] == [] and st["workers"][0]["pid"] == pids[1]
        srv.proc.send_signal(signal.SIGHUP)  # a reload too, not a stop
        wait_for(lambda: "reloaded the configuration" in srv.log_text())
        assert srv.proc.poll() is None and srv.get("/ipns/site/a.txt").body == b"alpha\n"


def test_a_setting_workers_use_replaces_them_one_by_one(site: Path, tmp_path: Path) -> None:
    with serve(site, tmp_path / "srv", "--workers", "2") as srv:
        st = ready(site, 2)
        pids = {w["pid"] for w in st["workers"]}
        service = st["service_process"]["pid"]
        with Poller(srv, "/ipns/site/a.txt", b"alpha\n") as poll:
            run_cli(site, "config", "set", "server.public_url", "http://127.0.0.1:9")
            st = wait_for(lambda: (s := ready(site, 2)) and not pids & {w["pid"] for w in s["workers"]} and s)
            ok = poll.ok
            time.sleep(0.3)
        # a stopping worker finishes its requests; a connection it accepted just as it stopped
        # listening may be closed unanswered (once per worker at most, with one client)
        assert poll.bad <= 2 and poll.ok > ok
        assert st["service_process"]["pid"] == service
        assert all(w["restarts"] == 0 for w in st["workers"])  # replaced, not crashed
        assert "restarting" not in srv.log_text()


def test_serve_watches_the_mirrors_its_config_names(site: Path, tmp_path: Path) -> None:
    tree = tmp_path / "site"
    with serve(site, tmp_path / "srv", "--workers", "1") as srv:
        ready(site, 1)
        run_cli(site, "config", "set", "watch.debounce", "0.2")
        run_cli(site, "config", "set", "watch.mirrors", "site")  # started by the reload
        wait_for(lambda: any(s["name"] == "watch:site" and s["state"] == "running"
                             for s in status(site)["services"]))
        (tree / "b.txt").write_bytes(b"beta\n")
        wait_for(lambda: srv.get("/ipns/site/b.txt").status == 200, timeout=30, step=0.2)
        assert srv.get("/ipns/site/b.txt").body == b"beta\n"


def test_read_only_runs_no_writing_service(site: Path, tmp_path: Path) -> None:
    with serve(site, tmp_path / "srv", "--workers", "1", "--read-only") as srv:
        st = ready(site, 1, service=False)
        assert st["server"]["read_only"] is True and st["services"] == []
        assert "read-only: no writing service runs" in srv.log_text()
        assert srv.get("/ipns/site/a.txt").body == b"alpha\n"
        run_cli(site, "config", "set", "watch.mirrors", "site")
        time.sleep(0.5)
        assert status(site)["service_process"] is None


@contextlib.contextmanager
def serve_configured(repo: Path, workdir: Path) -> Iterator[Server]:
    """``ipmirror serve`` on the listeners of the repository's config (no ``--listen``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port_file, log = workdir / "port", workdir / "log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ipmirror", "serve", "--port-file", str(port_file)],
                                env=cli_env(repo), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: port_file.exists() or proc.poll() is not None)
        assert proc.poll() is None, log.read_text()
        yield Server(proc, int(port_file.read_text()), log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_url_map_and_several_listeners(site: Path, tmp_path: Path) -> None:
    listeners = [{"address": f"{HOST}:0", "apps": ["gateway"]}, {"address": f"{HOST}:0", "apps": ["gateway"]}]
    run_cli(site, "config", "set", "server.listeners", json.dumps(listeners))
    run_cli(site, "config", "set", "server.workers", "1")
    run_cli(site, "config", "set", "server.access_log", "off")
    with serve_configured(site, tmp_path / "srv") as srv:
        st = ready(site, 1)
        addrs = [lst["address"] for lst in st["server"]["listeners"]]
        assert len(set(addrs)) == 2
        for path in ("/", "/-/healthy", "/-/status.json", "/cache/x/y", "/by-hash/sha256/00", "/pinning/pins",
                     "/nothing"):
            assert srv.get(path).status == 404, path
        assert srv.get("/ipns/site/a.txt").status == 200
        other = Server(srv.proc, int(addrs[1].rsplit(":", 1)[1]), srv.log)
        assert other.get("/ipns/site/a.txt").body == b"alpha\n"


def test_a_second_server_on_the_repository_is_refused(site: Path, tmp_path: Path) -> None:
    with serve(site, tmp_path / "srv", "--workers", "1"):
        ready(site, 1)
        with (pytest.raises(AssertionError, match="a server is running already"),
              serve(site, tmp_path / "srv2", "--workers", "1")):
            pass


def test_control_socket_path_limits(site: Path) -> None:
    long = "x" * 120
    r = subprocess.run([sys.executable, "-m", "ipmirror", "config", "set", "server.control_socket", long],
                       env=cli_env(site), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "longer than 107 bytes" in r.stderr and "Traceback" not in r.stderr
    assert run_cli(site, "config", "get", "server.control_socket").strip() == ""  # not written
    short = site.parent / "c.sock"  # an absolute path outside the repository
    run_cli(site, "config", "set", "server.control_socket", str(short))
    with serve(site, site.parent / "srv", "--workers", "1"):
        st = ready(site, 1)
        assert st["server"]["control_socket"] == str(short) and short.exists()

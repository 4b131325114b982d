"""The pull-through cache (cache/): real pip and uv installing through ``ipmirror serve`` from an
upstream index the tests run on 127.0.0.1 (tests/_pypi_upstream.py); the upstream stopped,
tampered with and misbehaving; coalescing across workers; a SIGKILL during a fill; the pure index
code on its own.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _pypi_upstream import Dist, Upstream, sdist, wheel
from _serve import HOST, Server, run_cli, serve
from ipmirror.cache import pypi_index as ix
from ipmirror.cache.app import hostile
from ipmirror.cache.pipconf import check_upstream, pip_index_url
from ipmirror.cli.main import main
from ipmirror.errors import DecodeError, InvalidInput


def client_env(**extra: str) -> dict[str, str]:
    """No pip/uv settings from the machine (CLIENTS.md): only what the test passes."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("PIP_", "UV_")) and not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def run(cmd: list[str], *, check: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(cmd, env=client_env(**extra), capture_output=True, text=True, timeout=180)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def venv(path: Path) -> Path:
    run(["uv", "venv", "-q", "--no-project", "--python", sys.executable, str(path)])
    return path / "bin" / "python"


def pip(python: Path, index: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir",
                "--only-binary", ":all:", "--index-url", index, *args], check=check,
               PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")


def uv(python: Path, index: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["uv", "pip", "install", "--python", str(python), "--no-cache", "--no-config",
                "--index-url", index, "--only-binary", ":all:", *args], check=check)


def imports(python: Path, module: str) -> str:
    return run([str(python), "-c", f"import {module}; print({module}.VERSION)"]).stdout.strip()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stats(repo: Path) -> dict[str, object]:
    out: dict[str, object] = json.loads(run_cli(repo, "cache", "stats", "pypi", "--json"))
    return out


@pytest.fixture
def up() -> Iterator[Upstream]:
    u = Upstream.start({
        "alpha": [wheel("alpha", "1.0", []), sdist("alpha", "1.0")],
        "beta": [wheel("beta", "1.0", ["alpha"])],
        "gamma": [wheel("gamma", "1.0", [])],
    })
    try:
        yield u
    finally:
        u.close()


def add_cache(repo: Path, up: Upstream, *args: str) -> None:
    run_cli(repo, "cache", "add", "pypi", "--type", "pypi", "--upstream", up.url, *args)


def index(srv: Server) -> str:
    return f"{srv.base}/cache/pypi/simple/"


def wait_stored(srv: Server, path: str) -> None:
    """Until the artifact is served from the store (a fill in progress ignores Range)."""
    for _ in range(200):
        if srv.get(path, {"Range": "bytes=0-0"}).status == 206:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} was not stored")


def file_path(d: Dist, project: str) -> str:
    return f"/cache/pypi/files/{project}/{d.filename}"


# -- pip and uv ------------------------------------------------------------------------------------

def test_pip_and_uv_through_the_cache_then_without_upstream(up: Upstream, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    add_cache(repo, up, "--ttl", "0")  # every page revalidated: the stale path is taken below
    alpha, beta = up.projects["alpha"][0], up.projects["beta"][0]
    req = tmp_path / "requirements.txt"
    req.write_text(f"beta==1.0 --hash=sha256:{sha(beta.data)}\nalpha==1.0 --hash=sha256:{sha(alpha.data)}\n")
    with serve(repo, tmp_path / "w1", "--workers", "2") as srv:
        py = venv(tmp_path / "v1")
        p = pip(py, index(srv), "beta")
        assert "Successfully installed alpha-1.0 beta-1.0" in p.stdout, p.stdout
        assert imports(py, "beta") == "1.0"
        assert up.downloads[beta.filename + ".metadata"] == 1  # PEP 658 metadata went through the cache
        pip(venv(tmp_path / "v2"), index(srv), "--require-hashes", "-r", str(req))
        py = venv(tmp_path / "v3")
        uv(py, index(srv), "beta")
        assert imports(py, "alpha") == "1.0"
        assert up.downloads[alpha.filename] == 1 and up.downloads[beta.filename] == 1
        r = srv.get(f"/by-hash/sha256/{sha(alpha.data)}")
        assert r.status == 200 and r.body == alpha.data
        assert r.header("X-Ipfs-Path").startswith("/ipfs/bafkrei")  # one chunk: the raw block of its hash
        r = srv.get(file_path(beta, "beta"))
        assert r.body == beta.data and r.header("ETag") == f'"{r.header("X-Ipfs-Path")[6:]}"'
        cid = r.header("X-Ipfs-Path")[6:]
        assert srv.get(f"/ipfs/{cid}").body == beta.data  # a UnixFS file of the store, like any other
    st = stats(repo)
    assert st["artifacts"] == 4 and st["unverified"] == 0, st  # two wheels, two .metadata files
    assert "exported 2 artifacts" in run_cli(repo, "cache", "export", "pypi")
    up.stop()
    with serve(repo, tmp_path / "w2", "--workers", "1") as srv:  # a restart keeps the cache
        py = venv(tmp_path / "v4")
        p = pip(py, index(srv), "beta")
        assert "Successfully installed alpha-1.0 beta-1.0" in p.stdout, p.stdout + p.stderr
        pip(venv(tmp_path / "v5"), index(srv), "--require-hashes", "-r", str(req))
        uv(venv(tmp_path / "v6"), index(srv), "beta")
        # the export is a mirror like any other: a static index of what was cached, under IPNS
        page = srv.get("/ipns/cache-pypi/simple/beta/").body
        assert beta.filename.encode() in page and sha(beta.data).encode() in page
        assert srv.get(f"/ipns/cache-pypi/files/beta/{beta.filename}").body == beta.data
        pip(venv(tmp_path / "v8"), f"{srv.base}/ipns/cache-pypi/simple/", "beta")
        r = srv.get("/cache/pypi/simple/beta/", {"Accept": ix.JSON_V1})
        assert r.status == 200 and r.header("Warning").startswith("111") and int(r.header("Age")) >= 0
        # never fetched: a clear failure, not an empty page
        p = pip(venv(tmp_path / "v7"), index(srv), "gamma", check=False)
        assert p.returncode != 0
        r = srv.get("/cache/pypi/simple/gamma/")
        assert r.status == 502 and b"upstream unreachable" in r.body, r.body
        run_cli(repo, "cache", "set", "pypi", "--offline")
        time.sleep(2.5)  # a running server reads the settings again every 2 s
        r = srv.get("/cache/pypi/simple/gamma/")
        assert r.status == 404 and b"offline" in r.body
        r = srv.get("/cache/pypi/simple/alpha/")  # only what is held is listed when offline
        assert r.status == 200 and alpha.filename.encode() in r.body and b".tar.gz" not in r.body


def test_tampered_upstream_is_refused_and_nothing_cached(up: Upstream, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    add_cache(repo, up)
    alpha = up.projects["alpha"][0]
    up.tampered.add(alpha.filename)
    with serve(repo, tmp_path / "w", "--workers", "1") as srv:
        p = pip(venv(tmp_path / "v1"), index(srv), "alpha", check=False)
        assert p.returncode != 0
        r = srv.get(file_path(alpha, "alpha"))
        assert r.status == 502 and b"do not match the published sha256" in r.body, r.body
        assert srv.get(f"/by-hash/sha256/{sha(alpha.data)}").status == 502
        st = stats(repo)  # only the (untampered) .metadata pip read first
        assert alpha.metadata is not None
        assert (st["artifacts"], st["bytes"]) == (1, len(alpha.metadata)), st
        up.tampered.clear()
        p = pip(venv(tmp_path / "v2"), index(srv), "alpha")
        assert "Successfully installed alpha-1.0" in p.stdout
        assert srv.get(f"/by-hash/sha256/{sha(alpha.data)}").body == alpha.data


# -- coalescing, crashes ---------------------------------------------------------------------------

def _get(port: int, path: str, out: list[object]) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        out.append((resp.status, sha(resp.read())))
    except Exception as e:
        out.append(e)
    finally:
        conn.close()


def test_twenty_concurrent_requests_one_upstream_download(tmp_path: Path) -> None:
    big = Dist("big-1.0.tar.gz", os.urandom(32 << 20))
    up = Upstream.start({"big": [big]})
    up.slow = 0.02  # ~0.7 s for the whole body: the requests overlap
    try:
        repo = tmp_path / "repo"
        add_cache(repo, up)
        with serve(repo, tmp_path / "w", "--workers", "2") as srv:
            assert srv.get("/cache/pypi/simple/big/").status == 200
            results: list[object] = []
            threads = [threading.Thread(target=_get, args=(srv.port, file_path(big, "big"), results))
                       for _ in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            good = (200, sha(big.data))
            assert results == [good] * 20, [r for r in results if r != good][:3]
            assert up.downloads[big.filename] == 1
            wait_stored(srv, file_path(big, "big"))
            r = srv.get(file_path(big, "big"), {"Range": "bytes=1000-1999"})  # from the store now
            assert r.status == 206 and r.body == big.data[1000:2000]
            assert r.header("X-Ipfs-Path").startswith("/ipfs/bafybei")  # 32 chunks: a dag-pb root
    finally:
        up.close()


def descendants(pid: int) -> list[int]:
    out = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        out += [*descendants(int(child)), int(child)]
    return out


def test_sigkill_during_a_fill(tmp_path: Path) -> None:
    big = Dist("big-1.0.tar.gz", os.urandom(12 << 20))
    up = Upstream.start({"big": [big]})
    up.slow = 0.2
    try:
        repo = tmp_path / "repo"
        add_cache(repo, up)
        with serve(repo, tmp_path / "w1", "--workers", "1") as srv:
            assert srv.get("/cache/pypi/simple/big/").status == 200
            conn = http.client.HTTPConnection(HOST, srv.port, timeout=30)
            conn.request("GET", file_path(big, "big"))
            resp = conn.getresponse()
            assert resp.status == 200 and len(resp.read(1 << 20)) == 1 << 20
            for pid in [*descendants(srv.proc.pid), srv.proc.pid]:  # the workers, the supervisor
                os.kill(pid, signal.SIGKILL)
            srv.proc.wait(10)
            with pytest.raises(http.client.IncompleteRead):
                resp.read()  # cut short: never a complete-looking file
            conn.close()
        verify = subprocess.run([sys.executable, "-m", "ipmirror", "repo", "verify"], capture_output=True,
                                text=True, env=dict(os.environ, IPMIRROR_PATH=str(repo)), timeout=120)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert stats(repo)["artifacts"] == 0
        fills = repo / "caches" / "fills"
        assert len(list(fills.glob("*.part"))) == 1  # what the killed fill left
        up.slow = 0
        with serve(repo, tmp_path / "w2", "--workers", "1") as srv:
            assert srv.get("/cache/pypi/simple/").status == 200
            assert list(fills.glob("*.part")) == []  # swept at start
            r = srv.get(file_path(big, "big"))
            assert r.status == 200 and r.body == big.data
            assert up.downloads[big.filename] == 2
    finally:
        up.close()


# -- hostile upstreams and clients -----------------------------------------------------------------

def test_hostile_upstream(tmp_path: Path) -> None:
    mid = Dist("mid-1.0.tar.gz", os.urandom(4 << 20))
    moved = wheel("moved", "1.0", [])
    up = Upstream.start({"bad-json": [], "bad-type": [], "huge": [], "away": [], "mid": [mid],
                         "ok": [wheel("ok", "1.0", [])], "moved": [moved]})
    up.file_mode[moved.filename] = "redirect"
    up.page_mode.update({"bad-json": "malformed-json", "bad-type": "not-an-index", "huge": "huge",
                         "away": "redirect"})
    up.file_mode[mid.filename] = "close-mid-body"
    try:
        repo = tmp_path / "repo"
        add_cache(repo, up)
        with serve(repo, tmp_path / "w", "--workers", "1") as srv:
            for project, words in [("bad-json", b"malformed"), ("bad-type", b"malformed"),
                                   ("huge", b"too large"), ("away", b"another host")]:
                t0 = time.monotonic()
                r = srv.get(f"/cache/pypi/simple/{project}/")
                assert r.status == 502 and words in r.body, (project, r.status, r.body)
                assert time.monotonic() - t0 < 20
            assert up.page_fetches["huge"] == 1
            assert srv.get("/cache/pypi/simple/moved/").status == 200
            r = srv.get(file_path(moved, "moved"))
            assert r.status == 502 and b"another host" in r.body
            assert srv.get("/cache/pypi/simple/mid/").status == 200
            conn = http.client.HTTPConnection(HOST, srv.port, timeout=30)
            conn.request("GET", file_path(mid, "mid"))
            resp = conn.getresponse()
            if resp.status == 200:  # the body had started: it is cut short
                with pytest.raises(http.client.IncompleteRead):
                    resp.read()
            else:
                assert resp.status == 502
            conn.close()
            del up.file_mode[mid.filename]
            r = srv.get(file_path(mid, "mid"))
            assert r.status == 200 and r.body == mid.data
            assert srv.get("/cache/pypi/simple/ok/").status == 200  # the server is fine
    finally:
        up.close()


def test_hostile_clients_and_negotiation(up: Upstream, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    add_cache(repo, up)
    alpha = up.projects["alpha"][0]
    with serve(repo, tmp_path / "w", "--workers", "1") as srv:
        for target in [b"/cache/pypi/simple/../../../etc/passwd", b"/cache/pypi/simple/%2e%2e/%2E%2E/x/",
                       b"/cache/pypi/files/alpha/%00.whl", b"/cache/pypi/files/alpha/a%0ab.whl",
                       b"/cache/pypi/files/..%2f..%2fconfig.json/x", b"/by-hash/sha256/..%2f..%2f"]:
            status, _ = srv.raw(b"GET " + target + b" HTTP/1.1")
            assert status in (400, 404), (target, status)
        assert srv.get("/cache/pypi/files/alpha/..x").status == 400
        assert srv.get("/cache/nope/simple/").status == 404
        assert srv.get("/by-hash/sha256/abc").status == 400
        assert srv.get(f"/by-hash/sha256/{'0' * 64}").status == 404
        assert srv.get("/cache/pypi/simple/Alpha_/").status == 400
        r = srv.get("/cache/pypi/simple/Al.pha/")
        assert r.status == 301 and r.header("Location").endswith("/al-pha/")
        assert srv.get("/cache/pypi/simple/alpha/", {"Accept": "image/png"}).status == 406
        r = srv.get("/cache/pypi/simple/alpha/", {"Accept": f"text/html;q=0.5, {ix.JSON_V1}"})
        assert r.header("Content-Type").startswith(ix.JSON_V1) and r.header("Vary") == "Accept"
        path = file_path(alpha, "alpha")
        assert srv.get(path).body == alpha.data
        wait_stored(srv, path)
        r = srv.get(path, {"Range": "bytes=99999999999999999999-"})
        assert r.status == 416
        r = srv.get(path, {"Range": "bytes=" + ",".join(f"{i}-{i}" for i in range(500))})
        assert r.status == 200 and r.body == alpha.data  # too many ranges: ignored
        r = srv.get(path, {"Range": "bytes=-5"})
        assert r.status == 206 and r.body == alpha.data[-5:]
        # a file published without a hash: cached by content, counted as unverified
        gamma = up.projects["gamma"][0]
        up.no_hashes.add(gamma.filename)
        assert srv.get(file_path(gamma, "gamma")).body == gamma.data
        wait_stored(srv, file_path(gamma, "gamma"))
        assert srv.get(file_path(gamma, "gamma")).body == gamma.data
    st = stats(repo)
    assert (st["artifacts"], st["unverified"]) == (2, 1), st
    assert up.downloads[gamma.filename] == 1


def test_max_size_evicts_least_recently_used(up: Upstream, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    alpha, beta = up.projects["alpha"][0], up.projects["beta"][0]
    add_cache(repo, up, "--max-size", str(len(alpha.data) + len(beta.data) - 1))
    with serve(repo, tmp_path / "w", "--workers", "1") as srv:
        assert srv.get(file_path(alpha, "alpha")).body == alpha.data
        time.sleep(0.5)
        assert srv.get(file_path(beta, "beta")).body == beta.data
        time.sleep(0.5)
    st = stats(repo)
    assert st["artifacts"] == 1 and st["counters"]["evicted"] == 1, st  # type: ignore[index]
    assert run_cli(repo, "pin", "ls").count("recursive") == 1


# -- the CLI ---------------------------------------------------------------------------------------

def test_cache_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = http://u:secret@127.0.0.1:9/simple\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)

    def cli(*args: str) -> tuple[int, str, str]:
        rc = main(["--repo-dir", str(repo), *args])
        out = capsys.readouterr()
        return rc, out.out, out.err

    assert cli("cache", "add", "py", "--type", "pypi")[0] == 0
    listed = json.loads(cli("cache", "list", "--json")[1])
    assert listed == [{"name": "py", "type": "pypi", "upstream": "http://u:***@127.0.0.1:9/simple/",
                       "ttl": 600.0, "offline": False, "max_size": 0}]
    assert "secret" not in cli("cache", "list")[1]
    assert cli("cache", "url", "py", "--base", "http://127.0.0.1:8080")[1].strip() == \
        "http://127.0.0.1:8080/cache/py/simple/"
    conf.write_text("[global]\nindex-url = http://127.0.0.1:8080/cache/py/simple/\n")
    rc, _, err = cli("cache", "add", "again", "--type", "pypi")
    assert rc == 1 and "is an ipmirror cache itself" in err and "Traceback" not in err
    for bad in (["cache", "add", "py", "--type", "pypi", "--upstream", "http://127.0.0.1:1/"],
                ["cache", "add", "Bad/Name", "--type", "pypi", "--upstream", "http://127.0.0.1:1/"],
                ["cache", "add", "x", "--type", "pypi", "--upstream", "ftp://h/"],
                ["cache", "add", "x", "--type", "pypi", "--upstream", "http://127.0.0.1:1/",
                 "--max-size", "lots"],
                ["cache", "rm", "nope"], ["cache", "stats", "nope"], ["cache", "export", "nope"]):
        rc, _, err = cli(*bad)
        assert rc == 1 and err.startswith("Error: ") and len(err.splitlines()) == 1, err
    assert cli("cache", "set", "py", "--ttl", "5", "--max-size", "1G")[0] == 0
    assert json.loads(cli("cache", "list", "--json")[1])[0]["max_size"] == 1 << 30
    assert json.loads(cli("cache", "stats", "py", "--json")[1])["artifacts"] == 0
    assert cli("cache", "rm", "py")[0] == 0
    assert json.loads(cli("cache", "list", "--json")[1]) == []


# -- the pure parts --------------------------------------------------------------------------------

def test_index_parse_and_render() -> None:
    page = b"""<html><body>
    <a href="../../f/a-1.0-py3-none-any.whl#sha256=AABB" data-requires-python="&gt;=3.8"
       data-dist-info-metadata="sha256=ccdd">a-1.0-py3-none-any.whl</a>
    <a href="https://other.invalid/a-0.9.tar.gz" data-yanked="broken">a-0.9.tar.gz</a>
    <a href="javascript:alert(1)">a-0.8.tar.gz</a><a href="x">../../etc</a><a>no-href.whl</a>
    </body></html>"""
    p = ix.parse_project(page, "text/html", "http://127.0.0.1:1/simple/A_b/")
    assert p.name == "a-b" and [f.filename for f in p.files] == ["a-1.0-py3-none-any.whl", "a-0.9.tar.gz"]
    f, g = p.files
    assert f.url == "http://127.0.0.1:1/f/a-1.0-py3-none-any.whl" and f.hashes == {"sha256": "aabb"}
    assert f.requires_python == ">=3.8" and f.core_metadata == {"sha256": "ccdd"} and g.yanked == "broken"
    assert ix.load(ix.dump(p)) == p
    doc = json.loads(ix.render_json(p, lambda f: f"files/{f.filename}", lambda f: True))
    assert doc["files"][0]["core-metadata"] == doc["files"][0]["dist-info-metadata"] == {"sha256": "ccdd"}
    assert ix.parse_project(ix.render_json(p, lambda f: f.url, lambda f: True), ix.JSON_V1, "http://h/") == p
    assert "core-metadata" not in json.loads(ix.render_json(p, lambda f: f.url, lambda f: False))["files"][0]
    html_out = ix.render_html(p, lambda f: f.url, lambda f: True)
    again = ix.parse_project(html_out, "text/html", "http://127.0.0.1:1/simple/a-b/")
    assert again.files[0].hashes == f.hashes and again.files[1].yanked == "broken"
    assert b'data-requires-python="&gt;=3.8"' in html_out
    for bad in [b"{", b"[]", b'{"meta": {"api-version": "2.0"}, "name": "a", "files": []}',
                b'{"meta": {"api-version": "1.0"}, "name": 3, "files": []}', b"\xff\xfe"]:
        with pytest.raises(DecodeError):
            ix.parse_project(bad, ix.JSON_V1, "http://h/simple/a/")
    with pytest.raises(DecodeError):
        ix.parse_project(b"\xff<a>", "text/html", "http://h/simple/a/")


def test_negotiation_names_paths_and_pip_config(tmp_path: Path) -> None:
    assert ix.negotiate(None) == "html" and ix.negotiate("*/*") == "html"
    assert ix.negotiate(f"{ix.JSON_V1}, text/html;q=0.1") == "json"
    assert ix.negotiate(f"{ix.JSON_V1};q=0.2, {ix.HTML_V1}") == "html"
    with pytest.raises(ix.Unacceptable):
        ix.negotiate("application/xml, image/*")
    assert ix.normalize("Foo.Bar__baz") == "foo-bar-baz"
    assert not ix.safe_name("..") and not ix.safe_filename("a/../b") and not ix.safe_filename("a\x00")
    assert hostile("/cache/p/simple/%2E%2e/") and hostile("/a/..") and hostile("/a%0d%0a")
    assert not hostile("/cache/p/files/a/a-1.0.tar.gz?x=..")
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = http://127.0.0.1:1/simple\n[install]\nindex-url = http://127.0.0.1:2/s\n")
    assert pip_index_url({"PIP_CONFIG_FILE": str(conf)}, tmp_path) == "http://127.0.0.1:2/s"
    assert pip_index_url({"PIP_CONFIG_FILE": os.devnull}, tmp_path) is None
    assert pip_index_url({"PIP_INDEX_URL": "http://x/", "PIP_CONFIG_FILE": str(conf)}, tmp_path) == "http://x/"
    assert check_upstream("http://127.0.0.1:1/simple") == "http://127.0.0.1:1/simple/"
    with pytest.raises(InvalidInput):
        check_upstream("http://127.0.0.1:8080/cache/p/simple/")


# -- in process: timeouts --------------------------------------------------------------------------

def test_slow_upstream_times_out_and_stale_is_served(tmp_path: Path) -> None:
    """A slow-loris upstream (headers, then nothing) fails after the read timeout; a page fetched
    before is then served stale, with Age and Warning."""
    import asyncio

    import aiohttp
    from aiohttp import web

    from ipmirror.cache.app import Sessions, make_app
    from ipmirror.cache.core import CacheCore
    from ipmirror.cache.db import CacheDB, CacheSettings
    from ipmirror.cache.upstream import Limits
    from ipmirror.store.memory import MemoryStore
    from ipmirror.unixfs.profile import PRESETS

    up = Upstream.start({"alpha": [wheel("alpha", "1.0", [])]})
    db = CacheDB.open(tmp_path / "caches")
    db.add_cache(CacheSettings("p", "pypi", up.url, ttl=0))

    async def go() -> None:
        sessions = Sessions()
        core = CacheCore(db, MemoryStore(), PRESETS["unixfs-v1-2025"], tmp_path / "caches", sessions,
                         Limits(connect_timeout=2, read_timeout=0.5))
        runner = web.AppRunner(make_app(core, sessions))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/cache/p/simple/alpha/"
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(base) as r:
                    assert r.status == 200 and "Warning" not in r.headers
                async with s.get(base + "../../files/alpha/alpha-1.0-py3-none-any.whl") as r:
                    assert r.status == 200
                up.page_mode["alpha"] = "slow"
                t0 = time.monotonic()
                async with s.get(base) as r:
                    assert r.status == 200 and b"alpha-1.0" in await r.read()
                    assert r.headers["Warning"].startswith("111") and "Age" in r.headers
                assert time.monotonic() - t0 < 5
                db.add_cache(CacheSettings("q", "pypi", up.url, ttl=0))
                core._settings_at = 0.0
                async with s.get(base.replace("/p/", "/q/")) as r:
                    assert r.status == 502 and "Timeout" in await r.text()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(go())
    finally:
        db.close()
        up.close()


def test_credentials_go_to_the_upstream_only(tmp_path: Path) -> None:
    """``user:password@`` of the upstream URL reaches the upstream's origin and no other host (a
    file URL the index points elsewhere, a redirect), and no log line or listing shows it."""
    import asyncio
    import base64

    import aiohttp
    from aiohttp import web

    from ipmirror.cache.app import Sessions, make_app
    from ipmirror.cache.core import CacheCore
    from ipmirror.cache.db import CacheDB, CacheSettings
    from ipmirror.store.memory import MemoryStore
    from ipmirror.unixfs.profile import PRESETS

    seen: dict[str, list[str | None]] = {"index": [], "files": []}
    data = b"file bytes" * 100

    async def go() -> None:
        files = web.Application()

        async def file(request: web.Request) -> web.Response:
            seen["files"].append(request.headers.get("Authorization"))
            return web.Response(body=data)
        files.router.add_get("/f/x-1.0.tar.gz", file)
        fr = web.AppRunner(files)
        await fr.setup()
        await web.TCPSite(fr, "127.0.0.2", 0).start()
        fport = fr.addresses[0][1]

        index = web.Application()

        async def page(request: web.Request) -> web.Response:
            seen["index"].append(request.headers.get("Authorization"))
            if request.headers.get("Authorization") != "Basic " + base64.b64encode(b"u:s3cret").decode():
                return web.Response(status=401)
            return web.Response(text=f'<a href="http://127.0.0.2:{fport}/f/x-1.0.tar.gz#sha256='
                                     f'{sha(data)}">x-1.0.tar.gz</a>', content_type="text/html")
        index.router.add_get("/simple/x/", page)
        ir = web.AppRunner(index)
        await ir.setup()
        await web.TCPSite(ir, "127.0.0.1", 0).start()
        db = CacheDB.open(tmp_path / "caches")
        db.add_cache(CacheSettings("p", "pypi", f"http://u:s3cret@127.0.0.1:{ir.addresses[0][1]}/simple/"))
        sessions = Sessions()
        runner = web.AppRunner(make_app(CacheCore(db, MemoryStore(), PRESETS["unixfs-v1-2025"],
                                                  tmp_path / "caches", sessions), sessions))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/cache/p/"
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(base + "simple/x/") as r:
                    assert r.status == 200 and "s3cret" not in await r.text()
                async with s.get(base + "files/x/x-1.0.tar.gz") as r:
                    assert r.status == 200 and await r.read() == data
        finally:
            for rn in (runner, ir, fr):
                await rn.cleanup()
            db.close()

    asyncio.run(go())
    assert seen["index"] and all(a is not None for a in seen["index"])
    assert seen["files"] == [None]


def test_upkeep_evicts_after_max_size_is_lowered(up: Upstream, tmp_path: Path) -> None:
    from ipmirror.cache.core import CacheCore
    from ipmirror.cache.db import Artifact, CacheDB, CacheSettings
    from ipmirror.cache.maintain import Maintenance
    from ipmirror.cache.upstream import Limits
    from ipmirror.codec.cid import CID
    from ipmirror.store.memory import MemoryStore
    from ipmirror.unixfs.profile import PRESETS

    db = CacheDB.open(tmp_path / "caches")
    store = MemoryStore()
    core = CacheCore(db, store, PRESETS["unixfs-v1-2025"], tmp_path / "caches", NoClient(), Limits())
    db.add_cache(CacheSettings("p", "pypi", up.url))
    for i, data in enumerate([b"a" * 100, b"b" * 100, b"c" * 100]):
        cid = CID.hash(0x55, data)
        store.put(cid, data)
        store.pin_add(cid, "recursive", "cache")
        db.add_artifact(Artifact(sha(data), str(cid), len(data), True, "p", f"f{i}"))
        core.touch(sha(data))
        time.sleep(0.01)
    store.pin_add(CID.hash(0x55, b"a" * 100), "recursive", "user")  # the oldest: pinned by a user
    m = Maintenance(core)
    m.round()
    assert m.status()["caches"]["p"]["artifacts"] == 3 and m.evicted == 0
    db.add_cache(CacheSettings("p", "pypi", up.url, max_size=250), replace=True)
    m.round()
    left = {a.filename for a in db.artifacts("p")}
    assert left == {"f0", "f2"} and m.evicted == 1  # f0 is pinned by a user; f1 was least recent
    assert store.pin_holders(CID.hash(0x55, b"b" * 100)) == []
    db.close()


class NoClient:
    def get(self, url: str, **kw: object) -> object:
        raise AssertionError("no upstream request expected")

    async def close(self) -> None:
        return None


def test_serve_offline_read_only_and_status(up: Upstream, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    add_cache(repo, up)
    alpha, beta = up.projects["alpha"][0], up.projects["beta"][0]
    run_cli(repo, "config", "set", "cache.upkeep_interval", "30")
    with serve(repo, tmp_path / "w1", "--workers", "1") as srv:
        assert srv.get(file_path(alpha, "alpha")).body == alpha.data
        wait_stored(srv, file_path(alpha, "alpha"))
        for _ in range(50):  # the upkeep service's first round
            status = json.loads(run_cli(repo, "status", "--json"))
            svc = [s for s in status["services"] if s["name"] == "cache"]
            if svc and svc[0].get("rounds"):
                break
            time.sleep(0.2)
        assert svc[0]["caches"]["pypi"]["type"] == "pypi", status
    with serve(repo, tmp_path / "w2", "--workers", "1", "--offline") as srv:
        assert srv.get(file_path(alpha, "alpha")).body == alpha.data
        r = srv.get(file_path(beta, "beta"))
        assert r.status == 404 and b"offline" in r.body
    with serve(repo, tmp_path / "w3", "--workers", "1", "--read-only") as srv:
        assert srv.get(file_path(alpha, "alpha")).body == alpha.data
        assert srv.get(file_path(beta, "beta")).status == 404
    assert up.downloads[beta.filename] == 0

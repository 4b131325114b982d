"""A PyPI-like upstream for the cache tests: a PEP 503/691 index with wheels, sdists and PEP 658
``.metadata`` files, served by aiohttp on 127.0.0.1 from a thread of the test process, with
switches for misbehaviour (tampered bytes, malformed pages, huge pages, redirects to another
host, closing mid-body, slow bodies) and counters of what was downloaded.

Usage::

    up = Upstream.start({"alpha": [wheel("alpha", "1.0", [])]})
    up.url                       # http://127.0.0.1:PORT/simple/
    up.downloads["alpha-1.0-py3-none-any.whl"]
    up.stop(); up.restart()      # same port
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import io
import json
import threading
import zipfile
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

ZIP_TIME = (2020, 2, 2, 0, 0, 0)


@dataclass
class Dist:
    filename: str
    data: bytes
    metadata: bytes | None = None  # PEP 658 file
    requires_python: str | None = None
    yanked: str | None = None


def _b64(d: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode()


def wheel(name: str, version: str, requires: list[str], extra: bytes = b"") -> Dist:
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    metadata = "".join([f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                        *(f"Requires-Dist: {r}\n" for r in requires)]).encode()
    files = {f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
             f"{info}/METADATA": metadata,
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: ipmirror-tests\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n"}
    if extra:
        files[f"{module}/blob.bin"] = extra
    record = "".join(f"{p},sha256={_b64(d)},{len(d)}\n" for p, d in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED if extra else zipfile.ZIP_DEFLATED) as z:
        for p, d in files.items():
            z.writestr(zipfile.ZipInfo(p, ZIP_TIME), d)
    return Dist(f"{module}-{version}-py3-none-any.whl", buf.getvalue(), metadata)


def sdist(name: str, version: str) -> Dist:
    return Dist(f"{name.replace('-', '_')}-{version}.tar.gz", f"sdist of {name} {version}".encode() * 50)


@dataclass
class Upstream:
    projects: dict[str, list[Dist]]
    port: int = 0
    downloads: Counter[str] = field(default_factory=Counter)
    page_fetches: Counter[str] = field(default_factory=Counter)
    tampered: set[str] = field(default_factory=set)  # files whose bytes differ from the index's hash
    page_mode: dict[str, str] = field(default_factory=dict)  # project -> misbehaviour
    file_mode: dict[str, str] = field(default_factory=dict)  # filename -> misbehaviour
    slow: float = 0.0  # seconds between 1 MiB pieces of a file
    html_only: bool = False
    no_hashes: set[str] = field(default_factory=set)  # files listed without a hash
    other_host: str = "http://127.0.0.2:9/"  # where "redirect" modes send clients

    def __post_init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    def files(self) -> dict[str, Dist]:
        return {d.filename: d for ds in self.projects.values() for d in ds}

    # -- the app ---------------------------------------------------------------------------------
    def _page(self, project: str, accept: str) -> web.StreamResponse:
        dists = self.projects.get(project)
        if dists is None:
            return web.Response(status=404, text="no such project")
        if "json" in accept and not self.html_only:
            files = []
            for d in dists:
                f: dict[str, object] = {"filename": d.filename, "url": f"../../files/{d.filename}",
                                        "hashes": {} if d.filename in self.no_hashes
                                        else {"sha256": hashlib.sha256(d.data).hexdigest()},
                                        "size": len(d.data), "upload-time": "2024-01-02T03:04:05.000000Z"}
                if d.metadata is not None:
                    f["core-metadata"] = {"sha256": hashlib.sha256(d.metadata).hexdigest()}
                if d.requires_python:
                    f["requires-python"] = d.requires_python
                if d.yanked is not None:
                    f["yanked"] = d.yanked or True
                files.append(f)
            body = json.dumps({"meta": {"api-version": "1.1"}, "name": project, "files": files,
                               "versions": ["1.0"]})
            return web.Response(text=body, content_type="application/vnd.pypi.simple.v1+json",
                                headers={"ETag": f'"{hashlib.sha256(body.encode()).hexdigest()[:16]}"'})
        lines = []
        for d in dists:
            attrs = f'href="../../files/{d.filename}#sha256={hashlib.sha256(d.data).hexdigest()}"'
            if d.metadata is not None:
                attrs += f' data-dist-info-metadata="sha256={hashlib.sha256(d.metadata).hexdigest()}"'
            if d.requires_python:
                attrs += f' data-requires-python="{html.escape(d.requires_python)}"'
            lines.append(f"<a {attrs}>{d.filename}</a><br>")
        return web.Response(text="<html><body>\n" + "\n".join(lines) + "\n</body></html>",
                            content_type="text/html")

    async def _simple(self, request: web.Request) -> web.StreamResponse:
        project = request.match_info["project"]
        self.page_fetches[project] += 1
        mode = self.page_mode.get(project, "")
        if mode == "malformed-json":
            return web.Response(text='{"meta": {"api-version": "1.1"}, "name": ',
                                content_type="application/json")
        if mode == "not-an-index":
            return web.Response(text="[1, 2, 3]", content_type="application/vnd.pypi.simple.v1+json")
        if mode == "huge":
            resp = web.StreamResponse(headers={"Content-Type": "text/html"})
            await resp.prepare(request)
            chunk = b"<a href='x'>" + b"y" * (1 << 20)
            for _ in range(1024):  # 1 GiB unless the reader gives up
                await resp.write(chunk)
            return resp
        if mode == "redirect":
            raise web.HTTPFound(self.other_host + f"simple/{project}/")
        if mode == "slow":
            await asyncio.sleep(3600)
        return self._page(project, request.headers.get("Accept", ""))

    async def _root(self, request: web.Request) -> web.StreamResponse:
        if "json" in request.headers.get("Accept", ""):
            return web.json_response({"meta": {"api-version": "1.1"},
                                      "projects": [{"name": p} for p in self.projects]},
                                     content_type="application/vnd.pypi.simple.v1+json")
        return web.Response(text="".join(f'<a href="{p}/">{p}</a>' for p in self.projects),
                            content_type="text/html")

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        files = self.files()
        meta = name.endswith(".metadata")
        d = files.get(name[: -len(".metadata")] if meta else name)
        if d is None or (meta and d.metadata is None):
            return web.Response(status=404)
        self.downloads[name] += 1
        data = d.metadata if meta else d.data
        assert data is not None
        if name in self.tampered:
            data = bytes([data[0] ^ 1]) + data[1:]
        mode = self.file_mode.get(name, "")
        if mode == "redirect":
            raise web.HTTPFound(self.other_host + f"files/{name}")
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = len(data)
        await resp.prepare(request)
        step = 1 << 20
        for i in range(0, len(data), step):
            if mode == "close-mid-body" and i >= len(data) // 2:
                assert request.transport is not None
                request.transport.close()
                return resp
            await resp.write(data[i:i + step])
            if self.slow:
                await asyncio.sleep(self.slow)
        await resp.write_eof()
        return resp

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/simple/", self._root)
        app.router.add_get("/simple/{project}/", self._simple)
        app.router.add_get("/files/{name}", self._file)
        return app

    # -- life cycle ------------------------------------------------------------------------------
    @classmethod
    def start(cls, projects: dict[str, list[Dist]]) -> Upstream:
        up = cls(projects)
        up._loop = asyncio.new_event_loop()
        up._thread = threading.Thread(target=up._loop.run_forever, daemon=True)
        up._thread.start()
        up.restart()
        return up

    def _call(self, coro: object) -> object:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)  # type: ignore[arg-type]

    def restart(self) -> None:
        async def go() -> None:
            self._runner = web.AppRunner(self._app(), shutdown_timeout=0.5)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
            await site.start()
            if not self.port:
                self.port = self._runner.addresses[0][1]
        self._call(go())

    def stop(self) -> None:
        async def go() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
                self._runner = None
        self._call(go())

    def close(self) -> None:
        self.stop()
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

"""The runtime's pieces in one process: the typed configuration and ``config show/get/set``, the
service host (a crashing service is restarted with backoff, the others keep running), the URL
map with a second app mounted beside the gateway, and the outgoing HTTP client pointed at a
local server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from _serve import run_cli
from conftest import CLI
from ipmirror import config as config_mod
from ipmirror.config import Config, ConfigError, HttpConfig
from ipmirror.server.client import USER_AGENT, HttpClient
from ipmirror.server.host import Host, run_foreground
from ipmirror.server.plan import Command, Service, ServiceSpec
from ipmirror.server.urlmap import check, dispatch

# -- configuration -------------------------------------------------------------------------------


def test_an_old_config_file_loads_unchanged() -> None:
    old = {"version": 1, "profile": "unixfs-v0-2015", "batch_bytes": 4194304}
    cfg = config_mod.parse(old)
    assert cfg.profile == "unixfs-v0-2015" and cfg.batch_bytes == 4194304
    assert cfg.server == Config().server and cfg.republish.interval == 3600.0
    assert config_mod.parse({"version": 1, "profile": "unixfs-v1-2025"}) == Config()


@pytest.mark.parametrize("raw, message", [
    ({"version": 1, "profil": "x"}, "profil: unknown key"),
    ({"version": 2}, "version 1"),
    ({"version": 1, "server": {"workers": "two"}}, "server.workers: expected an integer"),
    ({"version": 1, "server": {"access_log": "loud"}}, "server.access_log: one of"),
    ({"version": 1, "server": {"listeners": [{"address": "x", "apps": "gateway"}]}},
     r"server.listeners\[0\].apps: expected a list"),
    ({"version": 1, "republish": {"interval": 0}}, "republish.interval: must be positive"),
    ({"version": 1, "profile": "nope"}, "unknown profile"),
])
def test_bad_configs_name_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_mod.parse(raw)


def test_set_keeps_the_rest_of_the_file_and_checks_types() -> None:
    raw = {"version": 1, "profile": "unixfs-v1-2025"}
    out = config_mod.with_value(raw, "server.workers", "3")
    assert out == {"version": 1, "profile": "unixfs-v1-2025", "server": {"workers": 3}}
    assert raw == {"version": 1, "profile": "unixfs-v1-2025"}  # a copy was changed
    out = config_mod.with_value(out, "watch.mirrors", "a,b")
    assert config_mod.parse(out).watch.mirrors == ("a", "b")
    assert config_mod.with_value(out, "server.public_url", "8080")["server"]["public_url"] == "8080"
    with pytest.raises(ConfigError, match="expected an integer"):
        config_mod.with_value(raw, "server.workers", "many")
    with pytest.raises(ConfigError, match="unknown config key"):
        config_mod.with_value(raw, "server.nope", "1")


def test_secrets_are_redacted_in_show() -> None:
    cfg = dataclasses.replace(Config(), http=HttpConfig(proxy="http://user:pw@127.0.0.1:3128"))
    shown = json.dumps(config_mod.redacted(cfg))
    assert "pw" not in shown and "user" not in shown and "http://***@127.0.0.1:3128" in shown
    assert config_mod.get(cfg, "http.proxy") == "http://user:pw@127.0.0.1:3128"


def test_config_commands(cli: CLI, repo_path: Path) -> None:
    cli("init")
    shown = json.loads(cli("config", "show").text)
    assert shown["profile"] == "unixfs-v1-2025" and shown["server"]["workers"] == 0
    assert cli("config", "get", "republish.interval").text.strip() == "3600.0"
    cli("config", "set", "republish.interval", "60")
    cli("config", "set", "http.proxy", "http://u:secret@127.0.0.1:1")
    assert cli("config", "get", "republish.interval").text.strip() == "60.0"
    assert "secret" not in cli("config", "show").text
    on_disk = json.loads((repo_path / "config.json").read_text())
    assert on_disk["republish"] == {"interval": 60} and on_disk["version"] == 1
    for args, msg in ((("get", "nope"), "unknown config key"), (("set", "server.workers", "x"), "integer"),
                      (("set", "server.workers", "-1"), "must be 0")):
        r = cli("config", *args, check=False)
        assert r.rc == 1 and msg in r.err and "Traceback" not in r.err
    assert json.loads((repo_path / "config.json").read_text()) == on_disk
    (repo_path / "config.json").write_text('{"version": 1, "profile": "unixfs-v1-2025", "typo": 1}')
    r = cli("config", "show", check=False)
    assert r.rc == 1 and "typo: unknown key" in r.err and "Traceback" not in r.err
    assert "typo: unknown key" in json.loads(cli("status", "--json").text)["error"]  # reported, exit 0


# -- the service host ----------------------------------------------------------------------------


class Flaky(Service):
    """Fails its first ``fails`` runs, then runs until cancelled."""

    runs = 0

    def __init__(self, fails: int) -> None:
        self.fails = fails

    async def run(self) -> None:
        Flaky.runs += 1
        if Flaky.runs <= self.fails:
            raise RuntimeError(f"boom {Flaky.runs}")
        await asyncio.Event().wait()

    def status(self) -> dict[str, Any]:
        return {"runs": Flaky.runs}

    def commands(self) -> Mapping[str, Command]:
        async def echo(args: dict[str, Any]) -> Any:
            return args
        return {"echo": echo}


class Steady(Service):
    async def run(self) -> None:
        await asyncio.Event().wait()


def test_a_crashing_service_is_restarted_with_backoff_and_the_others_keep_running() -> None:
    async def main() -> None:
        Flaky.runs = 0
        host: Host[None] = Host(None)
        await host.apply([ServiceSpec("flaky", lambda _: Flaky(2), commands=("echo",)),
                          ServiceSpec("steady", lambda _: Steady())])
        await asyncio.sleep(0.1)
        rows = {r["name"]: r for r in host.status()}
        assert rows["flaky"]["state"] == "crashed" and rows["flaky"]["last_error"] == "RuntimeError: boom 1"
        assert rows["steady"]["state"] == "running"
        await asyncio.sleep(0.5 + 1.0 + 0.3)  # backoff 0.5 s, then 1 s
        rows = {r["name"]: r for r in host.status()}
        assert rows["flaky"]["state"] == "running" and rows["flaky"]["restarts"] == 2
        assert rows["flaky"]["runs"] == 3 and rows["steady"]["restarts"] == 0
        assert await host.command("echo", {"x": 1}) == {"x": 1}
        await host.apply([ServiceSpec("steady", lambda _: Steady())])  # flaky removed
        assert [r["name"] for r in host.status()] == ["steady"]
        await host.stop()

    asyncio.run(main())


def test_a_failing_foreground_service_ends_the_run() -> None:
    Flaky.runs = 0
    with pytest.raises(RuntimeError, match="boom 1"):
        run_foreground([ServiceSpec("flaky", lambda _: Flaky(1))], None)


# -- the URL map ---------------------------------------------------------------------------------


def test_overlapping_prefixes_are_refused() -> None:
    check([("gateway", ("/ipfs/", "/ipns/")), ("status", ("/-/",))])
    with pytest.raises(ValueError, match="both claim '/ipfs/'"):
        check([("gateway", ("/ipfs/",)), ("other", ("/ipfs/x/",))])


def test_a_second_app_is_mounted_beside_the_root_app() -> None:
    async def main() -> None:
        async def ipfs(r: web.Request) -> web.Response:
            return web.Response(text="root " + r.match_info["x"])

        async def healthy(r: web.Request) -> web.Response:
            return web.Response(text=f"healthy {r.app is other}")

        root = web.Application()
        root.router.add_get("/ipfs/{x}", ipfs)
        other = web.Application()
        other.router.add_get("/-/healthy", healthy)
        runner = web.AppRunner(root, access_log=None)
        await runner.setup()
        mounted = web.AppRunner(other, access_log=None)
        await mounted.setup()
        assert runner.server is not None
        runner.server.request_handler = dispatch(runner.server.request_handler, ("/ipfs/",),
                                                 [("/-/", other)])
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with HttpClient(HttpConfig(), base_url=f"http://127.0.0.1:{port}") as http:
                for path, want in (("/ipfs/a", (200, "root a")), ("/-/healthy", (200, "healthy True")),
                                   ("/-/other", (404, None)), ("/x", (404, None)), ("/", (404, None))):
                    async with http.get(path) as resp:
                        body = await resp.text()
                        assert resp.status == want[0], path
                        assert want[1] is None or body == want[1]
        finally:
            await runner.cleanup()
            await mounted.cleanup()

    asyncio.run(main())


# -- the HTTP client -----------------------------------------------------------------------------


def test_the_http_client_against_a_local_server() -> None:
    async def main() -> None:
        seen: list[str] = []

        async def slow(request: web.Request) -> web.Response:
            seen.append(request.headers["User-Agent"])
            await asyncio.sleep(float(request.query.get("wait", "0")))
            return web.Response(body=b"x" * 1000)

        app = web.Application()
        app.router.add_get("/file", slow)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        try:
            http = HttpClient(HttpConfig(timeout=0.5, limit=2, limit_per_host=2),
                              base_url=f"http://127.0.0.1:{port}")
            async with http:
                async with http.get("/file") as resp:
                    assert resp.status == 200 and await resp.read() == b"x" * 1000
                with pytest.raises(asyncio.TimeoutError):
                    async with http.get("/file", params={"wait": "2"}) as resp:
                        await resp.read()
                assert http.session.connector is not None and http.session.connector.limit == 2
                assert http.status()["requests"] == 2
            assert seen and seen[0] == USER_AGENT
        finally:
            await runner.cleanup()

    asyncio.run(main())


def test_serve_refuses_an_unknown_app(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli(repo, "init")
    run_cli(repo, "config", "set", "server.listeners", '[{"address": "127.0.0.1:0", "apps": ["nope"]}]')
    with pytest.raises(AssertionError, match="unknown app nope"):
        run_cli(repo, "serve")

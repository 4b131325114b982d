"""``serve --swarm``: the libp2p host runs as a service of the server, and ``ipmirror id`` and
``ipmirror swarm …`` reach it over the control channel (two real ``serve`` processes on loopback)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from _cli import run
from _serve import run_cli, serve
from ipmirror.codec.peerid import PeerID


def _wait_json(repo: Path, *argv: str, until: object = None, timeout: float = 60) -> dict[str, object]:
    """The JSON answer of a command, retried while the host is starting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            doc: dict[str, object] = json.loads(run_cli(repo, *argv, "--json"))
            if until is None or until(doc):  # type: ignore[operator]
                return doc
        except AssertionError:  # exit 1 while the service starts
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{argv}: no answer in {timeout}s")
        time.sleep(0.3)


def test_serve_swarm_id_connect_and_peers(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for repo in (a, b):
        run_cli(repo, "init")
    offline_a = json.loads(run_cli(a, "id", "--json"))
    assert offline_a["Addresses"] is None  # no server: read from the key
    with serve(a, tmp_path / "wa", "--workers", "1", "--swarm", "/ip4/127.0.0.1/tcp/0") as _sa, \
            serve(b, tmp_path / "wb", "--workers", "1", "--swarm", "/ip4/127.0.0.1/tcp/0") as _sb:
        ida = _wait_json(a, "id", until=lambda d: d["Addresses"])
        assert ida["ID"] == offline_a["ID"]  # the host runs with the repository's self key
        addr = str(ida["Addresses"][0])  # type: ignore[index]
        assert addr.startswith("/ip4/127.0.0.1/tcp/") and addr.endswith(f"/p2p/{ida['ID']}")
        assert addr.split("/")[4] != "0"  # the bound port, not the asked-for 0
        _wait_json(b, "id", until=lambda d: d["Addresses"])
        out = run_cli(b, "swarm", "connect", addr)
        assert out.strip() == f"connect {ida['ID']} success"
        idb = json.loads(run_cli(b, "id", "--json"))["ID"]
        peers_a = _wait_json(a, "swarm", "peers", until=lambda d: d["Peers"])
        assert [p["Peer"] for p in peers_a["Peers"]] == [idb]  # type: ignore[union-attr]
        PeerID.parse(str(idb))
        status = json.loads(run_cli(a, "status", "--json"))
        assert "swarm" in json.dumps(status)
        assert run_cli(b, "swarm", "disconnect", str(ida["ID"])).strip() == f"disconnect {ida['ID']} success"


def test_swarm_commands_on_a_server_without_a_host(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    run_cli(repo, "init")
    with serve(repo, tmp_path / "w", "--workers", "1"):
        r = run(repo, "swarm", "peers", check=False)
        assert r.rc == 1 and r.err.count("\n") == 1 and "no libp2p host" in r.err, r.err

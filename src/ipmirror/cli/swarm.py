"""``ipmirror id`` and ``ipmirror swarm peers|connect|disconnect|addrs``: the libp2p host, Kubo-style.

``id`` asks the running host when there is one, and otherwise reads the ``self`` key (creating it
on first use, as ``serve`` would) and prints Kubo's ``ipfs id`` fields, with Addresses and
Protocols null, as Kubo prints them offline. ``swarm`` commands ask the running host
(``serve --swarm``) through the control channel: :func:`control_caller` is the one place that sends a
request; the answers are those of ``ipmirror.peer.control`` (Kubo's JSON shapes), printed as Kubo
prints them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping

from ipmirror.cli.common import Ctx
from ipmirror.errors import PeerError
from ipmirror.peer.identity import identify_self

Call = Callable[[str, Mapping[str, object]], dict[str, object]]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("id", help="show this node's libp2p identity (peer ID, public key, agent)")
    p.add_argument("--json", action="store_true", help="print Kubo's JSON (ID, PublicKey, Addresses, …)")
    p.set_defaults(func=show_id)

    swarm = sub.add_parser("swarm", help="the running libp2p host's peers (needs 'serve --swarm')")
    s = swarm.add_subparsers(dest="sub", required=True)
    p = s.add_parser("peers", help="list connected peers")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=lambda ctx: swarm_cmd(ctx, control_caller(ctx)))
    p = s.add_parser("connect", help="connect to peers (/ip4/…/tcp/…/p2p/ID)")
    p.add_argument("addrs", nargs="+", metavar="MULTIADDR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=lambda ctx: swarm_cmd(ctx, control_caller(ctx)))
    p = s.add_parser("disconnect", help="close the connections to peers (ID or …/p2p/ID)")
    p.add_argument("peers", nargs="+", metavar="PEER")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=lambda ctx: swarm_cmd(ctx, control_caller(ctx)))
    p = s.add_parser("addrs", help="known addresses of connected peers ('addrs local': our own)")
    p.add_argument("which", nargs="?", choices=["local"], help="'local': the addresses we listen on")
    p.add_argument("--id", action="store_true", help="with 'local': append /p2p/ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=lambda ctx: swarm_cmd(ctx, control_caller(ctx)))


def show_id(ctx: Ctx) -> int:
    try:
        doc = control_caller(ctx)("id", {})  # a running host knows its addresses and protocols
    except PeerError:
        with ctx.open_repo() as repo:
            keys = repo.keystore
            keys.identity()  # the node key exists from here on, as after 'serve'
            doc = identify_self(keys.get("self")).to_json()
    if ctx.args.json:
        ctx.print(json.dumps(doc, indent=2))
    else:
        for field in ("ID", "PublicKey", "AgentVersion", "ProtocolVersion"):
            ctx.print(f"{field}: {doc[field]}")
        ctx.print("Addresses: (the libp2p host is not running)" if doc["Addresses"] is None
                  else "Addresses:\n" + "".join(f"  {a}\n" for a in doc["Addresses"]).rstrip("\n"))  # type: ignore[attr-defined]
    return 0


def control_caller(ctx: Ctx) -> Call:
    """Requests to the libp2p host of the server running on this repository, over its control
    channel (PeerError when no server runs, or it runs no host)."""

    def call(method: str, params: Mapping[str, object]) -> dict[str, object]:
        from ipmirror import serving
        from ipmirror.server.control import ControlError, NoServer

        try:
            doc: dict[str, object] = serving.ask(ctx.repo_path, method, dict(params))
        except NoServer:
            raise PeerError("no running libp2p host to ask: 'swarm' commands need "
                            "'ipmirror serve --swarm MULTIADDR'") from None
        except ControlError as e:
            if "no running service handles" in str(e):
                raise PeerError("the running server has no libp2p host (start it with "
                                "'ipmirror serve --swarm MULTIADDR' or config swarm.listen)") from None
            raise PeerError(str(e)) from None
        return doc

    return call


def swarm_cmd(ctx: Ctx, call: Call) -> int:
    """Run one ``swarm`` subcommand through ``call`` (the control channel, or a host in tests)."""
    a = ctx.args
    if a.sub == "peers":
        doc = call("swarm.peers", {})
        lines = [f"{p['Addr']}/p2p/{p['Peer']}" for p in doc["Peers"]]  # type: ignore[attr-defined]
    elif a.sub == "connect":
        doc = call("swarm.connect", {"addrs": list(a.addrs)})
        lines = list(doc["Strings"])  # type: ignore[call-overload]
    elif a.sub == "disconnect":
        doc = call("swarm.disconnect", {"peers": list(a.peers)})
        lines = list(doc["Strings"])  # type: ignore[call-overload]
    elif a.which == "local":
        doc = call("swarm.addrs.local", {"id": bool(a.id)})
        lines = list(doc["Strings"])  # type: ignore[call-overload]
    else:
        doc = call("swarm.addrs", {})
        addrs: Mapping[str, list[str]] = doc["Addrs"]  # type: ignore[assignment]
        lines = []
        for peer in sorted(addrs):
            lines.append(f"{peer} ({len(addrs[peer])})")
            lines.extend(f"\t{x}" for x in addrs[peer])
    if a.json:
        ctx.print(json.dumps(doc, indent=2))
    else:
        for line in lines:
            ctx.print(line)
    return 0

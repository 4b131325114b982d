"""``ipmirror config …`` and ``ipmirror status``: the repository's configuration (as Kubo's
``ipfs config``) and the state of a running server (or of the repository when none runs)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ipmirror import config as config_mod
from ipmirror.cli.common import Ctx
from ipmirror.node import read_settings, write_config


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cfg = sub.add_parser("config", help="show and change the repository's configuration")
    cs = cfg.add_subparsers(dest="sub", required=True)
    p = cs.add_parser("show", help="the whole configuration as JSON (secrets redacted)")
    p.set_defaults(func=show)
    p = cs.add_parser("get", help="the value of one key (e.g. server.workers)")
    p.add_argument("key")
    p.set_defaults(func=get)
    p = cs.add_parser("set", help="set a key; a running server reloads it")
    p.add_argument("key")
    p.add_argument("value", help="JSON, or a plain string; lists also as a,b,c")
    p.set_defaults(func=set_)

    p = sub.add_parser("status", help="mirrors, store and server: what the status page shows")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=status)


def show(ctx: Ctx) -> int:
    _raw, cfg = read_settings(ctx.repo_path)
    ctx.print(json.dumps(config_mod.redacted(cfg), indent=2))
    return 0


def get(ctx: Ctx) -> int:
    _raw, cfg = read_settings(ctx.repo_path)
    value = config_mod.get(cfg, ctx.args.key)
    ctx.print(value if isinstance(value, str) else json.dumps(value, indent=2))
    return 0


def set_(ctx: Ctx) -> int:
    from ipmirror.server.control import ControlError, NoServer, request, socket_path

    a = ctx.args
    raw, cfg = read_settings(ctx.repo_path)
    new_raw = config_mod.with_value(raw, a.key, a.value)
    socket_path(ctx.repo_path, config_mod.parse(new_raw).server.control_socket)  # fits, or refused
    write_config(ctx.repo_path, new_raw)
    try:  # a running server listens where the old configuration said
        notes = request(socket_path(ctx.repo_path, cfg.server.control_socket), "reload").get("notes", [])
    except NoServer:
        return 0
    except ControlError as e:
        ctx.warn(f"saved, but the running server did not reload: {e}")
        return 1
    ctx.warn("the running server reloaded the configuration" + (f" ({'; '.join(notes)})" if notes else ""))
    return 0


def status(ctx: Ctx) -> int:
    from ipmirror.serving import server_status

    st = server_status(ctx.repo_path)
    if ctx.args.json:
        ctx.print(json.dumps(st, indent=2))
        return 0
    srv = st["server"]
    if not srv.get("running"):
        ctx.print(f"server: not running ({st.get('repo')})")
    else:
        up = time.time() - float(srv.get("started", time.time()))
        ro = ", read-only" if srv.get("read_only") else ""
        ctx.print(f"server: running, pid {srv['pid']}, up {up:.0f}s{ro}, {srv.get('requests', 0)} requests "
                  f"({srv.get('rate', 0):.1f}/s)")
        for lst in srv.get("listeners", []):
            ctx.print(f"listener http://{lst['address']}: {', '.join(lst['apps'])}")
        for w in st.get("workers", []):
            ctx.print(f"worker {w['index']}: {_proc(w)}")
        sp = st.get("service_process")
        if sp:
            ctx.print(f"service process: {_proc(sp)}")
        for s in st.get("services", []):
            ctx.print(f"service {s['name']}: {s['state']}, {s['restarts']} restarts")
    for m in st.get("mirrors", []):
        ctx.print(_mirror(m))
    store = st.get("store")
    if store:
        free = ""
        if "disk_free_bytes" in store:
            free = f", {_mib(store['disk_free_bytes'])} free" + (" (LOW)" if store.get("low_space") else "")
        ctx.print(f"store: {store['blocks']} blocks, {_mib(store['logical_bytes'])} logical, "
                  f"{_mib(store['disk_bytes'])} on disk{free}")
    for key, rows in st.get("sections", {}).items():
        ctx.print(f"{key}: {json.dumps(rows)}")
    return 0


def _mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def _mirror(m: dict[str, Any]) -> str:
    v = m.get("latest")
    if v is None:
        return f"mirror {m['name']}: no versions yet"
    if m.get("stale"):
        state = f"STALE ({m['stale_reason']})"
    else:
        state = "up to date" if m.get("stale") is False else m.get("stale_reason") or "unknown"
    made = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v["time"]))
    return (f"mirror {m['name']}: {m['versions']} versions, latest {v['number']} {v['root']} made {made}, "
            f"{v['files']} files, {_mib(v['size'])}, last sync {v['duration']:.1f}s; {state}")


def _proc(p: dict[str, Any]) -> str:
    return f"{p['state']}, pid {p['pid'] or '-'}, {p['restarts']} restarts"

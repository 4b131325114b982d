"""The facts of the status page, ``/-/status.json`` and ``ipmirror status --json``, as one
JSON-able dict, gathered from the repository and the running server's answer.

Usage::

    facts = collect(source, server, cfg.status, sections)   # source: anything like node.Repo

``server`` is the supervisor's status answer (``server/supervisor.py``) or None when no server
runs. Rules: cheap (LMDB reads, a ``stat`` per top-level entry of each mirror's source, one
``statvfs``), and discreet: local paths (the control socket, the repository, mirror sources
unless ``show_paths``) and error texts are left out; an error shows as its type only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ipmirror.config import StatusConfig
from ipmirror.errors import IpmirrorError
from ipmirror.mirror.db import ROOT_DIR, Mirror, MirrorDB, Version, unpack_head
from ipmirror.status.sections import Section
from ipmirror.store.base import StoreStat

PLOT_VERSIONS = 50
STALE_ENTRIES = 1000  # top-level entries compared at most


class Source(Protocol):
    """What the facts are read from (``node.Repo`` is one)."""

    @property
    def path(self) -> Path: ...

    @property
    def mirror_db(self) -> MirrorDB: ...

    @property
    def store(self) -> Any: ...  # has stat() -> StoreStat


def collect(source: Source, server: dict[str, Any] | None, cfg: StatusConfig,
            sections: Sequence[Section] = (), local: bool = False) -> dict[str, Any]:
    """``local``: for the repository's own user (``ipmirror status``): local paths kept."""
    facts: dict[str, Any] = {"time": time.time()}
    facts.update(server_facts(server, local))
    facts["mirrors"] = mirror_facts(source.mirror_db, cfg.show_paths)
    facts["store"] = store_facts(source.store.stat(), source.path, cfg.low_disk)
    shown = {}
    for s in sections:
        data = s.collect(facts)
        if data:
            shown[s.key] = data
    facts["sections"] = shown
    return facts


# -- the server ---------------------------------------------------------------------------------
def server_facts(st: dict[str, Any] | None, local: bool = False) -> dict[str, Any]:
    if not st or not st.get("server", {}).get("running"):
        return {"server": {"running": False}, "workers": [], "service_process": None, "services": []}
    srv = st["server"]
    started = float(srv.get("started", 0.0))
    workers = []
    requests = 0
    rate = 0.0
    for w in st.get("workers", []):
        meter = w.get("apps", {}).get("status", {}).get("meter", {})
        n = sum(lst.get("requests", 0) for lst in w.get("listeners", []))
        requests += n
        rate += float(meter.get("rate", 0.0))
        workers.append({"index": w.get("index"), "pid": w.get("pid"), "state": w.get("state"),
                        "restarts": w.get("restarts", 0), "requests": n,
                        "rate": round(float(meter.get("rate", 0.0)), 2),
                        "apps": {name: {k: v for k, v in app.items() if k not in _PATHS}
                                 for name, app in w.get("apps", {}).items()}})
    services = [s if local else _service(s) for s in st.get("services", [])]
    sp = st.get("service_process")
    extra = {"control_socket": srv.get("control_socket")} if local else {}
    return {
        "server": {"running": True, **extra, "pid": srv.get("pid"), "read_only": bool(srv.get("read_only")),
                   "started": started, "uptime": max(0.0, time.time() - started),
                   "listeners": [{"address": lst.get("address"), "apps": lst.get("apps", [])}
                                 for lst in srv.get("listeners", [])],
                   "requests": requests, "rate": round(rate, 2)},
        "workers": workers,
        "service_process": {k: sp.get(k) for k in ("pid", "state", "restarts")} if sp else None,
        "services": services,
    }


_PATHS = ("dir", "directory", "path", "socket")


def _service(s: dict[str, Any]) -> dict[str, Any]:
    """A service's own status without what may name local paths (an error shows its type)."""
    out = {k: v for k, v in s.items() if k not in _PATHS}
    err = out.pop("last_error", "")
    if err:
        out["last_error"] = str(err).split(":", 1)[0]
    return out


# -- mirrors ------------------------------------------------------------------------------------
def _version(v: Version) -> dict[str, Any]:
    return {"number": v.number, "time": v.time, "root": v.root, "files": v.files, "size": v.size,
            "added": v.added, "changed": v.changed, "removed": v.removed, "duration": v.duration,
            "complete": v.complete, "read_files": v.read_files, "read_bytes": v.read_bytes,
            "put_blocks": v.put_blocks}


def mirror_facts(db: MirrorDB, show_paths: bool = False) -> list[dict[str, Any]]:
    out = []
    for m in db.mirrors():
        vs = db.versions(m.id)
        latest = vs[-1] if vs else None
        checked = float(getattr(m, "checked", 0.0) or 0.0)  # recorded by newer syncs (#12)
        row: dict[str, Any] = {
            "name": m.name, "versions": len(vs), "latest": _version(latest) if latest else None,
            "checked": checked or (latest.time if latest else None),
            "checked_recorded": bool(checked),  # False: "checked" is the latest version's time
            "refused": str(getattr(m, "refused", "") or ""),
            "history": [{"number": v.number, "time": v.time, "size": v.size, "files": v.files,
                         "changed": v.added + v.changed + v.removed, "duration": v.duration}
                        for v in vs[-PLOT_VERSIONS:]],
            "links": {"tree": f"/ipns/{m.name}/"},
        }
        if latest is not None:
            row["links"]["root"] = f"/ipfs/{latest.root}/"
        if len(vs) >= 2:
            row["links"]["diff"] = f"/-/mirrors/{m.name}/diff/{vs[-2].number}..{vs[-1].number}"
        row["stale"], row["stale_reason"] = stale(db, m) if vs else (None, "never synced")
        if show_paths:
            row["dir"] = m.dir
        out.append(row)
    return out


def stale(db: MirrorDB, m: Mirror) -> tuple[bool | None, str]:
    """Whether the source changed since the last sync, by comparing the ``stat`` of its root
    directory and of each top-level entry with what the last sync recorded (a change deeper down
    shows once it touches a top-level directory's or file's times). ``None``: cannot tell."""
    try:
        root = db.get_rec(m.id, ROOT_DIR, b"")
        st = os.stat(m.dir)
    except OSError:
        return True, "source directory missing"
    except IpmirrorError:
        return None, "index unreadable"
    if root is None:
        return None, "no index"
    if (st.st_mtime_ns, st.st_ctime_ns) != (root.mtime_ns, root.ctime_ns) and root.mtime_ns:
        return True, "source directory changed"
    known = db.children_raw(m.id, b"")
    try:
        with os.scandir(m.dir) as it:
            for i, e in enumerate(it):
                if i >= STALE_ENTRIES:
                    break
                raw = known.get(os.fsencode(e.name))
                if raw is None:
                    continue  # excluded or hidden: not mirrored
                h = unpack_head(raw)
                es = e.stat(follow_symlinks=False)
                if h.mtime_ns and (es.st_mtime_ns, es.st_ctime_ns) != (h.mtime_ns, h.ctime_ns):
                    return True, "source changed"
    except OSError:
        return True, "source unreadable"
    return False, ""


# -- the store ----------------------------------------------------------------------------------
def store_facts(s: StoreStat, path: Path, low_disk: float) -> dict[str, Any]:
    out: dict[str, Any] = {"blocks": s.blocks, "logical_bytes": s.block_bytes, "disk_bytes": s.disk_bytes,
                           "pins": s.pins}
    try:
        vfs = os.statvfs(path)
    except OSError:
        return out
    total = vfs.f_blocks * vfs.f_frsize
    free = vfs.f_bavail * vfs.f_frsize
    out.update(disk_total_bytes=total, disk_free_bytes=free,
               low_space=bool(total) and free / total < low_disk)
    return out

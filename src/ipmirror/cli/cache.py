"""``ipmirror cache …``: define pull-through caches (served by ``ipmirror serve`` under
``/cache/<name>/``), list them, show their stats, print the URL a client is configured with, and
export what a cache holds as a mirror version. A running server sees changes within seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

from ipmirror.cache.db import CacheSettings
from ipmirror.cache.pipconf import check_upstream, pip_index_url, redact
from ipmirror.cli.common import Ctx, add_bool
from ipmirror.errors import Conflict, InvalidInput, NotFound

TYPES = ("pypi",)
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", re.IGNORECASE)


def parse_size(text: str) -> int:
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise InvalidInput(f"not a size: {text!r} (e.g. 500M, 20G)")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " "))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("cache", help="pull-through caches of package registries")
    cs = c.add_subparsers(dest="sub", required=True)
    p = cs.add_parser("add", help="define a cache")
    p.add_argument("name")
    p.add_argument("--type", choices=TYPES, required=True)
    p.add_argument("--upstream", help="the upstream index URL (default: pip's configured index-url)")
    p.add_argument("--ttl", type=float, default=600.0, metavar="SECONDS",
                   help="how long metadata is served without asking the upstream (default 600)")
    add_bool(p, "--offline", False, "serve only what is cached; never ask the upstream")
    p.add_argument("--max-size", default="0", metavar="SIZE",
                   help="evict least recently used artifacts above this (e.g. 20G; default 0: no limit)")
    p.set_defaults(func=add)

    p = cs.add_parser("set", help="change a cache's settings")
    p.add_argument("name")
    p.add_argument("--upstream")
    p.add_argument("--ttl", type=float, metavar="SECONDS")
    add_bool(p, "--offline", None, "serve only what is cached")
    p.add_argument("--max-size", metavar="SIZE")
    p.set_defaults(func=set_)

    p = cs.add_parser("list", help="list caches")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=list_)

    p = cs.add_parser("rm", help="remove a cache (its artifacts become collectable by repo gc)")
    p.add_argument("name")
    p.set_defaults(func=rm)

    p = cs.add_parser("stats", help="what caches hold and how they were used")
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=stats)

    p = cs.add_parser("url", help="the URL a client uses when serve listens at --base")
    p.add_argument("name")
    p.add_argument("--base", required=True, metavar="URL", help="e.g. http://127.0.0.1:8080")
    p.set_defaults(func=url)

    p = cs.add_parser("export", help="publish what a cache holds as a mirror version")
    p.add_argument("name")
    p.set_defaults(func=export)


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"cache names are lower-case letters, digits, '.', '_', '-' (not {name!r})")
    return name


def add(ctx: Ctx) -> int:
    a = ctx.args
    name = _check_name(a.name)
    upstream = a.upstream or pip_index_url(os.environ, Path.home())
    if not upstream:
        raise InvalidInput("no --upstream given and pip has no index-url configured")
    if a.ttl < 0:
        raise InvalidInput("--ttl must not be negative")
    s = CacheSettings(name, a.type, check_upstream(upstream), a.ttl, bool(a.offline), parse_size(a.max_size))
    with ctx.open_repo() as repo:
        db = repo.cache_db
        if db.cache(name) is not None:
            raise Conflict(f"a cache named {name!r} exists already")
        db.add_cache(s)
    ctx.print(f"added cache {name} ({a.type}) of {redact(s.upstream)}")
    return 0


def set_(ctx: Ctx) -> int:
    a = ctx.args
    with ctx.open_repo() as repo:
        db = repo.cache_db
        old = db.cache(a.name)
        if old is None:
            raise NotFound(f"no cache named {a.name!r}")
        if a.ttl is not None and a.ttl < 0:
            raise InvalidInput("--ttl must not be negative")
        new = CacheSettings(old.name, old.type, check_upstream(a.upstream) if a.upstream else old.upstream,
                            old.ttl if a.ttl is None else a.ttl,
                            old.offline if a.offline is None else bool(a.offline),
                            old.max_size if a.max_size is None else parse_size(a.max_size))
        db.add_cache(new, replace=True)
    ctx.print(f"updated cache {a.name}")
    return 0


def _row(s: CacheSettings) -> dict[str, object]:
    return {"name": s.name, "type": s.type, "upstream": redact(s.upstream), "ttl": s.ttl,
            "offline": s.offline, "max_size": s.max_size}


def list_(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        caches = repo.cache_db.caches()
    if ctx.args.json:
        ctx.print(json.dumps([_row(s) for s in caches], indent=2))
        return 0
    for s in caches:
        flags = " offline" if s.offline else ""
        ctx.print(f"{s.name}\t{s.type}\t{redact(s.upstream)}\tttl={s.ttl:g}s{flags}")
    return 0


def rm(ctx: Ctx) -> int:
    from ipmirror.cache import cas
    from ipmirror.codec.cid import CID

    with ctx.open_repo() as repo:
        db = repo.cache_db
        if db.cache(ctx.args.name) is None:
            raise NotFound(f"no cache named {ctx.args.name!r}")
        for art in db.rm_cache(ctx.args.name):
            cas.unpin(repo.store, CID.parse(art.cid))
    ctx.print(f"removed cache {ctx.args.name} (run 'ipmirror repo gc' to free its blocks)")
    return 0


def stats(ctx: Ctx) -> int:
    a = ctx.args
    out = []
    with ctx.open_repo() as repo:
        db = repo.cache_db
        caches = db.caches()
        if a.name:
            caches = [c for c in caches if c.name == a.name]
            if not caches:
                raise NotFound(f"no cache named {a.name!r}")
        for s in caches:
            n, size, unverified = db.cached_size(s.name)
            out.append({"name": s.name, "type": s.type, "artifacts": n, "bytes": size,
                        "unverified": unverified, "max_size": s.max_size, "counters": db.counters(s.name)})
    if a.json:
        ctx.print(json.dumps(out if not a.name else out[0], indent=2))
        return 0
    for r in out:
        counters = ", ".join(f"{k}={v}" for k, v in sorted(r["counters"].items()))  # type: ignore[attr-defined]
        ctx.print(f"{r['name']}: {r['artifacts']} artifacts, {r['bytes']} bytes, {r['unverified']} unverified"
                  + (f"; {counters}" if counters else ""))
    return 0


def url(ctx: Ctx) -> int:
    a = ctx.args
    with ctx.open_repo() as repo:
        s = repo.cache_db.cache(a.name)
    if s is None:
        raise NotFound(f"no cache named {a.name!r}")
    base = a.base.rstrip("/")
    if not re.fullmatch(r"https?://[^/\s]+(/[^\s]*)?", base):
        raise InvalidInput(f"--base must be an http(s) URL, not {a.base!r}")
    ctx.print(f"{base}/cache/{s.name}/simple/")
    return 0


def export(ctx: Ctx) -> int:
    from ipmirror.cache.export import materialize
    from ipmirror.mirror.register import add_mirror

    name = ctx.args.name
    with ctx.open_repo() as repo:
        if repo.cache_db.cache(name) is None:
            raise NotFound(f"no cache named {name!r}")
        out = repo.path / "caches" / "export" / name
        n = materialize(repo.cache_db, repo.store, name, out)
        mirror = f"cache-{name}"
        mirrors = repo.mirrors()
        if repo.mirror_db.get_mirror(mirror) is None:
            add_mirror(mirrors, repo.keystore, mirror, str(out), profile=repo.profile.name)
        version = mirrors.sync(mirror)
    ctx.print(f"exported {n} artifacts of cache {name} as mirror {mirror} version {version.number}: "
              f"/ipfs/{version.root}")
    return 0

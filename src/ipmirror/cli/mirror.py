"""``ipmirror mirror …``: define mirrors of local directories and sync them into versions."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time

from ipmirror.cli.common import Ctx, add_bool
from ipmirror.mirror.db import Version
from ipmirror.mirror.manager import Mirrors
from ipmirror.mirror.register import add_mirror
from ipmirror.mirror.sync import Progress
from ipmirror.node import Repo
from ipmirror.unixfs.profile import PRESETS


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    mir = sub.add_parser("mirror", help="mirrors of local directories, synced into versions")
    ms = mir.add_subparsers(dest="sub", required=True)
    p = ms.add_parser("add", help="register a mirror of a directory")
    p.add_argument("name")
    p.add_argument("dir")
    p.add_argument("--profile", choices=sorted(PRESETS), help="import profile (default: the repo's)")
    add_bool(p, "--hidden", False, "include names starting with a dot")
    add_bool(p, "--nocopy", False, "reference file bytes in place instead of copying them")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="leave out names or relative paths matching GLOB (repeatable)")
    p.add_argument("--key", default="", help="IPNS key to publish under (default: the mirror's name)")
    p.add_argument("--keep", type=int, default=0, help="versions to keep pinned (default 0: all)")
    p.set_defaults(func=add)

    p = ms.add_parser("sync", help="import the directory's current state as a new version")
    p.add_argument("name")
    p.add_argument("--checksum", action="store_true", help="re-read every file (ignore stat data)")
    p.add_argument("--json", action="store_true", help="print the new version as JSON")
    add_bool(p, "--progress", True, "show progress on a terminal")
    p.add_argument("--watch", action="store_true",
                   help="keep running: sync again whenever the directory changes (Ctrl-C stops)")
    p.add_argument("--debounce", type=float, default=5.0, metavar="SECONDS",
                   help="with --watch: wait for this long without changes before syncing (default 5)")
    p.add_argument("--max-wait", type=float, default=300.0, metavar="SECONDS",
                   help="with --watch: sync at least this often while changes keep coming (default 300)")
    p.set_defaults(func=sync)

    p = ms.add_parser("list", help="list mirrors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=list_)

    p = ms.add_parser("log", help="versions of a mirror")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=log)

    p = ms.add_parser("diff", help="paths added (A), deleted (D), modified (M) between versions")
    p.add_argument("name")
    p.add_argument("v1", nargs="?", type=int)
    p.add_argument("v2", nargs="?", type=int)
    p.set_defaults(func=diff)

    p = ms.add_parser("keep", help="set how many versions stay pinned (0: all)")
    p.add_argument("name")
    p.add_argument("n", type=int)
    p.set_defaults(func=keep)

    p = ms.add_parser("rm", help="remove a mirror (its versions become collectable)")
    p.add_argument("name")
    p.set_defaults(func=rm)


def add(ctx: Ctx) -> int:
    a = ctx.args
    with ctx.open_repo() as repo:
        m = add_mirror(repo.mirrors(), repo.keystore, a.name, a.dir, profile=a.profile or repo.profile.name,
                       hidden=a.hidden, exclude=a.exclude, nocopy=a.nocopy, key=a.key, keep=a.keep)
        ctx.print(f"added mirror {m.name} of {m.dir} (profile {m.profile}"
                  f"{', nocopy' if m.nocopy else ''})")
    return 0


class _Progress:
    """``N files scanned (MB), N read (MB), +added ~changed -removed`` on stderr, redrawn five
    times a second by a ticker thread while the sync runs."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.live = Progress()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="ipmirror-progress", daemon=True)

    def __enter__(self) -> _Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.show()
        print(file=self.ctx.err)

    def _tick(self) -> None:
        while not self._stop.wait(0.2):
            self.show()

    def show(self) -> None:
        c = self.live.counts()
        print(f"\r{c['scanned']} files scanned ({c['scanned_bytes'] / 1e6:.1f} MB), {c['read']} read "
              f"({c['read_bytes'] / 1e6:.1f} MB), +{c['added']} ~{c['changed']} -{c['removed']}",
              end="", file=self.ctx.err, flush=True)


def _sync_once(ctx: Ctx, mirrors: Mirrors, checksum: bool) -> None:
    a = ctx.args
    if a.progress and sys.stderr.isatty():
        with _Progress(ctx) as progress:
            v = mirrors.sync(a.name, checksum=checksum, on_warning=ctx.warn, progress=progress.live)
    else:
        v = mirrors.sync(a.name, checksum=checksum, on_warning=ctx.warn)
    _print_version(ctx, v)


def _print_version(ctx: Ctx, v: Version) -> None:
    a = ctx.args
    if a.json:
        ctx.print(json.dumps(dataclasses.asdict(v)))
    else:
        ctx.print(f"{a.name} version {v.number}: {v.root}")
        ctx.print(f"  {v.files} files, {v.size} bytes; +{v.added} added, ~{v.changed} changed, "
                  f"-{v.removed} removed; read {v.read_files} files ({v.read_bytes} bytes), "
                  f"wrote {v.put_blocks} blocks; {v.duration:.2f}s")
    ctx.out.flush()


def sync(ctx: Ctx) -> int:
    a = ctx.args
    with ctx.open_repo() as repo:
        if a.watch:
            _watch(ctx, repo)  # its first sync runs once it watches: no change is missed
        else:
            _sync_once(ctx, repo.mirrors(), a.checksum)
    return 0


def _watch(ctx: Ctx, repo: Repo) -> None:
    """The watch service ``serve`` runs for mirrors with watching on (``server/watch.py``), in
    this process: sync now, then again once ``--debounce`` seconds pass without a change (or
    ``--max-wait`` after the first); Ctrl-C or SIGTERM ends it cleanly, a failed sync with its
    error."""
    import logging

    from ipmirror.serving import watch

    a = ctx.args
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    cfg = dataclasses.replace(repo.settings, watch=dataclasses.replace(
        repo.settings.watch, debounce=a.debounce, max_wait=a.max_wait))
    watch(repo, a.name, cfg, on_version=lambda v: _print_version(ctx, v), checksum=a.checksum)


def list_(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        ms = repo.mirrors()
        rows = []
        for m in ms.all():
            vs = ms.log(m.name)
            rows.append({"Name": m.name, "Dir": m.dir, "Profile": m.profile, "Nocopy": m.nocopy,
                         "Versions": len(vs), "Latest": vs[-1].root if vs else None})
        if ctx.args.json:
            ctx.print(json.dumps(rows))
        else:
            for r in rows:
                ctx.print(f"{r['Name']}\t{r['Dir']}\t{r['Versions']} versions\t{r['Latest'] or '-'}")
    return 0


def log(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        vs = repo.mirrors().log(ctx.args.name)
        if ctx.args.json:
            ctx.print(json.dumps([dataclasses.asdict(v) for v in vs]))
            return 0
        for v in vs:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.time))
            notes = []
            if not v.pinned:
                notes.append("unpinned")
            if v.nocopy and v is not vs[-1]:
                notes.append("no-copy: may be incomplete")
            note = f"  ({', '.join(notes)})" if notes else ""
            ctx.print(f"{v.number:>4}  {when}  {v.root}  {v.files} files  {v.size} B  +{v.added} "
                      f"~{v.changed} -{v.removed}  {v.duration:.2f}s{note}")
    return 0


def diff(ctx: Ctx) -> int:
    a = ctx.args
    with ctx.open_repo() as repo:
        for ch in repo.mirrors().diff(a.name, a.v1, a.v2):
            ctx.print(f"{ch.kind} {ch.path}")
    return 0


def keep(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        repo.mirrors().set_keep(ctx.args.name, ctx.args.n)
    return 0


def rm(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        m = repo.mirrors().rm(ctx.args.name)
        ctx.print(f"removed mirror {m.name}")
    return 0




"""``ipmirror mirror …``: define mirrors of local directories and sync them into versions."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from ipmirror.cli.common import Ctx, add_bool
from ipmirror.unixfs.importer import Added
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
        m = repo.mirror_add(a.name, a.dir, profile=a.profile or repo.profile.name, hidden=a.hidden,
                            exclude=a.exclude, nocopy=a.nocopy, key=a.key, keep=a.keep)
        ctx.print(f"added mirror {m.name} of {m.dir} (profile {m.profile}"
                  f"{', nocopy' if m.nocopy else ''})")
    return 0


class _Progress:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.files = self.read = self.bytes = 0
        self.last = 0.0

    def event(self, ev: Added) -> None:
        if ev.kind == "file" and ev.entry is not None:
            self.files += 1
            if not ev.reused:
                self.read += 1
                self.bytes += ev.entry.size
        if time.monotonic() - self.last > 0.2:
            self.show()

    def show(self) -> None:
        self.last = time.monotonic()
        print(f"\r{self.files} files scanned, {self.read} read ({self.bytes / 1e6:.1f} MB)", end="",
              file=self.ctx.err, flush=True)

    def done(self) -> None:
        self.show()
        print(file=self.ctx.err)


def sync(ctx: Ctx) -> int:
    a = ctx.args
    progress = _Progress(ctx) if a.progress and sys.stderr.isatty() else None
    with ctx.open_repo() as repo:
        v = repo.mirrors().sync(a.name, checksum=a.checksum,
                                on_event=progress.event if progress else None, on_warning=ctx.warn)
        if progress is not None:
            progress.done()
        if a.json:
            ctx.print(json.dumps(dataclasses.asdict(v)))
        else:
            ctx.print(f"{a.name} version {v.number}: {v.root}")
            ctx.print(f"  {v.files} files, {v.size} bytes; +{v.added} added, ~{v.changed} changed, "
                      f"-{v.removed} removed; read {v.read_files} files ({v.read_bytes} bytes); "
                      f"{v.duration:.2f}s")
    return 0


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




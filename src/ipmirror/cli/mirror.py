"""``ipmirror mirror …``: define mirrors of local directories and sync them into versions.

``mirror sync`` exits 0 (a new version, or nothing changed), 3 (partial: unreadable entries kept
or left out, listed on stderr), 4 (refused by a source check), 5 (``--no-wait`` and another sync of
the mirror runs); see ``errors.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time

from ipmirror.cli.common import Ctx, add_bool
from ipmirror.errors import EXIT_OK, EXIT_PARTIAL
from ipmirror.mirror.checks import DEFAULT_MAX_DELETE
from ipmirror.mirror.db import Version
from ipmirror.mirror.manager import Mirrors
from ipmirror.mirror.register import add_mirror, remove_mirror
from ipmirror.mirror.retention import DEFAULT_KEEP, DEFAULT_KEEP_DAYS, describe
from ipmirror.mirror.sync import Progress, SyncResult
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
    p.add_argument("--keep", type=int, default=DEFAULT_KEEP, metavar="N",
                   help=f"keep the last N versions pinned (default {DEFAULT_KEEP}; 0: all)")
    p.add_argument("--keep-days", type=float, default=DEFAULT_KEEP_DAYS, metavar="DAYS",
                   help=f"and every version younger than DAYS (default {DEFAULT_KEEP_DAYS:g})")
    p.set_defaults(func=add)

    p = ms.add_parser("sync", help="import the directory's current state as a new version")
    p.add_argument("name")
    p.add_argument("--checksum", action="store_true", help="re-read every file (ignore stat data)")
    p.add_argument("--json", action="store_true", help="print the new version as JSON")
    add_bool(p, "--progress", True, "show progress on a terminal")
    p.add_argument("--force", action="store_true",
                   help="publish even if the source looks broken (empty, another file system, "
                        "too many files removed)")
    p.add_argument("--max-delete", type=float, default=DEFAULT_MAX_DELETE, metavar="PERCENT",
                   help="refuse to publish if more than PERCENT of the files would be removed "
                        f"(default {DEFAULT_MAX_DELETE:g})")
    p.add_argument("--strict", action="store_true",
                   help="fail on an unreadable file (default: keep its previous content, exit 3)")
    add_bool(p, "--wait", True, "wait for another sync of the mirror to finish (--no-wait: exit 5)")
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

    p = ms.add_parser("keep", help="set which versions stay pinned: the last N (0: all) and those "
                      "younger than --days")
    p.add_argument("name")
    p.add_argument("n", type=int)
    p.add_argument("--days", type=float, default=None, help="also keep versions younger than this "
                   "(default: unchanged)")
    p.set_defaults(func=keep)

    p = ms.add_parser("rm", help="remove a mirror, its key and IPNS record (its versions become "
                      "collectable)")
    p.add_argument("name")
    p.add_argument("--keep-key", action="store_true", help="keep the mirror's key and IPNS record")
    p.set_defaults(func=rm)


def add(ctx: Ctx) -> int:
    a = ctx.args
    with ctx.open_repo() as repo:
        m = add_mirror(repo.mirrors(), repo.keystore, a.name, a.dir, profile=a.profile or repo.profile.name,
                       hidden=a.hidden, exclude=a.exclude, nocopy=a.nocopy, key=a.key, keep=a.keep,
                       keep_days=a.keep_days)
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


def _sync_once(ctx: Ctx, mirrors: Mirrors, checksum: bool) -> int:
    """One sync with the command's options; prints it; returns its exit code (0, or 3: partial)."""
    a = ctx.args

    def run(progress: Progress | None) -> SyncResult:
        return mirrors.sync(a.name, checksum=checksum, on_warning=ctx.warn, progress=progress,
                            force=a.force, max_delete=a.max_delete, strict=a.strict, wait=a.wait,
                            on_wait=lambda msg: print(f"ipmirror: {msg}", file=ctx.err, flush=True))

    if a.progress and sys.stderr.isatty():
        with _Progress(ctx) as progress:
            v = run(progress.live)
    else:
        v = run(None)
    return _print_version(ctx, v)


def _print_version(ctx: Ctx, v: Version) -> int:
    """Print what a sync did (its unreadable entries on stderr); its exit code (0, or 3: partial)."""
    a = ctx.args
    skipped = v.skipped_paths if isinstance(v, SyncResult) else []
    for sk in skipped:
        ctx.warn(f"skipped {sk}")
    if a.json:
        d = dataclasses.asdict(v)
        d["skipped_paths"] = [str(sk) for sk in skipped]
        ctx.print(json.dumps(d))
    else:
        ctx.print(_describe(a.name, v))
    ctx.out.flush()
    return EXIT_PARTIAL if skipped else EXIT_OK


def _describe(name: str, v: Version) -> str:
    new = v.new if isinstance(v, SyncResult) else True
    head = (f"{name} version {v.number}: {v.root}" if new else
            f"{name}: nothing changed; version {v.number} stays the latest: {v.root}")
    partial = f"; {v.skipped} unreadable (listed above)" if v.skipped else ""
    return (f"{head}\n  {v.files} files, {v.size} bytes; +{v.added} added, ~{v.changed} changed, "
            f"-{v.removed} removed; read {v.read_files} files ({v.read_bytes} bytes), "
            f"wrote {v.put_blocks} blocks; {v.duration:.2f}s{partial}")


def sync(ctx: Ctx) -> int:
    a = ctx.args
    with ctx.open_repo() as repo:
        if a.watch:
            _watch(ctx, repo)  # its first sync runs once it watches: no change is missed
            return EXIT_OK
        return _sync_once(ctx, repo.mirrors(), a.checksum)


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
    def show(v: Version) -> None:
        _print_version(ctx, v)

    watch(repo, a.name, cfg, on_version=show, checksum=a.checksum)


def list_(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        ms = repo.mirrors()
        rows = []
        for m in ms.all():
            vs = ms.log(m.name)
            rows.append({"Name": m.name, "Dir": m.dir, "Profile": m.profile, "Nocopy": m.nocopy,
                         "Versions": len(vs), "Latest": vs[-1].root if vs else None,
                         "Checked": m.checked or None, "Refused": m.refused or None,
                         "Keep": m.keep, "KeepDays": m.keep_days})
        if ctx.args.json:
            ctx.print(json.dumps(rows))
        else:
            for r, m in zip(rows, ms.all(), strict=True):
                state = f"refused: {m.refused}" if m.refused else f"checked {_when(m.checked)}"
                ctx.print(f"{r['Name']}\t{r['Dir']}\t{r['Versions']} versions\t{r['Latest'] or '-'}\t"
                          f"{state}\tkeeps {describe(m.keep, m.keep_days)}")
    return 0


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "never"


def log(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        mirrors = repo.mirrors()
        vs = mirrors.log(ctx.args.name)
        m = mirrors.get(ctx.args.name)
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
            if v.skipped:
                notes.append(f"partial: {v.skipped} unreadable")
            note = f"  ({', '.join(notes)})" if notes else ""
            ctx.print(f"{v.number:>4}  {when}  {v.root}  {v.files} files  {v.size} B  +{v.added} "
                      f"~{v.changed} -{v.removed}  {v.duration:.2f}s{note}")
        ctx.print(f"last checked {_when(m.checked)}" + (f"; the last sync was refused: {m.refused}"
                                                        if m.refused else ""))
    return 0


def diff(ctx: Ctx) -> int:
    a = ctx.args
    with ctx.open_repo() as repo:
        for ch in repo.mirrors().diff(a.name, a.v1, a.v2):
            ctx.print(f"{ch.kind} {ch.path}")
    return 0


def keep(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        m = repo.mirrors().set_keep(ctx.args.name, ctx.args.n, ctx.args.days)
        ctx.print(f"{m.name} keeps {describe(m.keep, m.keep_days)}")
    return 0


def rm(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        m, note = remove_mirror(repo.mirrors(), repo.keystore, repo.names, ctx.args.name,
                                keep_key=ctx.args.keep_key)
        ctx.print(f"removed mirror {m.name}; {note}")
    return 0




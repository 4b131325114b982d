"""``ipmirror add``: import files and directories (Kubo-compatible flags and output)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ipmirror.cli.common import Ctx, add_bool
from ipmirror.errors import InvalidInput
from ipmirror.unixfs.importer import AddOptions, Importer, ImportEvent
from ipmirror.unixfs.nodes import Entry
from ipmirror.unixfs.profile import DEFAULT_PROFILE, PRESETS, from_preset


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("add", help="add files and directories to the store and print their CIDs",
                       description="Add files or directories (recursively) and print their CIDs, like "
                                   "'ipfs add'. Hidden files are skipped unless --hidden. With no PATH "
                                   "(or '-') it adds what is piped to standard input.")
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("--stdin-name", default="", help="the name of the data read from standard input")
    p.add_argument("-r", "--recursive", action="store_true", help="accepted for Kubo compatibility (no-op)")
    p.add_argument("--profile", choices=sorted(PRESETS), help="import profile (default: the repo's, "
                   f"else {DEFAULT_PROFILE})")
    p.add_argument("--cid-version", type=int, choices=(0, 1))
    add_bool(p, "--raw-leaves", None, "use raw blocks for file leaves (default: per profile)")
    p.add_argument("--chunker", help="size-N or buzhash (default: per profile)")
    p.add_argument("--max-links", type=int, help="maximum links per file node (default: per profile)")
    add_bool(p, "--trickle", False, "use the trickle DAG layout")
    add_bool(p, "--hidden", False, "include files and directories whose names start with a dot")
    add_bool(p, "--inline", False, "inline small blocks into identity CIDs")
    p.add_argument("--inline-limit", type=int, default=32, help="largest block to inline (default 32)")
    add_bool(p, "--preserve-mode", False, "record file permissions")
    add_bool(p, "--preserve-mtime", False, "record modification times")
    add_bool(p, "--wrap-with-directory", False, "wrap the added paths in a directory")
    p.add_argument("-w", dest="wrap_with_directory", action="store_true", help=argparse.SUPPRESS)
    add_bool(p, "--only-hash", False, "compute CIDs only; write nothing")
    p.add_argument("-n", dest="only_hash", action="store_true", help=argparse.SUPPRESS)
    add_bool(p, "--pin", True, "pin the added root(s) recursively (default true)")
    add_bool(p, "--progress", False, "show progress on stderr")
    p.add_argument("--hamt-switch", choices=(">", ">="), help="HAMT threshold rule override")
    g = p.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true", help="print only the CIDs")
    g.add_argument("-Q", "--quieter", action="store_true", help="print only the final root CID")
    p.add_argument("--json", action="store_true", help="one JSON object per added entry")
    p.set_defaults(func=run)


def _stdin(paths: list[str]) -> bool:
    """Whether to add standard input: ``-`` alone, or no PATH while stdin is not a terminal."""
    if paths == ["-"]:
        return True
    if "-" in paths:
        raise InvalidInput("'-' (standard input) cannot be added together with paths")
    if not paths:
        if sys.stdin is None or sys.stdin.isatty():
            raise InvalidInput("nothing to add: give a PATH, or pipe data to standard input")
        return True
    return False


def run(ctx: Ctx) -> int:
    a = ctx.args
    stdin = _stdin(a.paths)
    repo = None
    if not a.only_hash:
        repo = ctx.open_repo()
    try:
        base = a.profile or (repo.profile.name if repo is not None else DEFAULT_PROFILE)
        profile = from_preset(base, cid_version=a.cid_version, raw_leaves=a.raw_leaves, chunker=a.chunker,
                              max_links=a.max_links, trickle=a.trickle or None, inline=a.inline or None,
                              inline_limit=a.inline_limit if a.inline else None, hamt_switch=a.hamt_switch)
        opts = AddOptions(profile, hidden=a.hidden, preserve_mode=a.preserve_mode,
                          preserve_mtime=a.preserve_mtime, wrap=a.wrap_with_directory)
        progress = _Progress(ctx) if a.progress and sys.stderr.isatty() else None

        def on_event(ev: ImportEvent) -> None:
            if ev.entry is None:
                return
            if progress is not None:
                progress.tick(ev)
            if a.quieter:
                return
            if a.json:
                ctx.print(json.dumps({"Name": ev.path, "Hash": str(ev.entry.cid),
                                      "Size": str(ev.entry.tsize)}))
            elif a.quiet:
                ctx.print(ev.entry.cid)
            else:
                ctx.print(f"added {ev.entry.cid} {ev.path}".rstrip())

        def add(imp: Importer) -> list[Entry]:
            if stdin:
                return [imp.add_stream(sys.stdin.fileno(), a.stdin_name)]
            return imp.add_paths(a.paths)

        if repo is None:
            roots = add(Importer(opts, None, on_event=on_event, on_warning=ctx.warn))
        else:
            with repo.store.session(batch_bytes=repo.batch_bytes) as s:
                roots = add(Importer(opts, s.put, on_event=on_event, on_warning=ctx.warn))
                if a.pin:
                    for r in roots:
                        s.pin(r.cid)
        if progress is not None:
            progress.done()
        if a.quieter:
            ctx.print(roots[-1].cid)
        return 0
    finally:
        if repo is not None:
            repo.close()


class _Progress:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.t0 = time.monotonic()
        self.files = 0
        self.bytes = 0
        self.last = 0.0

    def tick(self, ev: ImportEvent) -> None:
        if ev.kind == "file" and ev.entry is not None:
            self.files += 1
            self.bytes += ev.entry.size
        if time.monotonic() - self.last > 0.2:
            self.show()

    def show(self) -> None:
        now = self.last = time.monotonic()
        rate = self.bytes / max(now - self.t0, 1e-6) / 1e6
        print(f"\r{self.files} files, {self.bytes / 1e6:.1f} MB, {rate:.0f} MB/s",
              end="", file=self.ctx.err, flush=True)

    def done(self) -> None:
        self.show()
        print(file=self.ctx.err)

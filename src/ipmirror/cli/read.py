"""``ipmirror cat``, ``get`` and ``ls``: reading UnixFS data back out of the store."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from collections.abc import Callable

from ipmirror.cli.common import Ctx
from ipmirror.codec.cid import CID
from ipmirror.errors import Conflict, InvalidInput
from ipmirror.node import Repo
from ipmirror.unixfs import exporter as ex
from ipmirror.unixfs.extract import extract
from ipmirror.unixfs.resolve import Resolver, parse_path

Getter = Callable[[CID], bytes]


def _extract(get: Getter, cid: CID, tmp: str, dest: str) -> None:
    try:
        extract(get, cid, tmp)
    except OSError as e:
        raise InvalidInput(f"cannot write {dest}: {e.strerror}") from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("cat", help="print a file's contents")
    p.add_argument("path", metavar="CID[/PATH]")
    p.add_argument("-o", "--offset", type=int, default=0, help="byte offset to start at")
    p.add_argument("-l", "--length", type=int, help="number of bytes to print")
    p.set_defaults(func=cat)

    p = sub.add_parser("get", help="write a file or directory tree out of the store")
    p.add_argument("path", metavar="CID[/PATH]")
    p.add_argument("-o", "--output", help="the path to create (default: the CID or last path name)")
    p.add_argument("--force", action="store_true", help="replace an existing output path")
    p.set_defaults(func=get)

    p = sub.add_parser("ls", help="list the links of a directory (or file)")
    p.add_argument("path", metavar="CID[/PATH]")
    p.add_argument("-v", "--headers", action="store_true", help="print a header line")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=ls)


def content_path(repo: Repo, text: str) -> tuple[CID, list[str]]:
    """``CID[/PATH]``, ``/ipfs/…``, ``ipfs://…``, or ``/ipns/NAME[/PATH]`` (``ipns://…``) resolved
    through the node's names, as ``name resolve`` does (IPNS names, local keys, mirror names)."""
    t = text.strip()
    if t.startswith("ipns://"):
        t = "/ipns/" + t[len("ipns://"):]
    if t.startswith("/ipns/"):
        t = repo.names.path_of(t, lookup=repo.mirror_lookup)
    return parse_path(t)


def _target(repo: Repo, text: str) -> CID:
    root, parts = content_path(repo, text)
    return Resolver(repo.blocks.get).resolve_path(root, parts).cid


def cat(ctx: Ctx) -> int:
    a = ctx.args
    if a.offset < 0 or (a.length is not None and a.length < 0):
        raise InvalidInput("offset and length must not be negative")
    with ctx.open_repo() as repo:
        get = repo.blocks.get
        cid = _target(repo, a.path)
        out = sys.stdout.buffer
        for chunk in ex.read(get, cid, a.offset, a.length):
            out.write(chunk)
        out.flush()
    return 0


_KIND_CODE = {"directory": 1, "hamt-sharded-directory": 1, "file": 2, "raw": 2, "symlink": 4, "metadata": 3}


def ls(ctx: Ctx) -> int:
    a = ctx.args
    with ctx.open_repo() as repo:
        get = repo.blocks.get
        cid = _target(repo, a.path)
        node = ex.stat(get, cid)
        rows: list[tuple[str, CID, ex.Node]] = []
        if node.is_dir:
            rows = [(e.name, e.cid, ex.stat(get, e.cid)) for e in ex.list_dir(get, cid, node)]
        elif node.pb is not None:
            rows = [("", lk.hash, ex.stat(get, lk.hash)) for lk in node.pb.links]
        if a.json:
            links = [{"Name": n, "Hash": str(c), "Size": 0 if x.is_dir else x.size,
                      "Type": _KIND_CODE.get(x.kind, 0),
                      "Target": (x.data.data or b"").decode("utf-8", "surrogateescape")
                      if x.kind == "symlink" and x.data else ""} for n, c, x in rows]
            ctx.print(json.dumps({"Objects": [{"Hash": a.path, "Links": links}]}))
            return 0
        if a.headers:
            ctx.print("Hash\tSize\tName")
        width = max((len(str(c)) for _, c, _ in rows), default=0)
        for name, c, x in rows:
            size = "-" if x.is_dir else str(x.size)
            ctx.print(f"{c!s:<{width}} {size:>8} {name}{'/' if x.is_dir else ''}")
    return 0


def get(ctx: Ctx) -> int:
    a = ctx.args
    with ctx.open_repo() as repo:
        getb = repo.blocks.get
        root, parts = content_path(repo, a.path)
        cid = Resolver(getb).resolve_path(root, parts).cid
        given = [p for p in a.path.strip().split("/") if p]  # Kubo names it after the path typed
        dest = a.output or (given[-1] if len(given) > 1 and given[-1] not in ("ipfs", "ipns") else str(root))
        if os.path.lexists(dest) and not a.force:
            raise Conflict(f"{dest} exists (use --force to replace it)")
        parent = os.path.dirname(os.path.abspath(dest))
        if not os.path.isdir(parent):
            raise InvalidInput(f"cannot write {dest}: the directory {parent} does not exist")
        tmp = os.path.join(parent, f".{os.path.basename(dest)}.ipmirror-{os.getpid()}")
        try:
            _extract(getb, cid, tmp, dest)
            if os.path.lexists(dest):
                if os.path.isdir(dest) and not os.path.islink(dest):
                    shutil.rmtree(dest)
                else:
                    os.unlink(dest)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                if os.path.isdir(tmp) and not os.path.islink(tmp):
                    shutil.rmtree(tmp)
                elif os.path.lexists(tmp):
                    os.unlink(tmp)
            raise
        ctx.err.write(f"Saving file(s) to {dest}\n")
    return 0

"""``ipmirror init``, ``block``, ``dag``, ``pin`` and ``repo`` commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ipmirror.cli.common import Ctx, add_bool
from ipmirror.codec import dagpb
from ipmirror.codec.cid import CID, CODEC_NAMES, RAW
from ipmirror.dag import gc as gcmod
from ipmirror.dag.car_io import export_car, import_car
from ipmirror.dag.walk import walk
from ipmirror.errors import EXIT_OK, EXIT_PARTIAL, DecodeError, InvalidInput
from ipmirror.node import Repo, recover
from ipmirror.store.base import Compactable, PinKind
from ipmirror.unixfs.profile import DEFAULT_PROFILE, PRESETS
from ipmirror.unixfs.resolve import Resolver, parse_path

CODECS = {v: k for k, v in CODEC_NAMES.items()}
MAX_BLOCK = 2 << 20


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("init", help="create a repository")
    p.add_argument("--profile", choices=sorted(PRESETS), default=DEFAULT_PROFILE)
    p.set_defaults(func=init)

    blk = sub.add_parser("block", help="raw blocks").add_subparsers(dest="sub", required=True)
    p = blk.add_parser("get", help="write a block's bytes to stdout")
    p.add_argument("cid")
    p.set_defaults(func=block_get)
    p = blk.add_parser("put", help="store a block read from a file or stdin; print its CID")
    p.add_argument("file", nargs="?", default="-")
    p.add_argument("--cid-codec", default="raw", choices=("raw", "dag-pb", "dag-cbor"))
    add_bool(p, "--pin", False, "pin the block")
    p.set_defaults(func=block_put)
    p = blk.add_parser("stat", help="print a block's size")
    p.add_argument("cid")
    p.set_defaults(func=block_stat)
    p = blk.add_parser("rm", help="delete blocks (not pinned ones)")
    p.add_argument("cids", nargs="+")
    p.set_defaults(func=block_rm)

    dag = sub.add_parser("dag", help="DAG-level commands").add_subparsers(dest="sub", required=True)
    p = dag.add_parser("export", help="write a DAG as a CARv1 stream to stdout")
    p.add_argument("path", metavar="CID[/PATH]")
    p.set_defaults(func=dag_export)
    p = dag.add_parser("import", help="import CAR files (verifying every block)")
    p.add_argument("files", nargs="+")
    add_bool(p, "--pin-roots", True, "pin the roots when their DAG is complete (default true)")
    p.set_defaults(func=dag_import)
    p = dag.add_parser("stat", help="size and block count of a DAG")
    p.add_argument("path", metavar="CID[/PATH]")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=dag_stat)

    pin = sub.add_parser("pin", help="pins keep DAGs from GC").add_subparsers(dest="sub", required=True)
    p = pin.add_parser("add", help="pin a DAG that is complete in the store")
    p.add_argument("paths", nargs="+", metavar="CID[/PATH]")
    add_bool(p, "--recursive", True, "pin the whole DAG (default true)")
    p.set_defaults(func=pin_add)
    p = pin.add_parser("rm", help="unpin")
    p.add_argument("paths", nargs="+", metavar="CID[/PATH]")
    p.set_defaults(func=pin_rm)
    p = pin.add_parser("ls", help="list pins")
    p.add_argument("--type", choices=("all", "recursive", "direct"), default="all")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=pin_ls)

    repo = sub.add_parser("repo", help="repository maintenance").add_subparsers(dest="sub", required=True)
    p = repo.add_parser("gc", help="delete blocks that no pin reaches")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--compact", action="store_true",
                   help="then shrink the data file (only when no other process uses the repository)")
    p.set_defaults(func=repo_gc)
    p = repo.add_parser("verify", help="re-hash every block and check every pinned DAG "
                        "(exit 1: damaged or missing blocks; 3: only stale no-copy files)")
    p.add_argument("--repair", action="store_true",
                   help="remove damaged blocks, so the next add or mirror sync writes them again")
    p.set_defaults(func=repo_verify)
    p = repo.add_parser("recover", help="copy everything readable of a damaged repository into a new one")
    p.add_argument("--to", required=True, metavar="NEWPATH", help="the new repository (must not exist)")
    p.set_defaults(func=repo_recover)
    p = repo.add_parser("stat", help="repository statistics")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=repo_stat)


def _cid_of(repo: Repo, text: str) -> CID:
    root, parts = parse_path(text)
    return Resolver(repo.blocks.get).resolve_path(root, parts).cid if parts else root


def init(ctx: Ctx) -> int:
    path = ctx.repo_path
    existed = (path / "config.json").exists()
    cfg = Repo.init(path, ctx.args.profile)
    with Repo.open(path):
        pass
    if existed:
        ctx.print(f"repository at {path} exists (profile {cfg['profile']})")
    else:
        ctx.print(f"initialized ipmirror repository at {path} (profile {cfg['profile']})")
    return 0


def block_get(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        sys.stdout.buffer.write(repo.blocks.get(CID.parse(ctx.args.cid)))
        sys.stdout.buffer.flush()
    return 0


def block_put(ctx: Ctx) -> int:
    a = ctx.args
    try:
        if a.file == "-":
            data = sys.stdin.buffer.read(MAX_BLOCK + 1)
        else:
            with open(a.file, "rb") as f:
                data = f.read(MAX_BLOCK + 1)
    except OSError as e:
        raise InvalidInput(f"{a.file}: {e.strerror}") from None
    if len(data) > MAX_BLOCK:
        raise InvalidInput(f"block is larger than {MAX_BLOCK} bytes")
    codec = CODECS[a.cid_codec]
    if codec == CODECS["dag-pb"]:
        dagpb.decode(data)
    cid = CID.hash(codec, data)
    with ctx.open_repo() as repo, repo.store.session() as s:
        s.put(cid, data)
        if a.pin:
            s.pin(cid, "direct")
    ctx.print(cid)
    return 0


def block_stat(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        cid = CID.parse(ctx.args.cid)
        ctx.print(f"Key: {cid}\nSize: {repo.store.size(cid)}")
    return 0


def block_rm(ctx: Ctx) -> int:
    """Refuses a block any pin's DAG holds (naming the pin), as Kubo does."""
    rc = 0
    with ctx.open_repo() as repo:
        cids = [CID.parse(text) for text in ctx.args.cids]
        held = gcmod.pins_reaching(repo.store, {c.multihash for c in cids})
        for cid in cids:
            pin = held.get(cid.multihash)
            if pin is not None:
                ctx.err.write(f"Error: {cid} is pinned; unpin it first\n" if pin.multihash == cid.multihash
                              else f"Error: {cid} is part of the DAG pinned at {pin}; unpin that first\n")
                rc = 1
            elif repo.store.delete(cid):
                ctx.print(f"removed {cid}")
            else:
                ctx.err.write(f"Error: block {cid} is not in the store\n")
                rc = 1
    return rc


def dag_export(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        cid = _cid_of(repo, ctx.args.path)
        out = sys.stdout.buffer
        export_car(repo.blocks.get, cid, out.write)
        out.flush()
    return 0


def dag_import(ctx: Ctx) -> int:
    rc = 0
    with ctx.open_repo() as repo:
        for name in ctx.args.files:
            try:
                f = sys.stdin.buffer if name == "-" else open(name, "rb")  # noqa: SIM115
            except OSError as e:
                raise InvalidInput(f"{name}: {e.strerror}") from None
            try:
                res = import_car(repo.store, f.read, pin_roots=ctx.args.pin_roots)
            except DecodeError as e:
                raise DecodeError(f"{name}: {e}") from None
            finally:
                if f is not sys.stdin.buffer:
                    f.close()
            for r in res.pinned:
                ctx.print(f"pinned root {r} success")
            for r in res.incomplete:
                ctx.err.write(f"Error: root {r} is incomplete in the store; not pinned\n")
                rc = 1
            ctx.err.write(f"imported {res.blocks} blocks ({res.new} new) from {name}\n")
    return rc


def dag_stat(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        cid = _cid_of(repo, ctx.args.path)
        size = n = 0
        for c, data in walk(cid, repo.blocks.get):
            if c.is_identity:  # inlined in its parent's link; not a stored block (as in CARs)
                continue
            n += 1
            size += len(data or b"")
        if ctx.args.json:
            ctx.print(json.dumps({"Cid": str(cid), "Size": size, "NumBlocks": n}))
        else:
            ctx.print(f"Size: {size}, NumBlocks: {n}")
    return 0


def pin_add(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        for text in ctx.args.paths:
            cid = _cid_of(repo, text)
            kind: PinKind = "recursive" if ctx.args.recursive else "direct"
            gcmod.pin_dag(repo.store, cid, kind)  # the check and the pin: atomic against GC
            ctx.print(f"pinned {cid} {'recursively' if kind == 'recursive' else 'directly'}")
    return 0


def pin_rm(ctx: Ctx) -> int:
    rc = 0
    with ctx.open_repo() as repo:
        for text in ctx.args.paths:
            cid = _cid_of(repo, text)
            if repo.store.pin_rm(cid):
                left = repo.store.pin_holders(cid)
                ctx.print(f"unpinned {cid}" + (f" (still pinned by {', '.join(left)})" if left else ""))
            elif repo.store.pin_holders(cid):
                holders = ", ".join(repo.store.pin_holders(cid))
                ctx.err.write(f"Error: {cid} is pinned by {holders}, not by you "
                              "(a mirror's versions are unpinned with 'mirror keep' or 'mirror rm')\n")
                rc = 1
            else:
                ctx.err.write(f"Error: {cid} is not pinned\n")
                rc = 1
    return rc


def pin_ls(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        for cid, kind in repo.store.pins():
            if ctx.args.type in ("all", kind):
                ctx.print(cid if ctx.args.quiet else f"{cid} {kind}")
    return 0


def repo_gc(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        before = repo.store.stat()
        res = gcmod.collect(repo.store)
        after = repo.store.stat()
        if not ctx.args.quiet:
            freed = max(0, before.block_bytes - after.block_bytes)
            ctx.print(f"removed {res.removed} blocks ({freed} bytes)")
        if ctx.args.compact:
            if not isinstance(repo.store, Compactable):
                ctx.err.write("compaction skipped: this block store cannot be compacted\n")
                return 1
            given = repo.store.compact()
            if given is None:
                ctx.err.write("compaction skipped: another process is using the repository\n")
                return 1
            if not ctx.args.quiet:
                ctx.print(f"compacted: {given} bytes given back to the file system")
    return 0


def _needed_by(repo: Repo, roots: list[CID]) -> str:
    """``ROOT (mirror NAME version N, pinned by user), …`` for a problem block's pins."""
    versions: dict[str, list[str]] = {}
    for m in repo.mirror_db.mirrors():
        for v in repo.mirror_db.versions(m.id):
            versions.setdefault(v.root, []).append(f"mirror {m.name} version {v.number}")
    out = []
    for root in roots:
        who = list(versions.get(str(root), []))
        who += [f"pinned by {h}" for h in repo.store.pin_holders(root) if h not in ("mirrors", "")]
        out.append(f"{root} ({', '.join(who)})" if who else str(root))
    return ", ".join(out)


def _latest_needing(repo: Repo, roots: set[str]) -> list[str]:
    """Mirrors whose latest version needs one of ``roots``."""
    out = []
    for m in repo.mirror_db.mirrors():
        vs = repo.mirror_db.versions(m.id)
        if vs and vs[-1].root in roots:
            out.append(m.name)
    return out


def repo_verify(ctx: Ctx) -> int:
    """Exit 0 clean, 1 when a block is damaged or missing, 3 when only no-copy files are stale."""
    with ctx.open_repo() as repo:
        rep = gcmod.verify(repo.store)
        needs = rep.needs
        for mh in rep.corrupt:
            cid, _k, roots = needs.get(mh, (CID(1, RAW, mh), "", []))
            ctx.print(f"damaged: block {cid} does not match its hash"
                      + (f"; needed by {_needed_by(repo, roots)}" if roots else "; no pin needs it"))
        shown: set[bytes] = set()
        for _root, c in rep.missing:
            if c.multihash not in shown:
                shown.add(c.multihash)
                ctx.print(f"missing: block {c} is not in the store; needed by "
                          f"{_needed_by(repo, needs[c.multihash][2])}")
        for root, msg in rep.undecodable:
            ctx.print(f"undecodable: DAG under {root}: {msg}")
        for mh, why in rep.stale:
            roots = needs[mh][2] if mh in needs else []
            ctx.print(f"stale: {why}" + (f"; needed by {_needed_by(repo, roots)}" if roots else ""))
        for mh in rep.unverifiable:
            ctx.print(f"skipped: block {CID(1, RAW, mh)} uses a hash function ipmirror cannot check")
        refs = f" and {rep.refs} no-copy references ({len(rep.stale)} stale)" if rep.refs else ""
        if ctx.args.repair and rep.corrupt:
            _repair(ctx, repo, rep)
        if rep.ok:
            state = "stale no-copy files" if rep.stale else "ok"
            ctx.print(f"verified {rep.blocks} blocks{refs}: {state}")
            return rep.exit_code
        n = len(rep.corrupt) + len(shown) + len(rep.undecodable)
        ctx.print(f"verified {rep.blocks} blocks{refs}: {n} problem(s)")
        return rep.exit_code


def _repair(ctx: Ctx, repo: Repo, rep: gcmod.VerifyReport) -> None:
    """Remove the damaged blocks; make the next sync of a mirror whose latest version needs one
    check every reused file's blocks (so it reads the files again and rewrites them); say what
    stays lost."""
    removed = gcmod.repair(repo.store, rep)
    roots = {str(r) for mh in removed if mh in rep.needs for r in rep.needs[mh][2]}
    resync = _latest_needing(repo, roots)
    for name in resync:
        m = repo.mirror_db.get_mirror(name)
        if m is not None:
            m.completed_gen = 0  # as after an interrupted sync: reused files are checked first
            repo.mirror_db.put_mirror(m)
    ctx.print(f"repaired: removed {len(removed)} damaged block(s)")
    for name in resync:
        ctx.print(f"repaired: the next 'ipmirror mirror sync {name}' writes its missing blocks "
                  "again from the files that still hold them")
    for mh in removed:
        if mh in rep.needs:
            cid, _k, need = rep.needs[mh]
            ctx.print(f"lost: block {cid} until the same data is added, imported or synced again; "
                      f"needed by {_needed_by(repo, need)}")


def repo_recover(ctx: Ctx) -> int:
    """Exit 0 when everything was saved, 3 (partial) when something could not be."""
    src, dst = ctx.repo_path, Path(ctx.args.to).expanduser()
    rep = recover(src, dst)
    saved = ", ".join(f"{n} {what}" for what, n in rep.copied.items())
    ctx.print(f"recovered into {dst}: {saved}")
    for line in rep.lost:
        ctx.print(f"not saved: {line}")
    if rep.lost:
        ctx.print(f"partial: run 'ipmirror repo verify' with IPMIRROR_PATH={dst} to see what is missing")
        return EXIT_PARTIAL
    return EXIT_OK


def repo_stat(ctx: Ctx) -> int:
    with ctx.open_repo() as repo:
        st = repo.store.stat()
        info = {"NumObjects": st.blocks, "BlockBytes": st.block_bytes, "RepoSize": st.disk_bytes,
                "Pins": st.pins, "RepoPath": str(repo.path), "Profile": repo.profile.name}
        if ctx.args.json:
            ctx.print(json.dumps(info))
        else:
            for k, v in info.items():
                ctx.print(f"{k + ':':<12} {v}")
    return 0


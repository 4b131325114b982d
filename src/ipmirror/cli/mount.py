"""``ipmirror mount`` and ``ipmirror unmount``: the read-only FUSE file system (mount/)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from types import ModuleType

from ipmirror.cli.common import Ctx
from ipmirror.errors import StoreError
from ipmirror.mount import control

MISSING = ("ipmirror mount needs the mfusepy package and libfuse 3: pip install 'ipmirror[mount]' "
           "and your system's fuse3 package (Debian: apt-get install fuse3)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("mount", help="mount /ipfs, /ipns and /mirrors read-only at MOUNTPOINT (FUSE)",
                       description="Mount the store read-only: MOUNTPOINT/ipfs/<cid>/… (any content), "
                       "MOUNTPOINT/ipns/<mirror, key or k51… name> (a symlink to the version published "
                       "now) and MOUNTPOINT/mirrors/<name>/<version> (every kept version). Runs in the "
                       "foreground until Ctrl-C, SIGTERM or 'ipmirror unmount'. A stale mount left by a "
                       "killed mount process is detached first.")
    p.add_argument("mountpoint", metavar="MOUNTPOINT")
    p.add_argument("--daemon", action="store_true",
                   help="detach once mounted; log lines go to $IPMIRROR_PATH/mount.log")
    p.add_argument("--allow-other", action="store_true",
                   help="let other users read the mount (non-root: needs user_allow_other in /etc/fuse.conf)")
    p.set_defaults(func=mount)

    u = sub.add_parser("unmount", help="unmount an 'ipmirror mount'")
    u.add_argument("mountpoint", metavar="MOUNTPOINT")
    u.add_argument("--lazy", action="store_true", help="detach now even if busy; finish when no longer used")
    u.set_defaults(func=unmount)


def _fs() -> ModuleType | None:
    try:
        from ipmirror.mount import fs
    except (ImportError, OSError):  # mfusepy missing, or it found no libfuse
        return None
    return fs


def unmount(ctx: Ctx) -> int:
    control.unmount(ctx.args.mountpoint, lazy=ctx.args.lazy)
    return 0


def mount(ctx: Ctx) -> int:
    a = ctx.args
    fs = _fs()
    if fs is None:
        print(f"Error: {MISSING}", file=ctx.err)
        return 1
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s ipmirror mount: %(message)s")
    mp = control.prepare_mountpoint(a.mountpoint)
    if not a.daemon:
        return _serve(ctx, fs, mp, None)
    ctx.open_repo().close()  # a bad repository fails here, in the foreground
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the mount process
        os.close(r)
        rc = 1
        try:
            os.setsid()
            _detach(ctx)
            rc = _serve(ctx, fs, mp, w)
        except BaseException as e:  # reported to the waiting parent, never a traceback
            with _quiet():
                os.write(w, f"{e}\n".encode())
        finally:
            os._exit(rc)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        line = f.readline().decode(errors="replace").strip()
    if line == "ok":
        ctx.print(f"mounted at {mp} (process {pid}); 'ipmirror unmount {mp}' to unmount")
        return 0
    os.waitpid(pid, 0)
    print(f"Error: cannot mount at {mp}: {line or 'the mount process failed'} "
          f"(see {ctx.repo_path / 'mount.log'})", file=ctx.err)
    return 1


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def _detach(ctx: Ctx) -> None:
    """The daemon's standard streams: nothing in, its log file out."""
    null = os.open(os.devnull, os.O_RDWR)
    logf = os.open(ctx.repo_path / "mount.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(logf, 2)
    os.close(null)
    os.close(logf)


def _serve(ctx: Ctx, fs: ModuleType, mp: str, ready_fd: int | None) -> int:
    from ipmirror.mount.source import RepoSource
    from ipmirror.mount.tree import Tree

    log = logging.getLogger("ipmirror.mount")

    def ready() -> None:
        log.info("mounted at %s (process %d)", mp, os.getpid())
        threading.Thread(target=control.tune_readahead, args=(mp,), daemon=True).start()
        if ready_fd is not None:
            os.write(ready_fd, b"ok\n")
            os.close(ready_fd)

    with ctx.open_repo() as repo:
        tree = Tree(RepoSource(repo.store, repo.mirror_db, repo.names))
        try:
            fs.run(tree, mp, allow_other=ctx.args.allow_other, on_ready=ready)
        except RuntimeError as e:  # libfuse said why on stderr
            raise StoreError(f"libfuse could not mount at {mp} (status {e})") from None
    log.info("unmounted %s", mp)
    return 0

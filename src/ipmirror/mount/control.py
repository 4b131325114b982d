"""Mount points from the outside: is one mounted, stale, ours; clean, unmount, tune read-ahead.

Usage::

    prepare_mountpoint(path)      # a stale mount (its process killed) is cleaned; a live one is an error
    unmount(path, lazy=False)     # fusermount3 -u [-z]
    tune_readahead(path)          # the mount's kernel read-ahead window (root only)

A FUSE mount whose process died answers every access with ENOTCONN ("Transport endpoint is
not connected") until it is unmounted; ``prepare_mountpoint`` detects that and detaches it with
``fusermount3 -u -z`` before mounting again. Nothing here imports libfuse.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass

from ipmirror.errors import Conflict, InvalidInput, StoreError

log = logging.getLogger("ipmirror.mount")
FSTYPE = "fuse.ipmirror"
READAHEAD_KB = 16 << 10  # 16 MiB: requests of up to 1 MiB (libfuse's max), many in flight


@dataclass(frozen=True, slots=True)
class MountInfo:
    mountpoint: str
    fstype: str
    device: str  # "major:minor"


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal ``\\NNN``."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1:i + 4]) == 3 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts() -> list[MountInfo]:
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        left, _, right = line.partition(" - ")
        a, b = left.split(), right.split()
        if len(a) >= 5 and b:
            out.append(MountInfo(_unescape(a[4]), b[0], a[2]))
    return out


def mount_of(path: str) -> MountInfo | None:
    """The mount whose mount point is ``path`` (the topmost), or None."""
    want = os.path.abspath(path)
    found = None
    for m in mounts():
        if m.mountpoint == want:
            found = m
    return found


def _fusermount() -> str:
    exe = shutil.which("fusermount3") or shutil.which("fusermount")
    if exe is None:
        raise StoreError("fusermount3 is not installed (Debian: apt-get install fuse3)")
    return exe


def unmount(path: str, *, lazy: bool = False) -> None:
    """Unmount a FUSE mount (``lazy``: detach now, finish when no longer busy)."""
    mp = os.path.abspath(path)
    info = mount_of(mp)
    if info is None:
        raise InvalidInput(f"{path} is not a mount point")
    if not info.fstype.startswith("fuse"):
        raise InvalidInput(f"{path} is a {info.fstype} mount, not a FUSE mount")
    p = subprocess.run([_fusermount(), "-u", *(["-z"] if lazy else []), mp], capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        why = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit status {p.returncode}"
        if "busy" in why and not lazy:
            why += " (close the files open there, or use --lazy)"
        raise StoreError(f"cannot unmount {path}: {why}")


def is_stale(path: str) -> bool:
    """True for a FUSE mount whose process is gone (``statvfs`` reaches the file system itself;
    ``stat`` may still be answered from the kernel's attribute cache)."""
    try:
        os.statvfs(path)
    except OSError as e:
        return e.errno == errno.ENOTCONN
    return False


def prepare_mountpoint(path: str) -> str:
    """The absolute mount point, ready to mount on: an existing directory that is not a live
    mount; a stale FUSE mount left by a killed process is detached first (one log line)."""
    mp = os.path.abspath(path)
    if is_stale(mp):
        log.warning("%s is a stale mount (its process is gone: transport endpoint is not connected); "
                    "detaching it", mp)
        unmount(mp, lazy=True)
        if is_stale(mp):
            raise StoreError(f"{path} is a stale mount that could not be detached")
    info = mount_of(mp)
    if info is not None:
        raise Conflict(f"{path} is already a mount point ({info.fstype}); unmount it first")
    if not os.path.isdir(mp):
        raise InvalidInput(f"{path} is not a directory" if os.path.exists(mp)
                           else f"{path} does not exist (create the directory first)")
    return mp


def tune_readahead(path: str, kb: int = READAHEAD_KB) -> bool:
    """Raise the kernel's read-ahead window for the mount at ``path`` (its bdi in sysfs; FUSE
    starts at 128 KiB). Needs root; False when it could not. Call it from a thread other than
    the file system's once mounted: the first request waits for the kernel's INIT to be answered,
    which sets the window too (to at most its default) and would undo an earlier change."""
    with contextlib.suppress(OSError):
        os.statvfs(path)
    info = mount_of(path)
    if info is None:
        return False
    with contextlib.suppress(OSError):
        with open(f"/sys/class/bdi/{info.device}/read_ahead_kb", "w") as f:
            f.write(str(kb))
        return True
    return False

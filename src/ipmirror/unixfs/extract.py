"""Writing a UnixFS DAG out to the file system (``ipmirror get``).

Usage::

    extract(store.get, cid, "out")          # "out" becomes the file, directory or symlink

Rules: ``dest`` must not exist; entry names that could escape the destination (``..``, ``.``,
empty, containing ``/`` or NUL) are refused; files stream (never whole in memory); mode and mtime
are restored when the DAG records them (directories after their contents); symlinks are created
as they are, never followed.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ipmirror.codec.cid import CID
from ipmirror.errors import InvalidInput
from ipmirror.unixfs import exporter as ex


def safe_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise InvalidInput(f"refusing to write an entry named {name!r}")
    return name


def extract(get: Callable[[CID], bytes], cid: CID, dest: str) -> None:
    node = ex.stat(get, cid)
    if node.is_dir:
        os.mkdir(dest, 0o700)
        for e in ex.list_dir(get, cid, node):
            extract(get, e.cid, os.path.join(dest, safe_name(e.name)))
    elif node.kind == "symlink":
        assert node.data is not None
        os.symlink(node.data.data or b"", os.fsencode(dest))
        return
    elif node.kind == "file":
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            for chunk in ex.read(get, cid):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    else:
        raise InvalidInput(f"{cid}: cannot write a {node.kind} node")
    mode = node.mode
    if mode is None:
        mode = 0o755 if node.is_dir else 0o644
    os.chmod(dest, mode & 0o7777)
    if node.mtime is not None:
        ns = node.mtime.seconds * 1_000_000_000 + node.mtime.nanos
        os.utime(dest, ns=(ns, ns))

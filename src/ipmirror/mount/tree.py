"""The mount's namespace, without FUSE: paths to entries, listings, link targets, open files.

Usage::

    tree = Tree(source)                    # a mount.source.Source
    e = tree.entry("/ipfs/bafy…/dists/stable/Release")     # kind, ino, size, mode, mtime
    tree.readlink("/ipns/debian")          # '../ipfs/bafy…' (the version published now)
    for name, ino, kind in tree.listdir("/mirrors/debian"): ...
    f = tree.open("/ipfs/bafy…/pool/x.deb"); f.read(0, 1 << 20)

Layout::

    /ipfs/<cid>[/…]         any content in the store (``/ipfs`` itself lists nothing)
    /ipns/<name>            a symlink to ``../ipfs/<cid>[/…]``: a mirror, local key or k51… name
    /mirrors/<name>/<n>     a symlink to ``../../ipfs/<cid>`` for every kept version ``n``

Rules kept here:

1. Everything below ``/ipfs/<cid>`` is immutable, so entries are cached by path (an LRU bound
   only; decoded directories by CID in the resolver's cache), and the file system may let the
   kernel keep pages and attributes for long.
2. Names change by symlink only: ``/ipns/<name>`` is resolved again on every ``readlink`` (the
   kernel reads a FUSE symlink on every path walk), so the next lookup sees a new version at
   once and atomically (one target), while a file opened before keeps reading the immutable
   ``/ipfs/`` content it opened.
3. Directories are read through the one resolver (``unixfs/resolve.py``) and its node cache;
   every block is verified against its CID before use (:meth:`Tree.block`): a damaged block is
   ``Corrupt``, a missing one ``BlockNotFound`` — never wrong bytes. The FUSE layer turns both
   into EIO; an unknown name or a CID the store lacks at the top of a path is ``PathNotFound``.
4. Inode numbers come from the CID's multihash (identical content shares one, and they are the
   same on every mount); the fixed directories are 1-4; names under /ipns and /mirrors hash
   their path.
5. Directories are listed by streaming (:func:`exporter.list_dir` reads HAMT shards as the
   listing reaches them), and no entry's block is read to list it.
6. A listing remembers the entries it can describe without their blocks: a raw-leaf file's size
   is its link's ``Tsize`` (the block's length), so ``find``/``ls -l`` after a listing read no
   file block; a block whose length then disagrees is an error when read (reader rule 4).
"""

from __future__ import annotations

import hashlib
import stat as S
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from ipmirror.codec.cid import CID, RAW, verify_multihash
from ipmirror.errors import Corrupt, InvalidInput, NotFound, PathNotFound
from ipmirror.mount.reader import FileReader
from ipmirror.mount.source import Source
from ipmirror.unixfs import exporter as ex
from ipmirror.unixfs.exporter import Node
from ipmirror.unixfs.resolve import NodeCache, Resolver

Kind = Literal["dir", "file", "symlink"]
ROOT_INO, IPFS_INO, IPNS_INO, MIRRORS_INO = 1, 2, 3, 4
FILE_MODE, DIR_MODE, LINK_MODE = 0o444, 0o555, 0o777  # when the content records none
_TYPE = {"dir": S.S_IFDIR, "file": S.S_IFREG, "symlink": S.S_IFLNK}
_MASK63 = (1 << 63) - 1


def cid_ino(cid: CID) -> int:
    """A stable inode number for content: 63 bits of its multihash digest (never 0-15)."""
    n = int.from_bytes(cid.multihash[-8:], "big") & _MASK63
    return n if n >= 16 else n + 16


def name_ino(path: str) -> int:
    n = int.from_bytes(hashlib.sha256(path.encode(errors="surrogateescape")).digest()[:8], "big") & _MASK63
    return n if n >= 16 else n + 16


@dataclass(frozen=True, slots=True)
class Entry:
    kind: Kind
    ino: int
    size: int = 0
    mode: int = 0  # permission bits
    mtime_ns: int = 0
    cid: CID | None = None  # content (None: the mount's own directories and links)
    node: Node | None = None  # the decoded root block of dag-pb content
    target: str = ""  # symlinks

    @property
    def st_mode(self) -> int:
        return _TYPE[self.kind] | self.mode


def _dir(ino: int) -> Entry:
    return Entry("dir", ino, mode=DIR_MODE)


def _link(path: str, target: str) -> Entry:
    return Entry("symlink", name_ino(path), len(target.encode(errors="surrogateescape")), LINK_MODE,
                 target=target)


class Tree:
    """The namespace over one :class:`Source` (see the module rules). Thread-safe."""

    def __init__(self, source: Source, *, max_entries: int = 1 << 17, max_dir_bytes: int = 64 << 20) -> None:
        self.source = source
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._max_entries = max_entries
        self._resolver = Resolver(self.block, NodeCache(max_dir_bytes))
        self._lock = threading.Lock()

    # -- blocks and nodes ------------------------------------------------------------------------
    def block(self, cid: CID) -> bytes:
        """A block, verified against its CID (rule 3)."""
        data = self.source.get(cid)
        if not verify_multihash(cid.multihash, data):
            raise Corrupt(f"block {cid} does not match its CID (damaged in the store)")
        return data

    def node(self, cid: CID) -> Node:
        """The decoded node at ``cid`` (directories and HAMT shards from the resolver's cache)."""
        return self._resolver.stat(cid)

    def _child(self, parent: CID, name: str) -> CID | None:
        return self._resolver.lookup(parent, name)

    def _content_entry(self, cid: CID) -> Entry:
        ino = cid_ino(cid)
        if cid.codec == RAW:
            return Entry("file", ino, self.source.block_size(cid), FILE_MODE, cid=cid)
        node = self.node(cid)
        mt = node.mtime
        mtime_ns = mt.seconds * 1_000_000_000 + mt.nanos if mt is not None else 0
        recorded = node.mode
        if node.is_dir:
            return Entry("dir", ino, 0, DIR_MODE if recorded is None else recorded & 0o7777, mtime_ns, cid,
                         node)
        if node.kind == "symlink":
            assert node.data is not None
            target = (node.data.data or b"").decode(errors="surrogateescape")
            return Entry("symlink", ino, node.size, LINK_MODE, mtime_ns, cid, node, target)
        if node.kind == "file":
            return Entry("file", ino, node.size, FILE_MODE if recorded is None else recorded & 0o7777,
                         mtime_ns, cid, node)
        raise PathNotFound(f"{cid} is a UnixFS {node.kind} node, which the mount does not show")

    # -- paths -----------------------------------------------------------------------------------
    def entry(self, path: str) -> Entry:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return _dir(ROOT_INO)
        top, rest = parts[0], parts[1:]
        if top == "ipfs":
            return self._content(rest) if rest else _dir(IPFS_INO)
        if top == "ipns":
            if not rest:
                return _dir(IPNS_INO)
            if len(rest) == 1:
                return _link(f"/ipns/{rest[0]}", self.readlink(path))
        elif top == "mirrors":
            if not rest:
                return _dir(MIRRORS_INO)
            if len(rest) == 1:
                self._versions(rest[0])
                return _dir(name_ino(f"/mirrors/{rest[0]}"))
            if len(rest) == 2:
                return _link(f"/mirrors/{rest[0]}/{rest[1]}", self.readlink(path))
        raise PathNotFound(f"no such entry {path}")

    def _content(self, parts: list[str]) -> Entry:
        key = "/".join(parts)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit
        if len(parts) == 1:
            try:
                cid = CID.parse(parts[0])
            except InvalidInput:
                raise PathNotFound(f"{parts[0]!r} is not a CID") from None
            try:
                self.source.block_size(cid)
            except NotFound:
                raise PathNotFound(f"{cid} is not in the store") from None
        else:
            parent = self._content(parts[:-1])
            if parent.kind != "dir" or parent.cid is None:
                raise PathNotFound(f"/ipfs/{'/'.join(parts[:-1])} is not a directory")
            child = self._child(parent.cid, parts[-1])
            if child is None:
                raise PathNotFound(f"no entry /ipfs/{key}")
            cid = child
        e = self._content_entry(cid)
        self._remember(key, e)
        return e

    def _remember(self, key: str, e: Entry) -> None:
        with self._lock:
            if key not in self._entries:
                self._entries[key] = e
                if len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)

    def _versions(self, mirror: str) -> dict[str, CID]:
        try:
            return {str(v.number): v.root for v in self.source.versions(mirror)}
        except NotFound:
            raise PathNotFound(f"no mirror named {mirror!r}") from None

    def readlink(self, path: str) -> str:
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == "ipns":
            try:
                value = self.source.resolve_name(parts[1])
            except (NotFound, InvalidInput) as e:
                raise PathNotFound(f"/ipns/{parts[1]}: {e}") from None
            return ".." + value.rstrip("/")
        if len(parts) == 3 and parts[0] == "mirrors":
            root = self._versions(parts[1]).get(parts[2])
            if root is None:
                raise PathNotFound(f"mirror {parts[1]!r} keeps no version {parts[2]!r}")
            return f"../../ipfs/{root}"
        link = self.entry(path)
        if link.kind != "symlink":
            raise InvalidInput(f"{path} is not a symlink")
        return link.target

    def listdir(self, path: str) -> Iterator[tuple[str, int, int, Entry | None]]:
        """``(name, ino, type, entry)`` of each entry, streamed: type is S_IFDIR/S_IFREG/S_IFLNK,
        or 0 when telling would need the entry's block; ``entry`` the whole entry when the
        listing alone describes it (rule 6), else None."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            yield from (("ipfs", IPFS_INO, S.S_IFDIR, None), ("ipns", IPNS_INO, S.S_IFDIR, None),
                        ("mirrors", MIRRORS_INO, S.S_IFDIR, None))
        elif parts == ["ipfs"]:
            return
        elif parts == ["ipns"]:
            for m in self.source.mirror_names():
                yield m, name_ino(f"/ipns/{m}"), S.S_IFLNK, None
        elif parts == ["mirrors"]:
            for m in self.source.mirror_names():
                yield m, name_ino(f"/mirrors/{m}"), S.S_IFDIR, None
        elif parts[0] == "mirrors" and len(parts) == 2:
            for n in self._versions(parts[1]):
                yield n, name_ino(f"/mirrors/{parts[1]}/{n}"), S.S_IFLNK, None
        else:
            e = self.entry(path)
            if e.kind != "dir" or e.cid is None or e.node is None:
                raise PathNotFound(f"{path} is not a directory")
            key = "/".join(parts[1:])
            for d in ex.list_dir(self.block, e.cid, e.node):
                if d.cid.codec == RAW:  # rule 6: known without reading it
                    e = Entry("file", cid_ino(d.cid), d.tsize, FILE_MODE, cid=d.cid)
                    self._remember(f"{key}/{d.name}", e)
                    yield d.name, e.ino, S.S_IFREG, e
                else:
                    yield d.name, cid_ino(d.cid), 0, None

    def open(self, path: str) -> FileReader:
        e = self.entry(path)
        if e.kind != "file" or e.cid is None:
            raise PathNotFound(f"{path} is not a file")
        return FileReader(self.block, e.cid, e.size, e.node)

    def usage(self) -> tuple[int, int]:
        return self.source.usage()

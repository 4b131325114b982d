"""What the mount reads from a repository: blocks, names, mirrors and their kept versions.

Usage::

    src = RepoSource(repo.store, repo.mirror_db, repo.names)   # composed by cli/mount.py
    src.get(cid); src.resolve_name("debian"); src.versions("debian")

:class:`Source` is the narrow protocol the file system sees (tests may pass their own);
:class:`RepoSource` adapts a repository's store, mirror database and IPNS names to it. Every
call reads the current state (the record file, the mirror database), so a version published by
a ``mirror sync`` in another process is seen by the next lookup.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Protocol

from ipmirror.codec.cid import CID
from ipmirror.errors import InvalidInput, NotFound, UnsupportedFormat
from ipmirror.mirror.db import MirrorDB
from ipmirror.naming.names import Names


@dataclass(frozen=True, slots=True)
class KeptVersion:
    number: int
    root: CID
    time: float


class _StoreStat(Protocol):
    @property
    def blocks(self) -> int: ...

    @property
    def block_bytes(self) -> int: ...


class BlockReader(Protocol):
    """The part of a block store the mount uses."""

    def get(self, cid: CID) -> bytes: ...

    def size(self, cid: CID) -> int: ...

    def stat(self) -> _StoreStat: ...


class Source(Protocol):
    def get(self, cid: CID) -> bytes:
        """A block's bytes (not yet verified: the mount verifies them), or BlockNotFound."""
        ...

    def block_size(self, cid: CID) -> int:
        """A block's length without reading it, or BlockNotFound."""
        ...

    def resolve_name(self, name: str) -> str:
        """The content path (``/ipfs/CID[/…]``) a mirror, local key or IPNS name points at now;
        NotFound or InvalidInput if it names nothing."""
        ...

    def mirror_names(self) -> list[str]: ...

    def versions(self, mirror: str) -> list[KeptVersion]:
        """The complete versions still pinned, oldest first; NotFound for an unknown mirror."""
        ...

    def usage(self) -> tuple[int, int]:
        """``(blocks, bytes)`` held by the store (for ``statfs``)."""
        ...


class RepoSource:
    """A repository as the mount's :class:`Source`."""

    def __init__(self, store: BlockReader, mirror_db: MirrorDB, names: Names) -> None:
        self._store = store
        self._db = mirror_db
        self._names = names  # one for the mount's life: it remembers verified records

    def get(self, cid: CID) -> bytes:
        return self._store.get(cid)

    def block_size(self, cid: CID) -> int:
        return self._store.size(cid)

    def _latest(self, name: str) -> str | None:
        m = self._db.get_mirror(name)
        if m is None:
            return None
        vs = [v for v in self._db.versions(m.id) if v.complete]
        return f"/ipfs/{vs[-1].root}" if vs else None

    def resolve_name(self, name: str) -> str:
        path = self._names.path_of(name, lookup=self._latest)
        if not path.startswith("/ipfs/"):
            raise NotFound(f"/ipns/{name} points at {path}, which is not an /ipfs/ path", name)
        return path

    def mirror_names(self) -> list[str]:
        return sorted(m.name for m in self._db.mirrors())

    def versions(self, mirror: str) -> list[KeptVersion]:
        m = self._db.get_mirror(mirror)
        if m is None:
            raise NotFound(f"no mirror named {mirror!r}", mirror)
        out = []
        for v in self._db.versions(m.id):
            if v.complete and v.pinned:
                with contextlib.suppress(InvalidInput, UnsupportedFormat):
                    out.append(KeptVersion(v.number, CID.parse(v.root), v.time))
        return out

    def usage(self) -> tuple[int, int]:
        st = self._store.stat()
        return st.blocks, st.block_bytes

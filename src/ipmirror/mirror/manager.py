"""Mirrors of local directories: define, sync, list, log, diff, retention, removal.

Usage::

    mirrors = Mirrors(db, store, publish=lambda m, root: ...)
    mirrors.add("debian", "/srv/debian", profile="unixfs-v1-2025")
    v = mirrors.sync("debian")
    for ch in mirrors.diff("debian"): ...

Publishing is passed in (a callback): this layer knows nothing of keys or IPNS. The block store
is any ``store.base.Store`` (node.py picks the backend); the mirror index is this layer's own
database (``mirror/db.py``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator

from ipmirror.codec.cid import CID
from ipmirror.errors import Conflict, InvalidInput, NotFound
from ipmirror.mirror.db import Mirror, MirrorDB, Version
from ipmirror.mirror.diff import Change, diff
from ipmirror.mirror.sync import PIN_OWNER, Progress, check_nocopy, sync
from ipmirror.store.base import Store
from ipmirror.unixfs.importer import ImportEvent
from ipmirror.unixfs.profile import PRESETS

NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
Publish = Callable[[Mirror, CID], None]


def check_mirror_name(name: str) -> str:
    """Return ``name`` if it is a valid mirror name, else raise InvalidInput.

    Rule: 1-64 of ``A-Z a-z 0-9 - _``. Stricter than key names (``naming.keystore.check_key_name``)
    on purpose: a mirror's key is named after it by default, and a mirror name is served as
    ``/ipns/<name>``, where a dot would make it look like a DNSLink domain."""
    if not NAME_RE.fullmatch(name):
        raise InvalidInput(f"invalid mirror name {name!r}: use letters, digits, '-' and '_' (no dots)")
    return name


class Mirrors:
    def __init__(self, db: MirrorDB, store: Store, *, publish: Publish | None = None,
                 batch_bytes: int | None = None) -> None:
        self.db = db
        self.store = store
        self._publish = publish
        self._batch = batch_bytes

    def get(self, name: str) -> Mirror:
        m = self.db.get_mirror(name)
        if m is None:
            raise NotFound(f"no mirror named {name!r}")
        return m

    def all(self) -> list[Mirror]:
        return self.db.mirrors()

    def add(self, name: str, directory: str, *, profile: str, hidden: bool = False,
            exclude: list[str] | None = None, nocopy: bool = False, key: str = "",
            keep: int = 0) -> Mirror:
        check_mirror_name(name)
        if self.db.get_mirror(name) is not None:
            raise Conflict(f"a mirror named {name!r} exists already")
        if profile not in PRESETS:
            raise InvalidInput(f"unknown profile {profile!r} (known: {', '.join(PRESETS)})")
        if nocopy and not PRESETS[profile].raw_leaves:
            raise InvalidInput(f"--nocopy needs raw leaves; profile {profile} has none "
                               "(use unixfs-v1-2025)")
        if nocopy:
            check_nocopy(self.store, name)
        d = os.path.abspath(directory)
        if not os.path.isdir(d):
            raise InvalidInput(f"{directory}: not a directory")
        if keep < 0:
            raise InvalidInput("--keep must be 0 (keep all) or more")
        m = Mirror(name, self.db.next_id(), d, profile, hidden, list(exclude or []), nocopy,
                   key or name, keep, time.time())
        self.db.put_mirror(m)
        return m

    def sync(self, name: str, *, checksum: bool = False,
             on_event: Callable[[ImportEvent], None] | None = None,
             on_warning: Callable[[str], None] | None = None, progress: Progress | None = None) -> Version:
        m = self.get(name)
        v = sync(self.db, self.store, m, checksum=checksum, batch_bytes=self._batch, on_event=on_event,
                 on_warning=on_warning, progress=progress)
        self._retain(m)
        if self._publish is not None:
            self._publish(m, CID.parse(v.root))
        return v

    def log(self, name: str) -> list[Version]:
        return self.db.versions(self.get(name).id)

    def version(self, name: str, number: int | None) -> Version:
        vs = self.log(name)
        if not vs:
            raise NotFound(f"mirror {name!r} has no versions yet (run 'ipmirror mirror sync {name}')")
        if number is None:
            return vs[-1]
        for v in vs:
            if v.number == number:
                return v
        raise NotFound(f"mirror {name!r} has no version {number}")

    def diff(self, name: str, v1: int | None = None, v2: int | None = None) -> Iterator[Change]:
        vs = self.log(name)
        if v1 is None and v2 is None:
            if len(vs) < 2:
                raise NotFound(f"mirror {name!r} has fewer than two versions")
            a, b = vs[-2], vs[-1]
        else:
            a = self.version(name, v1)
            b = self.version(name, v2)
        return diff(self.store.get, CID.parse(a.root), CID.parse(b.root))

    def set_keep(self, name: str, keep: int) -> None:
        if keep < 0:
            raise InvalidInput("--keep must be 0 (keep all) or more")
        m = self.get(name)
        m.keep = keep
        self.db.put_mirror(m)
        self._retain(m)

    def _retain(self, m: Mirror) -> None:
        """Keep the newest ``keep`` versions pinned; unpin older ones (their blocks become
        collectable unless a kept version shares them)."""
        if m.keep <= 0:
            return
        vs = self.db.versions(m.id)
        kept = {v.root for v in vs[-m.keep:]}
        for v in vs[:-m.keep]:
            if v.pinned:
                if v.root not in kept and not self._root_used_elsewhere(m, v.root):
                    self.store.pin_rm(CID.parse(v.root), owner=PIN_OWNER)
                v.pinned = False
                self.db.put_version(m.id, v)

    def _root_used_elsewhere(self, m: Mirror, root: str) -> bool:
        for other in self.db.mirrors():
            if other.id == m.id:
                continue
            if any(v.root == root and v.pinned for v in self.db.versions(other.id)):
                return True
        return False

    def rm(self, name: str) -> Mirror:
        m = self.get(name)
        for v in self.db.versions(m.id):
            if v.pinned and not self._root_used_elsewhere(m, v.root):
                self.store.pin_rm(CID.parse(v.root), owner=PIN_OWNER)
        self.db.delete_mirror(m)
        return m

"""Mirrors of local directories: define, sync, list, log, diff, retention, removal.

Usage::

    mirrors = Mirrors(db, store, publish=lambda m, root: ...)
    mirrors.add("debian", "/srv/debian", profile="unixfs-v1-2025")
    r = mirrors.sync("debian")            # SyncResult: r.new, r.number, r.root, r.skipped_paths
    for ch in mirrors.diff("debian"): ...

Publishing is passed in (a callback): this layer knows nothing of keys or IPNS. The block store
is any ``store.base.Store`` (node.py picks the backend); the mirror index is this layer's own
database (``mirror/db.py``).

Rules kept here (the safety rules of a sync are in ``sync.py``, ``checks.py`` and ``partial.py``):

1. One sync per mirror at a time (``lock.py``): a second one waits (``on_wait`` is told) and then
   reads the mirror record afresh, so it finds little or nothing to do; ``wait=False`` raises
   ``Busy``. ``rm`` takes the same lock and does not wait.
2. A sync that changes nothing records no version (``SyncResult.new`` False); the mirror record
   notes when the source was last checked (``Mirror.checked``).
3. Publishing follows every completed sync whose root is not the one published last
   (``Mirror.published``), so a no-op sync also repairs a publish that a crash cut short.
4. Retention (``retention.py``) runs after every completed sync and on ``set_keep``; it unpins,
   never deletes version records.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ipmirror.codec.cid import CID
from ipmirror.errors import Conflict, InvalidInput, NotFound
from ipmirror.mirror.checks import DEFAULT_MAX_DELETE, Limits
from ipmirror.mirror.db import Mirror, MirrorDB, Version
from ipmirror.mirror.diff import Change, diff
from ipmirror.mirror.lock import mirror_lock
from ipmirror.mirror.retention import DEFAULT_KEEP, DEFAULT_KEEP_DAYS, expired
from ipmirror.mirror.sync import PIN_OWNER, Progress, SyncResult, check_nocopy, sync
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
        self.locks_dir: Path = db.path / "locks"

    def get(self, name: str) -> Mirror:
        m = self.db.get_mirror(name)
        if m is None:
            raise NotFound(f"no mirror named {name!r}")
        return m

    def all(self) -> list[Mirror]:
        return self.db.mirrors()

    def add(self, name: str, directory: str, *, profile: str, hidden: bool = False,
            exclude: list[str] | None = None, nocopy: bool = False, key: str = "",
            keep: int = DEFAULT_KEEP, keep_days: float = DEFAULT_KEEP_DAYS,
            own_key: bool | None = None) -> Mirror:
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
        _check_keep(keep, keep_days)
        m = Mirror(name, self.db.next_id(), d, profile, hidden, list(exclude or []), nocopy,
                   key or name, keep, time.time(), keep_days=keep_days, own_key=own_key)
        self.db.put_mirror(m)
        return m

    def sync(self, name: str, *, checksum: bool = False,
             on_event: Callable[[ImportEvent], None] | None = None,
             on_warning: Callable[[str], None] | None = None, progress: Progress | None = None,
             force: bool = False, max_delete: float = DEFAULT_MAX_DELETE, strict: bool = False,
             wait: bool = True, on_wait: Callable[[str], None] | None = None) -> SyncResult:
        """Sync mirror ``name`` (see the module rules). Raises ``Refused`` when a source check
        fails (``force`` skips the checks, ``max_delete`` is a percentage), ``Busy`` when another
        sync runs and not ``wait``; with ``strict`` an unreadable file fails the sync (else it is
        kept or left out and listed in ``skipped_paths``)."""
        limits = Limits(force=force, max_delete=max_delete)
        self.get(name)  # NotFound before any lock file is made
        with mirror_lock(self.locks_dir, name, wait=wait, on_wait=on_wait):
            m = self.get(name)  # afresh: a sync we waited for has changed it
            r = sync(self.db, self.store, m, checksum=checksum, batch_bytes=self._batch,
                     on_event=on_event, on_warning=on_warning, progress=progress, limits=limits,
                     strict=strict)
            self._retain(m)
            if self._publish is not None and m.published != r.root:
                self._publish(m, CID.parse(r.root))
                m.published = r.root
                self.db.put_mirror(m)
        return r

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

    def set_keep(self, name: str, keep: int, keep_days: float | None = None) -> Mirror:
        """Set the retention policy (``keep_days`` None: unchanged) and apply it now."""
        m = self.get(name)
        days = m.keep_days if keep_days is None else keep_days
        _check_keep(keep, days)
        m.keep, m.keep_days = keep, days
        self.db.put_mirror(m)
        self._retain(m)
        return m

    def _retain(self, m: Mirror, now: float | None = None) -> None:
        """Unpin the versions the policy no longer keeps (their blocks become collectable unless a
        kept version, another mirror or the user pins the same root)."""
        vs = self.db.versions(m.id)
        gone = expired(vs, keep=m.keep, keep_days=m.keep_days, now=time.time() if now is None else now)
        going = {v.number for v in gone}
        kept = {v.root for v in vs if v.pinned and v.number not in going}
        for v in gone:
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
        """Remove the mirror and unpin its versions (not its key: ``register.remove_mirror``);
        ``Busy`` while a sync of it runs."""
        self.get(name)
        with mirror_lock(self.locks_dir, name, wait=False, what="remove"):
            m = self.get(name)
            for v in self.db.versions(m.id):
                if v.pinned and not self._root_used_elsewhere(m, v.root):
                    self.store.pin_rm(CID.parse(v.root), owner=PIN_OWNER)
            self.db.delete_mirror(m)
        return m


def _check_keep(keep: int, keep_days: float) -> None:
    if keep < 0:
        raise InvalidInput("--keep must be 0 (keep all) or more")
    if keep_days < 0:
        raise InvalidInput("--keep-days must be 0 or more")

"""Adding and removing a mirror together with the key it publishes under: the ``mirror add`` and
``mirror rm`` use cases.

Usage::

    m = add_mirror(repo.mirrors(), repo.keystore, "debian", "/srv/debian", profile="unixfs-v1-2025")
    m, note = remove_mirror(repo.mirrors(), repo.keystore, repo.names, "debian")

Rules kept here:

- The key is a new one named after the mirror, or, with ``key``, the existing key of that name
  (made if missing). A key of the mirror's own name that exists already is an error unless named
  explicitly, so two mirrors never publish under one name by accident.
- All or nothing: a key made here is removed again if the mirror cannot be added.
- ``rm`` removes the mirror's key and its IPNS record too (unless ``keep_key``), so the name can be
  added again — but only a key made for the mirror (``Mirror.own_key``; for mirrors recorded
  before that field, a key named after the mirror), never one another mirror still uses, and
  never the node's ``self`` key. The others stay, and the note returned says so.

This layer knows nothing of the key store's type: ``keys`` is anything with the four methods of
:class:`Keys` (``naming.keystore.Keystore`` in the node).
"""

from __future__ import annotations

from typing import Protocol

from ipmirror.codec.peerid import PeerID
from ipmirror.errors import Conflict, NotFound
from ipmirror.mirror.db import Mirror
from ipmirror.mirror.manager import Mirrors, check_mirror_name
from ipmirror.mirror.retention import DEFAULT_KEEP, DEFAULT_KEEP_DAYS


class Keys(Protocol):
    def info(self, name: str) -> object:
        """The key named ``name``; NotFound if there is none."""
        ...

    def names(self) -> list[str]: ...

    def gen(self, name: str) -> object:
        """Make a new key named ``name``."""
        ...

    def rm(self, name: str) -> PeerID | None:
        """Delete key ``name``; its ID (None if unknown)."""
        ...


class Records(Protocol):
    def drop_record(self, name: PeerID) -> bool:
        """Forget the IPNS record held for ``name``."""
        ...


def add_mirror(mirrors: Mirrors, keys: Keys, name: str, directory: str, *, profile: str,
               hidden: bool = False, exclude: list[str] | None = None, nocopy: bool = False,
               key: str = "", keep: int = DEFAULT_KEEP, keep_days: float = DEFAULT_KEEP_DAYS) -> Mirror:
    """Register a mirror of ``directory`` and give it a key (see the module rules)."""
    check_mirror_name(name)
    if mirrors.db.get_mirror(name) is not None:
        raise Conflict(f"a mirror named {name!r} exists already")
    created = False
    if key:
        try:
            keys.info(key)
        except NotFound:
            keys.gen(key)
            created = True
    else:
        if name in keys.names():
            raise Conflict(f"a key named {name!r} exists already; pass --key {name} to publish "
                           "this mirror under it")
        keys.gen(name)
        created = True
    try:
        return mirrors.add(name, directory, profile=profile, hidden=hidden, exclude=exclude,
                           nocopy=nocopy, key=key or name, keep=keep, keep_days=keep_days,
                           own_key=created)
    except BaseException:
        if created:
            keys.rm(key or name)
        raise


def remove_mirror(mirrors: Mirrors, keys: Keys, records: Records, name: str, *,
                  keep_key: bool = False) -> tuple[Mirror, str]:
    """Remove mirror ``name``, and its key and record unless ``keep_key`` (see the module rules);
    returns the mirror and a note on its key for the user."""
    m = mirrors.rm(name)
    if keep_key:
        return m, f"kept key {m.key}"
    own = m.own_key if m.own_key is not None else m.key == m.name
    users = [o.name for o in mirrors.all() if o.key == m.key]
    if not own or m.key == "self" or users:
        why = f"mirror {users[0]} uses it" if users else "it was not made for this mirror"
        return m, f"kept key {m.key} ({why})"
    try:
        pid = keys.rm(m.key)
    except NotFound:
        return m, f"key {m.key} was gone already"
    if pid is not None:
        records.drop_record(pid)
    return m, f"removed key {m.key} and its IPNS record"

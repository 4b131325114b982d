"""Adding a mirror together with the key it publishes under: the ``mirror add`` use case.

Usage::

    m = add_mirror(repo.mirrors(), repo.keystore, "debian", "/srv/debian", profile="unixfs-v1-2025")

Rules kept here:

- The key is a new one named after the mirror, or, with ``key``, the existing key of that name
  (made if missing). A key of the mirror's own name that exists already is an error unless named
  explicitly, so two mirrors never publish under one name by accident.
- All or nothing: a key made here is removed again if the mirror cannot be added.

This layer knows nothing of the key store's type: ``keys`` is anything with the four methods of
:class:`Keys` (``naming.keystore.Keystore`` in the node).
"""

from __future__ import annotations

from typing import Protocol

from ipmirror.errors import Conflict, NotFound
from ipmirror.mirror.db import Mirror
from ipmirror.mirror.manager import Mirrors, check_mirror_name


class Keys(Protocol):
    def info(self, name: str) -> object:
        """The key named ``name``; NotFound if there is none."""
        ...

    def names(self) -> list[str]: ...

    def gen(self, name: str) -> object:
        """Make a new key named ``name``."""
        ...

    def rm(self, name: str) -> object: ...


def add_mirror(mirrors: Mirrors, keys: Keys, name: str, directory: str, *, profile: str,
               hidden: bool = False, exclude: list[str] | None = None, nocopy: bool = False,
               key: str = "", keep: int = 0) -> Mirror:
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
                           nocopy=nocopy, key=key or name, keep=keep)
    except BaseException:
        if created:
            keys.rm(key or name)
        raise

"""Every block store backend, by name, for suites that must hold on each (the store contract,
mirror sync).

Usage::

    @pytest.mark.parametrize("backend", BACKENDS)
    def test_x(tmp_path: Path, backend: str) -> None:
        store = open_store(backend, tmp_path)
"""

from __future__ import annotations

from pathlib import Path

from ipmirror.store.base import Store
from ipmirror.store.lmdb_store import LmdbStore
from ipmirror.store.memory import MemoryStore

BACKENDS = ["lmdb", "memory"]


def open_store(backend: str, root: Path) -> Store:
    """A new, empty store of ``backend`` (an LMDB one in ``root/blocks``)."""
    if backend == "lmdb":
        return LmdbStore.open(root / "blocks")
    if backend == "memory":
        return MemoryStore()
    raise ValueError(f"unknown block store backend {backend!r}")

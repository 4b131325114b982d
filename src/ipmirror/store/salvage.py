"""Salvage of damaged LMDB environments (``ipmirror repo recover --to NEWPATH``): copy every record
that can still be read into a fresh environment, and say what could not be.

Usage (node.py's ``recover`` runs it for the block store and the mirror state)::

    rep = salvage_env(src_dir, dst_env, names=[b"blocks", b"pins", ...], check={b"blocks": ok})
    rep.copied, rep.dropped, rep.unreadable        # per database: records copied / refused; lost ranges

How: a damaged page (``MDB_CORRUPTED``, ``MDB_PAGE_NOTFOUND``, a checksum-less bit flip in a branch
or leaf page) stops a cursor where it lies. Each database is scanned forwards until the first
error and then backwards from its last key until the same point, so everything outside the
damaged pages is copied. ``check`` may refuse a record (a block whose bytes do not match its hash
is not copied: a damaged block would then be served in the new repository as a present one).
The source is opened read-only without its lock file: run this with no other ipmirror process
using the repository.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lmdb

from ipmirror.errors import StoreError

Check = Callable[[bytes, bytes], bool]
PAGE = 4096  # records written per write transaction of the copy


@dataclass
class SalvageReport:
    copied: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)  # refused by ``check``
    unreadable: list[str] = field(default_factory=list)  # "db: between key A and key B (error)"


def open_source(path: Path, max_dbs: int = 16) -> Any:
    try:
        return lmdb.open(str(path), readonly=True, lock=False, max_dbs=max_dbs, subdir=True,
                         create=False, readahead=False)
    except lmdb.Error as e:
        raise StoreError(f"cannot open {path} at all ({e}); nothing in it can be salvaged") from None


def _scan(env: Any, db: Any, forward: bool, stop: bytes | None,
          put: Callable[[bytes, bytes], None]) -> tuple[bytes | None, str | None]:
    """Copy records from one end until an error or ``stop`` (exclusive); the last key read and
    the error text (None: reached the end or ``stop``)."""
    last: bytes | None = None
    try:
        with env.begin(db=db) as txn, txn.cursor() as cur:
            ok = cur.first() if forward else cur.last()
            while ok:
                k = bytes(cur.key())
                if stop is not None and (k >= stop if forward else k <= stop):
                    return last, None
                put(k, bytes(cur.value()))
                last = k
                ok = cur.next() if forward else cur.prev()
    except lmdb.Error as e:
        return last, str(e)
    return last, None


class _Copier:
    """Records into one database of the destination, a write transaction per ``PAGE``."""

    def __init__(self, dst: Any, db: Any, accept: Check | None) -> None:
        self.dst, self.db, self.accept = dst, db, accept
        self.pending: list[tuple[bytes, bytes]] = []
        self.copied = self.dropped = 0

    def put(self, k: bytes, v: bytes) -> None:
        if self.accept is not None and not self.accept(k, v):
            self.dropped += 1
            return
        self.pending.append((k, v))
        self.copied += 1
        if len(self.pending) >= PAGE:
            self.flush()

    def flush(self) -> None:
        with self.dst.begin(write=True, db=self.db) as t:
            for k, v in self.pending:
                t.put(k, v)
        self.pending.clear()


def salvage_env(src_dir: Path, dst: Any, names: Sequence[bytes], *,
                check: dict[bytes, Check] | None = None) -> SalvageReport:
    """Copy the named databases of the environment at ``src_dir`` into the open environment
    ``dst`` (see the module docstring)."""
    rep = SalvageReport()
    src = open_source(src_dir)
    try:
        for name in names:
            label = name.decode()
            try:
                sdb = src.open_db(name, create=False)
            except lmdb.NotFoundError:
                continue  # never created in the source
            except lmdb.Error as e:
                rep.unreadable.append(f"{label}: the whole database ({e})")
                continue
            out = _Copier(dst, dst.open_db(name), (check or {}).get(name))
            last, err = _scan(src, sdb, True, None, out.put)
            if err is not None:
                first_back, err2 = _scan(src, sdb, False, last, out.put)
                after = last.hex()[:24] + "…" if last is not None else "the start"
                before = first_back.hex()[:24] + "…" if first_back is not None else "the end"
                rep.unreadable.append(f"{label}: the records between key {after} and key {before} ({err})"
                                      + (f"; reading backwards: {err2}" if err2 else ""))
            out.flush()
            rep.copied[label] = out.copied
            if out.dropped:
                rep.dropped[label] = out.dropped
    finally:
        src.close()
    return rep

"""Integrity on read: a read-only view of a block store that checks every block it hands out
against its hash (as boxo's validating blockstore, Kubo's ``HashOnRead``).

Usage (node.py composes it; readers never see the raw store)::

    blocks = VerifiedBlocks(store, verify=True)      # config "hash_on_read" (default true)
    blocks.get(cid)        # bytes, BlockNotFound, or Corrupt naming the CID
    blocks.get_stored(cid) # the same check; None for no-copy references and missing blocks
    blocks.status()        # {"hash_on_read": True, "damaged_reads": 0, "damaged": []}

Rules:

1. A block whose bytes the store holds itself is re-hashed on every read (sha2-256 runs at
   ~2 GB/s a core); a mismatch raises :class:`~ipmirror.errors.Corrupt` and the bytes are never
   returned. Nothing caches "this block was fine": bit rot can happen between two reads.
2. Identity CIDs (their bytes are the CID) and no-copy references (``store/filestore.py`` re-hashes
   the file's bytes on every read already) are not hashed again.
3. Every damaged read is counted (``damaged_reads``, the last CIDs in ``damaged``: what a status
   page shows) and logged once per CID per process on the ``ipmirror.integrity`` logger (a block
   asked for a thousand times a second must not flood the log).
4. ``verify=False`` (operators who trust their disks) hands the store's bytes through unchecked.
5. A block of a hash function ipmirror cannot compute (none can be stored today: every writer
   checks or computes sha2-256) is handed out as it is.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Protocol

from ipmirror.codec.cid import CID, verify_multihash
from ipmirror.errors import Corrupt, UnsupportedFormat

log = logging.getLogger("ipmirror.integrity")
KEEP_DAMAGED = 32  # the last damaged CIDs kept for status


class ReadableStore(Protocol):
    def has(self, cid: CID) -> bool: ...

    def get(self, cid: CID) -> bytes: ...

    def get_stored(self, cid: CID) -> bytes | None: ...

    def size(self, cid: CID) -> int: ...


def damaged(cid: CID) -> Corrupt:
    """The one error (and message) for a block whose stored bytes do not match its hash."""
    return Corrupt(f"block {cid} is damaged: its stored bytes do not match its hash "
                   "(run 'ipmirror repo verify')")


class VerifiedBlocks:
    """The blocks of ``store`` as readers may see them (see the module rules)."""

    def __init__(self, store: ReadableStore, *, verify: bool = True) -> None:
        self._store = store
        self.verify = verify
        self.damaged_reads = 0
        self._damaged: deque[str] = deque(maxlen=KEEP_DAMAGED)
        self._logged: set[bytes] = set()
        self._lock = threading.Lock()

    def has(self, cid: CID) -> bool:
        return self._store.has(cid)

    def size(self, cid: CID) -> int:
        return self._store.size(cid)

    def get(self, cid: CID) -> bytes:
        if not self.verify or cid.is_identity:
            return self._store.get(cid)
        data = self._store.get_stored(cid)
        if data is None:  # a no-copy reference (re-hashed by the store) or missing
            return self._store.get(cid)
        self._check(cid, data)
        return data

    def get_stored(self, cid: CID) -> bytes | None:
        data = self._store.get_stored(cid)
        if data is not None and self.verify and not cid.is_identity:
            self._check(cid, data)
        return data

    def _check(self, cid: CID, data: bytes) -> None:
        try:
            ok = verify_multihash(cid.multihash, data)
        except UnsupportedFormat:
            return
        if ok:
            return
        with self._lock:
            self.damaged_reads += 1
            text = str(cid)
            if text not in self._damaged:
                self._damaged.append(text)
            first = cid.multihash not in self._logged
            if first and len(self._logged) < 65536:
                self._logged.add(cid.multihash)
        if first:
            log.error("damaged block %s: its stored bytes do not match its hash; not served "
                      "(run 'ipmirror repo verify --repair')", cid)
        raise damaged(cid)

    def status(self) -> dict[str, Any]:
        """Cheap, never blocks: what a status page shows."""
        with self._lock:
            return {"hash_on_read": self.verify, "damaged_reads": self.damaged_reads,
                    "damaged": list(self._damaged)}

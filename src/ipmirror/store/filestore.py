"""No-copy references: a raw block's bytes live in a file the store does not own.

A reference is ``(path, offset, length)``; reading it re-hashes the bytes (sha2-256 runs at
~2 GB/s here, so this is cheap), and a file that changed behind the store's back makes the block
*stale*: reported missing, never served wrong. Only raw leaves are referenced (their bytes are the
file's bytes); everything else is copied into the store.
"""

from __future__ import annotations

import os
import struct

from ipmirror.codec.cid import CID, verify_multihash
from ipmirror.errors import BlockNotFound

_HEAD = struct.Struct(">QI")


class StaleReference(BlockNotFound):
    """A no-copy block whose file no longer holds its bytes."""

    def __init__(self, cid: object, path: str, why: str) -> None:
        BlockNotFound.__init__(self, cid)
        self.message = f"no-copy block {cid} is stale: {path} {why}"
        self.path = path


def pack_ref(path: bytes, offset: int, length: int) -> bytes:
    return _HEAD.pack(offset, length) + path


def unpack_ref(raw: bytes) -> tuple[bytes, int, int]:
    offset, length = _HEAD.unpack_from(raw)
    return raw[_HEAD.size:], offset, length


def read_ref(cid: CID, raw: bytes) -> bytes:
    """The referenced bytes, verified against ``cid``; StaleReference otherwise."""
    path, offset, length = unpack_ref(raw)
    spath = os.fsdecode(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise StaleReference(cid, spath, f"cannot be opened ({e.strerror})") from None
    try:
        data = os.pread(fd, length, offset)
    except OSError as e:
        raise StaleReference(cid, spath, f"cannot be read ({e.strerror})") from None
    finally:
        os.close(fd)
    if len(data) != length or not verify_multihash(cid.multihash, data):
        raise StaleReference(cid, spath, "has changed")
    return data

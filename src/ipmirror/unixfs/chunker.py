"""Chunkers: split a byte stream into leaf chunks.

- ``size-N``: fixed N-byte chunks, the last one shorter (Kubo's and the JS importer's default).
- ``buzhash``: content-defined chunks (boundaries follow content, so an insertion only changes
  the chunks around it; consecutive versions of a package tarball then share most leaves).
  Window 32 bytes, a cut where the low 17 bits of the rolling hash are zero, chunks between
  128 KiB and 512 KiB (Kubo's parameters). The byte table is ipmirror's own (derived from
  SHA-256), so CIDs differ from Kubo's buzhash: no reference implementation exists here to check
  against, and we promise only determinism and correct round-trips.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Final

from ipmirror.unixfs.profile import Chunker

BUZ_MIN: Final = 128 * 1024
BUZ_MAX: Final = 512 * 1024
BUZ_MASK: Final = (1 << 17) - 1
BUZ_WINDOW: Final = 32


def _table() -> list[int]:
    return [int.from_bytes(hashlib.sha256(b"ipmirror-buzhash-%d" % i).digest()[:4], "big")
            for i in range(256)]


BUZ_TABLE: Final = _table()


def _rotl(x: int, n: int) -> int:
    n &= 31
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def read_fixed(fd: int, size: int) -> Iterator[bytes]:
    """Fixed-size chunks read straight from a file descriptor."""
    read = os.read
    while True:
        buf = read(fd, size)
        if not buf:
            return
        while len(buf) < size:  # short reads (pipes, network file systems)
            more = read(fd, size - len(buf))
            if not more:
                break
            buf += more
        yield buf
        if len(buf) < size:
            return


def buzhash_cuts(data: bytes) -> list[int]:
    """Cut offsets (chunk ends) for ``data`` taken as a whole stream."""
    n = len(data)
    cuts: list[int] = []
    start = 0
    table = BUZ_TABLE
    out_rot = [_rotl(t, BUZ_WINDOW) for t in table]
    while start < n:
        if n - start <= BUZ_MIN:
            cuts.append(n)
            break
        end = min(start + BUZ_MAX, n)
        # prime the window ending just before the minimum size
        i = start + BUZ_MIN - BUZ_WINDOW
        h = 0
        for b in data[i:i + BUZ_WINDOW]:
            h = _rotl(h, 1) ^ table[b]
        i += BUZ_WINDOW
        cut = end
        while i < end:
            h = _rotl(h, 1) ^ out_rot[data[i - BUZ_WINDOW]] ^ table[data[i]]
            i += 1
            if not h & BUZ_MASK:
                cut = i
                break
        cuts.append(cut)
        start = cut
    return cuts


def read_buzhash(fd: int) -> Iterator[bytes]:
    """Content-defined chunks; reads ahead at most ``BUZ_MAX`` bytes beyond the current chunk."""
    buf = b""
    eof = False
    while True:
        while not eof and len(buf) < 2 * BUZ_MAX:
            more = os.read(fd, 4 * BUZ_MAX)
            if not more:
                eof = True
            buf += more
        if not buf:
            return
        cut = buzhash_cuts(buf[:BUZ_MAX])[0]  # depends only on these bytes: deterministic
        yield buf[:cut]
        buf = buf[cut:]


def chunks(fd: int, chunker: Chunker) -> Iterator[bytes]:
    if chunker.kind == "size":
        return read_fixed(fd, chunker.size)
    return read_buzhash(fd)

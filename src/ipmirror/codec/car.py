"""CAR (Content Addressable aRchive) v1 format, and reading the v1 payload of a CARv2 (pure).

Usage::

    out.write(encode_header([root]))
    out.write(encode_frame(cid, data))
    roots, frames = read_car(f.read)      # frames: iterator of (cid, data); nothing is verified

Framing: ``varint(len) || dag-cbor {"roots": [CID…], "version": 1}`` then, per block,
``varint(len(cid) + len(data)) || cid || data``. The reader rejects a bad header, a bad version,
a frame whose CID does not parse or that ends early, and frames over 8 MiB (no valid block is
that large; it protects against absurd lengths). Hash checks are the importer's job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from ipmirror.codec import dagcbor, varint
from ipmirror.codec.cid import CID
from ipmirror.errors import DecodeError, InvalidCID

MAX_FRAME = 8 << 20
MAX_HEADER = 1 << 20
V2_PRAGMA = bytes.fromhex("0aa16776657273696f6e02")

Read = Callable[[int], bytes]


def encode_header(roots: Sequence[CID]) -> bytes:
    body = dagcbor.encode({"roots": list(roots), "version": 1})
    return varint.encode(len(body)) + body


def encode_frame(cid: CID, data: bytes) -> bytes:
    c = cid.buffer
    return varint.encode(len(c) + len(data)) + c + data


def _read_exact(read: Read, n: int, what: str) -> bytes:
    buf = read(n)
    while len(buf) < n:
        more = read(n - len(buf))
        if not more:
            raise DecodeError(f"invalid CAR: truncated {what}")
        buf += more
    return buf


def _read_varint(read: Read) -> int | None:
    """A varint from the stream, or None at a clean end of input."""
    raw = b""
    while True:
        b = read(1)
        if not b:
            if raw:
                raise DecodeError("invalid CAR: truncated frame length")
            return None
        raw += b
        if not b[0] & 0x80:
            return varint.decode(raw)[0]
        if len(raw) > 9:
            raise DecodeError("invalid CAR: frame length varint too long")


def _parse_header(body: bytes) -> tuple[int, list[CID]]:
    try:
        h = dagcbor.decode(body)
    except DecodeError as e:
        raise DecodeError(f"invalid CAR header: {e}") from None
    if not isinstance(h, dict) or not isinstance(h.get("version"), int):
        raise DecodeError("invalid CAR header: not a map with a version")
    version = h["version"]
    if version == 2:
        return 2, []
    if version != 1:
        raise DecodeError(f"invalid CAR header: unsupported version {version}")
    roots = h.get("roots")
    if not isinstance(roots, list) or not all(isinstance(r, CID) for r in roots):
        raise DecodeError("invalid CAR header: roots must be a list of CIDs")
    if set(h) - {"roots", "version"}:
        raise DecodeError("invalid CAR header: unexpected fields")
    return 1, roots


def read_car(read: Read) -> tuple[list[CID], Iterator[tuple[CID, bytes]]]:
    """Parse the header now; return ``(roots, frames)``. CARv2 input is read through its v1 data."""
    n = _read_varint(read)
    if n is None:
        raise DecodeError("invalid CAR: empty input")
    if not 0 < n <= MAX_HEADER:
        raise DecodeError(f"invalid CAR: header length {n}")
    body = _read_exact(read, n, "header")
    version, roots = _parse_header(body)
    if version == 2:
        fixed = _read_exact(read, 40, "CARv2 header")
        offset = int.from_bytes(fixed[16:24], "little")
        size = int.from_bytes(fixed[24:32], "little")
        skip = offset - len(V2_PRAGMA) - 40
        if skip < 0:
            raise DecodeError("invalid CARv2: data offset inside the header")
        if skip:
            _read_exact(read, skip, "CARv2 padding")
        inner_read = read
        remaining = [size]

        def bounded(k: int) -> bytes:
            k = min(k, remaining[0])
            if k <= 0:
                return b""
            got = inner_read(k)
            remaining[0] -= len(got)
            return got

        read = bounded
        n = _read_varint(read)
        if n is None or not 0 < n <= MAX_HEADER:
            raise DecodeError("invalid CARv2: bad inner header")
        version, roots = _parse_header(_read_exact(read, n, "header"))
        if version != 1:
            raise DecodeError("invalid CARv2: inner payload is not CARv1")
    return roots, _frames(read)


def _frames(read: Read) -> Iterator[tuple[CID, bytes]]:
    while True:
        n = _read_varint(read)
        if n is None:
            return
        if n == 0 or n > MAX_FRAME:
            raise DecodeError(f"invalid CAR: frame length {n}")
        frame = _read_exact(read, n, "block")
        try:
            cid, pos = CID.read(frame, 0)
        except InvalidCID as e:
            raise DecodeError(f"invalid CAR: {e}") from None
        yield cid, frame[pos:]

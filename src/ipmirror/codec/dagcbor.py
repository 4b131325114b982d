"""DAG-CBOR (pure): find the links (tag 42) in a block; decode/encode small documents.

The store only needs to know which CIDs a dag-cbor block points at, to walk DAGs for pins, GC and
CAR export (:func:`links`). :func:`decode`/:func:`encode` handle small documents: CAR headers and
IPNS record data (ints, strings, bytes, lists, maps, CIDs, bools, null and 64-bit floats).
"""

from __future__ import annotations

import math
import struct

from ipmirror.codec.cid import CID
from ipmirror.errors import DecodeError, InvalidCID


def _head(buf: bytes, pos: int) -> tuple[int, int, int]:
    if pos >= len(buf):
        raise DecodeError("truncated CBOR")
    ib = buf[pos]
    major, info = ib >> 5, ib & 31
    pos += 1
    if info < 24:
        return major, info, pos
    if info in (24, 25, 26, 27):
        n = 1 << (info - 24)
        if pos + n > len(buf):
            raise DecodeError("truncated CBOR")
        return major, int.from_bytes(buf[pos:pos + n], "big"), pos + n
    raise DecodeError("indefinite or reserved CBOR lengths are not DAG-CBOR")


def links(data: bytes) -> list[CID]:
    out: list[CID] = []
    pos = 0
    todo = 1  # items left to read
    tag42 = False
    while todo:
        major, val, pos = _head(data, pos)
        todo -= 1
        is_cid, tag42 = tag42, False
        if major in (2, 3):
            if pos + val > len(data):
                raise DecodeError("truncated CBOR string")
            if is_cid and major == 2:
                if val < 1 or data[pos] != 0:
                    raise DecodeError("CID bytes must start with 0x00")
                try:
                    out.append(CID.from_bytes(data[pos + 1:pos + val]))
                except InvalidCID as e:
                    raise DecodeError(str(e)) from None
            pos += val
        elif major == 4:
            todo += val
        elif major == 5:
            todo += 2 * val
        elif major == 6:
            tag42 = val == 42
            todo += 1
        if len(out) > 1 << 20:
            raise DecodeError("too many links")
    return out


# -- a strict DAG-CBOR decoder/encoder for small documents (CAR headers, later IPNS data) -------

def _item(buf: bytes, pos: int, depth: int) -> tuple[object, int]:
    if depth > 64:
        raise DecodeError("CBOR nesting too deep")
    info = buf[pos] & 31 if pos < len(buf) else 0
    major, val, pos = _head(buf, pos)
    if major == 0:
        return val, pos
    if major == 1:
        return -1 - val, pos
    if major in (2, 3):
        if pos + val > len(buf):
            raise DecodeError("truncated CBOR string")
        raw = buf[pos:pos + val]
        pos += val
        if major == 2:
            return raw, pos
        try:
            return raw.decode("utf-8"), pos
        except UnicodeDecodeError:
            raise DecodeError("CBOR text is not UTF-8") from None
    if major == 4:
        out = []
        for _ in range(val):
            v, pos = _item(buf, pos, depth + 1)
            out.append(v)
        return out, pos
    if major == 5:
        d: dict[str, object] = {}
        prev: bytes | None = None
        for _ in range(val):
            k, pos = _item(buf, pos, depth + 1)
            if not isinstance(k, str):
                raise DecodeError("DAG-CBOR map keys must be strings")
            kb = k.encode()
            if prev is not None and (len(kb), kb) <= (len(prev), prev):
                raise DecodeError("DAG-CBOR map keys out of canonical order or repeated")
            prev = kb
            d[k], pos = _item(buf, pos, depth + 1)
        return d, pos
    if major == 6:
        if val != 42:
            raise DecodeError(f"CBOR tag {val} is not allowed in DAG-CBOR")
        raw_cid, pos = _item(buf, pos, depth + 1)
        if not isinstance(raw_cid, bytes) or not raw_cid or raw_cid[0] != 0:
            raise DecodeError("tag 42 must wrap bytes starting with 0x00")
        try:
            return CID.from_bytes(raw_cid[1:]), pos
        except InvalidCID as e:
            raise DecodeError(str(e)) from None
    # major 7
    if info == 27:
        f: float = struct.unpack(">d", val.to_bytes(8, "big"))[0]
        if math.isnan(f) or math.isinf(f):
            raise DecodeError("NaN and infinities are not allowed in DAG-CBOR")
        return f, pos
    if info in (25, 26):
        raise DecodeError("DAG-CBOR floats must be 64-bit")
    if info == 24:
        raise DecodeError("CBOR simple values are not allowed in DAG-CBOR")
    if val == 20:
        return False, pos
    if val == 21:
        return True, pos
    if val == 22:
        return None, pos
    raise DecodeError("CBOR simple value or float not supported here")


def decode(data: bytes) -> object:
    """Decode one DAG-CBOR document (ints, strings, bytes, lists, maps, CIDs, bools, null, floats)."""
    value, pos = _item(bytes(data), 0, 0)
    if pos != len(data):
        raise DecodeError("trailing bytes after DAG-CBOR document")
    return value


def _head_bytes(major: int, n: int) -> bytes:
    if n < 24:
        return bytes((major << 5 | n,))
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes((major << 5 | info,)) + n.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def encode(value: object) -> bytes:
    """Canonical DAG-CBOR (map keys sorted by length, then bytes)."""
    if value is False:
        return b"\xf4"
    if value is True:
        return b"\xf5"
    if value is None:
        return b"\xf6"
    if isinstance(value, int):
        return _head_bytes(0, value) if value >= 0 else _head_bytes(1, -1 - value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError("NaN and infinities cannot be encoded as DAG-CBOR")
        return b"\xfb" + struct.pack(">d", value)
    if isinstance(value, bytes):
        return _head_bytes(2, len(value)) + value
    if isinstance(value, str):
        b = value.encode()
        return _head_bytes(3, len(b)) + b
    if isinstance(value, CID):
        raw = b"\x00" + value.buffer
        return b"\xd8\x2a" + _head_bytes(2, len(raw)) + raw
    if isinstance(value, (list, tuple)):
        return _head_bytes(4, len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return _head_bytes(5, len(keys)) + b"".join(encode(k) + encode(value[k]) for k in keys)
    raise TypeError(f"cannot encode {type(value).__name__} as DAG-CBOR")

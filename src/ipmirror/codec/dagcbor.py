"""A minimal DAG-CBOR reader (pure): enough to find the links (tag 42) in a block.

Full DAG-CBOR encoding/decoding (IPNS records) lives with the naming layer; the store only needs
to know which CIDs a dag-cbor block points at, to walk DAGs for pins, GC and CAR export.
"""

from __future__ import annotations

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

"""Unsigned LEB128 varints as used by multiformats and protobuf (pure)."""

from __future__ import annotations

from ipmirror.errors import DecodeError

MAX_VARINT_BYTES = 9  # multiformats caps varints at 9 bytes (63 bits)


def encode(n: int) -> bytes:
    """Encode a non-negative integer as an unsigned varint."""
    if n < 0:
        raise ValueError("varint must be non-negative")
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def size(n: int) -> int:
    """Number of bytes ``encode(n)`` takes."""
    s = 1
    while n >= 0x80:
        n >>= 7
        s += 1
    return s


def decode(buf: bytes | memoryview, pos: int = 0, *, max_bytes: int = 10) -> tuple[int, int]:
    """Decode a varint at ``pos``; return ``(value, new_pos)``. Rejects non-minimal encodings."""
    result = 0
    shift = 0
    start = pos
    end = len(buf)
    while True:
        if pos >= end:
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            if b == 0 and pos - start > 1:
                raise DecodeError("non-minimal varint encoding")
            if result >> 64:
                raise DecodeError("varint exceeds 64 bits")
            return result, pos
        shift += 7
        if pos - start >= max_bytes:
            raise DecodeError("varint too long")

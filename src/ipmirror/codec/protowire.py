"""Protobuf wire format (pure): a minimal reader and the two field writers the codecs need.

Usage::

    for field, wire, value in pb_fields(raw):       # value: int (varint) or bytes
        ...
    raw = pb_varint_field(1, 0) + pb_bytes_field(2, b"data")

Rules: read as protobuf does (varints up to 10 bytes / 64 bits, non-minimal forms allowed; groups,
wire types 3 and 4, and field number 0 are errors); write minimal varints. Field order, repeats and
unknown fields are the caller's rules (``libp2p_key``, ``ipns``). DAG-PB has its own strict reader
and writer in ``dagpb``: its canonical form rejects what this reader allows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from ipmirror.codec import varint
from ipmirror.errors import DecodeError

WIRE_VARINT: Final = 0
WIRE_I64: Final = 1
WIRE_LEN: Final = 2
WIRE_I32: Final = 5


def pb_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A protobuf varint at ``pos`` (up to 10 bytes, 64 bits; non-minimal forms allowed)."""
    result = 0
    for i in range(10):
        if pos >= len(buf):
            raise DecodeError("truncated protobuf varint")
        b = buf[pos]
        pos += 1
        if i == 9 and b > 1:
            raise DecodeError("protobuf varint overflows 64 bits")
        result |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return result, pos
    raise DecodeError("protobuf varint overflows 64 bits")


def pb_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)`` for each field of a protobuf message.

    Varints come back as ``int``, length-delimited fields as ``bytes``, fixed-size fields as
    their raw ``bytes``. Groups (wire types 3 and 4) and field number 0 are errors.
    """
    pos = 0
    end = len(buf)
    while pos < end:
        tag, pos = pb_varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if field == 0 or field > 0x1FFFFFFF:
            raise DecodeError(f"invalid protobuf field number {field}")
        if wire == WIRE_VARINT:
            value, pos = pb_varint(buf, pos)
            yield field, wire, value
        elif wire == WIRE_LEN:
            length, pos = pb_varint(buf, pos)
            if length > end - pos:
                raise DecodeError(f"protobuf field {field} is truncated")
            yield field, wire, buf[pos:pos + length]
            pos += length
        elif wire in (WIRE_I64, WIRE_I32):
            n = 8 if wire == WIRE_I64 else 4
            if n > end - pos:
                raise DecodeError(f"protobuf field {field} is truncated")
            yield field, wire, buf[pos:pos + n]
            pos += n
        else:
            raise DecodeError(f"protobuf wire type {wire} (field {field}) is not supported")


def pb_bytes_field(field: int, value: bytes) -> bytes:
    """A length-delimited field: tag, length, bytes."""
    return varint.encode(field << 3 | WIRE_LEN) + varint.encode(len(value)) + value


def pb_varint_field(field: int, value: int) -> bytes:
    """A varint field: tag, value (minimal varint)."""
    return varint.encode(field << 3 | WIRE_VARINT) + varint.encode(value)

"""The UnixFS ``Data`` protobuf (pure), UnixFS 1.5 with ``mode`` and ``mtime``.

Usage::

    raw = UnixFSData(FILE, data=b"hi", filesize=2).encode()
    msg = UnixFSData.decode(raw)

Encoding follows what Kubo and ipfs-unixfs write, field by field in number order:
``Type``, ``Data`` (only when non-empty), ``filesize`` (file and raw types), ``blocksizes``
(not packed), ``hashType``, ``fanout``, ``mode``, ``mtime``. Decoding is strict: unknown fields,
wrong wire types, a missing Type, an unknown Type, bad nanoseconds or a HAMT node without
fanout/hashType are errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ipmirror.codec import varint
from ipmirror.errors import DecodeError

RAW: Final = 0
DIRECTORY: Final = 1
FILE: Final = 2
METADATA: Final = 3
SYMLINK: Final = 4
HAMT_SHARD: Final = 5
TYPE_NAMES: Final = {RAW: "raw", DIRECTORY: "directory", FILE: "file", METADATA: "metadata",
                     SYMLINK: "symlink", HAMT_SHARD: "hamt-sharded-directory"}

MURMUR3_X64_64: Final = 0x22


@dataclass(frozen=True, slots=True)
class MTime:
    seconds: int
    nanos: int = 0


@dataclass(frozen=True, slots=True)
class UnixFSData:
    type: int
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()
    hash_type: int | None = None
    fanout: int | None = None
    mode: int | None = None
    mtime: MTime | None = None

    def encode(self) -> bytes:
        out = [b"\x08", varint.encode(self.type)]
        if self.data:
            out += [b"\x12", varint.encode(len(self.data)), self.data]
        if self.filesize is not None:
            out += [b"\x18", varint.encode(self.filesize)]
        for bs in self.blocksizes:
            out += [b"\x20", varint.encode(bs)]
        if self.hash_type is not None:
            out += [b"\x28", varint.encode(self.hash_type)]
        if self.fanout is not None:
            out += [b"\x30", varint.encode(self.fanout)]
        if self.mode is not None:
            out += [b"\x38", varint.encode(self.mode)]
        if self.mtime is not None:
            mt = encode_mtime(self.mtime)
            out += [b"\x42", varint.encode(len(mt)), mt]
        return b"".join(out)

    @classmethod
    def decode(cls, raw: bytes | memoryview) -> UnixFSData:
        try:
            return _decode(bytes(raw))
        except DecodeError as e:
            raise DecodeError(f"invalid UnixFS data: {e}") from None

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, str(self.type))

    def content_size(self) -> int:
        """Bytes of file content this node covers (files and raw nodes)."""
        if self.filesize is not None:
            return self.filesize
        return len(self.data or b"")


def encode_mtime(mt: MTime) -> bytes:
    secs = mt.seconds & 0xFFFFFFFFFFFFFFFF  # int64 as two's complement varint
    out = b"\x08" + varint.encode(secs)
    if mt.nanos:
        out += b"\x15" + mt.nanos.to_bytes(4, "little")
    return out


def file_leaf(chunk: bytes, leaf_type: int = FILE) -> bytes:
    """Encoded Data of a non-raw leaf holding ``chunk`` (hot path)."""
    n = len(chunk)
    if n == 0:
        return bytes((0x08, leaf_type, 0x18, 0x00))
    return b"".join((bytes((0x08, leaf_type, 0x12)), varint.encode(n), chunk, b"\x18", varint.encode(n)))


def _decode_mtime(buf: bytes) -> MTime:
    pos = 0
    secs: int | None = None
    nanos = 0
    last = 0
    while pos < len(buf):
        key, pos = varint.decode(buf, pos)
        field, wt = key >> 3, key & 7
        if field <= last:
            raise DecodeError("mtime fields out of order or repeated")
        last = field
        if field == 1 and wt == 0:
            v, pos = varint.decode(buf, pos)
            secs = v - (1 << 64) if v >= 1 << 63 else v
        elif field == 2 and wt == 5:
            if pos + 4 > len(buf):
                raise DecodeError("truncated mtime nanoseconds")
            nanos = int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
            if not 0 < nanos < 1_000_000_000:
                raise DecodeError("mtime nanoseconds out of range")
        else:
            raise DecodeError(f"unexpected mtime field {field}/{wt}")
    if secs is None:
        raise DecodeError("mtime without Seconds")
    return MTime(secs, nanos)


def _decode(buf: bytes) -> UnixFSData:
    pos = 0
    end = len(buf)
    typ: int | None = None
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    hash_type: int | None = None
    fanout: int | None = None
    mode: int | None = None
    mtime: MTime | None = None
    seen: set[int] = set()
    while pos < end:
        key, pos = varint.decode(buf, pos)
        field, wt = key >> 3, key & 7
        if field != 4:
            if field in seen:
                raise DecodeError(f"field {field} repeated")
            seen.add(field)
        if field in (1, 3, 5, 6, 7) and wt == 0:
            v, pos = varint.decode(buf, pos)
            if field == 1:
                typ = v
            elif field == 3:
                filesize = v
            elif field == 5:
                hash_type = v
            elif field == 6:
                fanout = v
            else:
                mode = v
        elif field == 4 and wt == 0:
            v, pos = varint.decode(buf, pos)
            blocksizes.append(v)
        elif field in (2, 4, 8) and wt == 2:
            length, pos = varint.decode(buf, pos)
            if pos + length > end:
                raise DecodeError("truncated field")
            chunk = buf[pos:pos + length]
            pos += length
            if field == 2:
                data = chunk
            elif field == 4:  # packed blocksizes
                p = 0
                while p < len(chunk):
                    v, p = varint.decode(chunk, p)
                    blocksizes.append(v)
            else:
                mtime = _decode_mtime(chunk)
        else:
            raise DecodeError(f"unknown field {field} with wire type {wt}")
        if pos > end:
            raise DecodeError("truncated field")
    if typ is None:
        raise DecodeError("missing Type")
    if typ not in TYPE_NAMES:
        raise DecodeError(f"unknown Type {typ}")
    if typ == HAMT_SHARD:
        if fanout is None or fanout < 8 or fanout & (fanout - 1) or fanout > 1024:
            raise DecodeError("HAMT fanout must be a power of two from 8 to 1024")
        if hash_type != MURMUR3_X64_64:
            raise DecodeError("HAMT shard hash type must be murmur3-x64-64 (0x22)")
    if mode is not None and mode > 0xFFFFFFFF:
        raise DecodeError("mode does not fit in 32 bits")
    return UnixFSData(typ, data, filesize, tuple(blocksizes), hash_type, fanout, mode, mtime)

"""Multihash, multicodec and CID (v0 and v1), pure.

Usage::

    c = CID.parse("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
    c = CID.hash(RAW, b"...")            # sha2-256 of the bytes
    str(c), bytes(c), c.multihash

Rules kept here:
- A CID holds the full multihash bytes; the store keys blocks by ``multihash`` (so CIDv0 and CIDv1
  views of the same bytes share storage).
- CIDv0 is dag-pb + sha2-256 only and prints as base58btc ``Qm…``; CIDv1 prints as base32 lower
  (``b…``), libp2p-key CIDs may print as base36 (``k…``).
- Identity multihashes are accepted up to 128 bytes of digest (the UnixFS spec's limit).

We write our own rather than use ``multiformats``: the importer makes one CID per block and the
CID's byte form is needed for every link; a slotted class with the bytes precomputed is ~10x faster
to build than the generic library objects (see docs/design.md).
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

from ipmirror.codec import multibase, varint
from ipmirror.errors import DecodeError, InvalidCID, InvalidInput, UnsupportedFormat

# multicodecs
RAW: Final = 0x55
DAG_PB: Final = 0x70
DAG_CBOR: Final = 0x71
DAG_JSON: Final = 0x0129
LIBP2P_KEY: Final = 0x72
JSON: Final = 0x0200
CBOR: Final = 0x51
CODEC_NAMES: Final = {RAW: "raw", DAG_PB: "dag-pb", DAG_CBOR: "dag-cbor", DAG_JSON: "dag-json",
                      LIBP2P_KEY: "libp2p-key", JSON: "json", CBOR: "cbor"}

# multihashes
IDENTITY: Final = 0x00
SHA2_256: Final = 0x12
MAX_IDENTITY_DIGEST: Final = 128
MAX_VARINT: Final = varint.MAX_VARINT_BYTES  # multiformats varints are at most 9 bytes
HASH_NAMES: Final = {IDENTITY: "identity", SHA2_256: "sha2-256"}

_SHA256_PREFIX: Final = b"\x12\x20"


def multihash_sha256(data: bytes | memoryview) -> bytes:
    """The sha2-256 multihash of ``data``."""
    return _SHA256_PREFIX + hashlib.sha256(data).digest()


def multihash_identity(data: bytes) -> bytes:
    if len(data) > MAX_IDENTITY_DIGEST:
        raise InvalidCID(f"identity digest of {len(data)} bytes exceeds {MAX_IDENTITY_DIGEST}")
    return b"\x00" + varint.encode(len(data)) + bytes(data)


def decode_multihash(mh: bytes) -> tuple[int, bytes]:
    """Split a multihash into ``(code, digest)``, checking the length."""
    code, pos = varint.decode(mh, 0, max_bytes=MAX_VARINT)
    length, pos = varint.decode(mh, pos, max_bytes=MAX_VARINT)
    digest = mh[pos:]
    if len(digest) != length:
        raise DecodeError(f"multihash digest length {len(digest)} != declared {length}")
    if code == IDENTITY and length > MAX_IDENTITY_DIGEST:
        raise InvalidCID(f"identity digest of {length} bytes exceeds {MAX_IDENTITY_DIGEST}")
    return code, digest


def verify_multihash(mh: bytes, data: bytes | memoryview) -> bool:
    """True if ``data`` hashes to ``mh``. Raises UnsupportedFormat for unknown hash functions."""
    if mh[:2] == _SHA256_PREFIX:
        return len(mh) == 34 and hashlib.sha256(data).digest() == mh[2:]
    code, digest = decode_multihash(mh)
    if code == IDENTITY:
        return bytes(data) == digest
    raise UnsupportedFormat(f"hash function 0x{code:x} is not supported")


def read_multihash(buf: bytes | memoryview, pos: int) -> tuple[bytes, int]:
    """Read one multihash starting at ``pos`` of ``buf``; return ``(multihash, new_pos)``."""
    start = pos
    _code, pos = varint.decode(buf, pos, max_bytes=MAX_VARINT)
    length, pos = varint.decode(buf, pos, max_bytes=MAX_VARINT)
    end = pos + length
    if end > len(buf):
        raise DecodeError("truncated multihash")
    return bytes(buf[start:end]), end


class CID:
    """A content identifier. Immutable; equal CIDs compare and hash equal."""

    __slots__ = ("_bytes", "codec", "multihash", "version")

    version: Literal[0, 1]
    codec: int
    multihash: bytes
    _bytes: bytes

    def __init__(self, version: Literal[0, 1], codec: int, multihash: bytes) -> None:
        if version == 0:
            if codec != DAG_PB or len(multihash) != 34 or multihash[:2] != _SHA256_PREFIX:
                raise InvalidCID("CIDv0 must be dag-pb with a sha2-256 multihash")
            raw = multihash
        elif version == 1:
            raw = b"\x01" + varint.encode(codec) + multihash
        else:
            raise InvalidCID(f"unknown CID version {version}")
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "codec", codec)
        object.__setattr__(self, "multihash", multihash)
        object.__setattr__(self, "_bytes", raw)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("CID is immutable")

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def hash(cls, codec: int, data: bytes | memoryview, version: Literal[0, 1] = 1) -> CID:
        return cls(version, codec, multihash_sha256(data))

    @classmethod
    def identity(cls, codec: int, data: bytes) -> CID:
        return cls(1, codec, multihash_identity(data))

    @classmethod
    def trusted(cls, raw: bytes) -> CID:
        """A CID from bytes this program wrote itself (an index): no validation, single-byte
        codecs only; anything else takes the checked path."""
        if len(raw) == 34 and raw[0] == 0x12:
            version, codec, mh = 0, DAG_PB, raw
        elif raw[0] == 1 and raw[1] < 0x80:
            version, codec, mh = 1, raw[1], raw[2:]
        else:
            return cls.from_bytes(raw)
        c = object.__new__(cls)
        object.__setattr__(c, "version", version)
        object.__setattr__(c, "codec", codec)
        object.__setattr__(c, "multihash", mh)
        object.__setattr__(c, "_bytes", raw)
        return c

    @classmethod
    def from_bytes(cls, raw: bytes | memoryview) -> CID:
        c, end = cls.read(raw, 0)
        if end != len(raw):
            raise InvalidCID("trailing bytes after CID")
        return c

    @classmethod
    def read(cls, buf: bytes | memoryview, pos: int = 0) -> tuple[CID, int]:
        """Read a binary CID at ``pos``; return ``(cid, new_pos)``."""
        try:
            if len(buf) - pos >= 34 and buf[pos] == 0x12 and buf[pos + 1] == 0x20:
                return cls(0, DAG_PB, bytes(buf[pos:pos + 34])), pos + 34
            version, p = varint.decode(buf, pos, max_bytes=MAX_VARINT)
            if version != 1:
                raise InvalidCID(f"unknown CID version {version}")
            codec, p = varint.decode(buf, p, max_bytes=MAX_VARINT)
            mh, p = read_multihash(buf, p)
            decode_multihash(mh)
            return cls(1, codec, mh), p
        except DecodeError as e:
            raise InvalidCID(f"invalid binary CID: {e}") from None

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse a CID string (``Qm…`` v0, or a multibase v1)."""
        text = text.strip()
        if not text:
            raise InvalidCID("empty CID")
        if text.startswith("Qm"):  # no multibase prefix is 'Q': meant as a CIDv0
            return cls._parse_v0(text)
        try:
            raw = multibase.decode(text)
        except (DecodeError, UnsupportedFormat) as e:
            raise InvalidCID(f"invalid CID {_short(text)}: {e}") from None
        if raw[:1] == b"\x12":
            raise InvalidCID(f"invalid CID {_short(text)}: CIDv0 must be base58btc")
        try:
            return cls.from_bytes(raw)
        except InvalidCID as e:
            raise InvalidCID(f"invalid CID {_short(text)}: {e}") from None

    @classmethod
    def _parse_v0(cls, text: str) -> CID:
        if len(text) != 46:
            raise InvalidCID(f"invalid CIDv0 {_short(text)}: a CIDv0 is 46 base58btc characters, not "
                             f"{len(text)}")
        try:
            raw = multibase.b58decode(text)
        except DecodeError as e:
            raise InvalidCID(f"invalid CIDv0 {_short(text)}: {e}") from None
        if len(raw) != 34 or raw[:2] != b"\x12\x20":
            raise InvalidCID(f"invalid CIDv0 {_short(text)}: not a sha2-256 multihash")
        return cls(0, DAG_PB, raw)

    # -- views ----------------------------------------------------------------------------------
    def __bytes__(self) -> bytes:
        return self._bytes

    @property
    def buffer(self) -> bytes:
        return self._bytes

    def encode(self, base: str | None = None) -> str:
        """Text form; CIDv0 exists only in base58btc (use ``to_v1()`` for other bases)."""
        if self.version == 0:
            if base not in (None, "z"):
                raise InvalidInput("a CIDv0 can only be written in base58btc; convert it to v1 first")
            return multibase.b58encode(self._bytes)
        return multibase.encode(base or ("k" if self.codec == LIBP2P_KEY else "b"), self._bytes)

    def __str__(self) -> str:
        return self.encode()

    def __repr__(self) -> str:
        return f"CID({self.encode()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CID) and self._bytes == other._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __lt__(self, other: CID) -> bool:
        return self._bytes < other._bytes

    def to_v1(self) -> CID:
        return self if self.version == 1 else CID(1, self.codec, self.multihash)

    def with_codec(self, codec: int) -> CID:
        return CID(1, codec, self.multihash)

    @property
    def is_identity(self) -> bool:
        return self.multihash[0] == IDENTITY

    @property
    def digest(self) -> bytes:
        return decode_multihash(self.multihash)[1]

    @property
    def hash_code(self) -> int:
        return decode_multihash(self.multihash)[0]

    def identity_data(self) -> bytes:
        """The inlined bytes of an identity CID."""
        code, digest = decode_multihash(self.multihash)
        if code != IDENTITY:
            raise ValueError("not an identity CID")
        return digest


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")

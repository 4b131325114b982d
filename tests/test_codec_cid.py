"""Tests for the pure codec primitives: varint, multibase and CID."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipmirror.codec import multibase, varint
from ipmirror.codec.cid import (
    CID,
    DAG_CBOR,
    DAG_PB,
    IDENTITY,
    LIBP2P_KEY,
    RAW,
    SHA2_256,
    decode_multihash,
    multihash_identity,
    multihash_sha256,
    read_multihash,
    verify_multihash,
)
from ipmirror.errors import DecodeError, InvalidCID, InvalidInput, UnsupportedFormat

FAST = settings(max_examples=200, deadline=None)

# --------------------------------------------------------------------------------------------------
# varint
# --------------------------------------------------------------------------------------------------

VARINT_VECTORS = [
    (0, "00"),
    (1, "01"),
    (127, "7f"),
    (128, "8001"),
    (255, "ff01"),
    (300, "ac02"),
    (16384, "808001"),
    (2**63 - 1, "ffffffffffffffff7f"),
]


@pytest.mark.parametrize(("n", "hexed"), VARINT_VECTORS)
def test_varint_vectors(n: int, hexed: str) -> None:
    raw = bytes.fromhex(hexed)
    assert varint.encode(n) == raw
    assert varint.size(n) == len(raw)
    assert varint.decode(raw) == (n, len(raw))


def test_varint_decode_at_offset_and_memoryview() -> None:
    buf = b"\xff\xff" + varint.encode(300) + b"\x01"
    assert varint.decode(buf, 2) == (300, 4)
    assert varint.decode(memoryview(buf), 2) == (300, 4)
    assert varint.decode(buf, 4) == (1, 5)


def test_varint_negative_rejected() -> None:
    with pytest.raises(ValueError):
        varint.encode(-1)


@pytest.mark.parametrize("hexed", ["", "80", "ff", "8080", "ffffffff"])
def test_varint_truncated(hexed: str) -> None:
    with pytest.raises(DecodeError):
        varint.decode(bytes.fromhex(hexed))


@pytest.mark.parametrize("hexed", ["8000", "ff00", "808000", "ac8200", "8080808000"])
def test_varint_non_minimal_rejected(hexed: str) -> None:
    with pytest.raises(DecodeError):
        varint.decode(bytes.fromhex(hexed))


def test_varint_too_long_rejected() -> None:
    with pytest.raises(DecodeError):
        varint.decode(b"\xff" * 10 + b"\x01")
    with pytest.raises(DecodeError):
        varint.decode(b"\xff" * 3 + b"\x01", max_bytes=3)
    assert varint.decode(b"\xff" * 2 + b"\x01", max_bytes=3) == (2**15 - 1, 3)


@FAST
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_roundtrip(n: int) -> None:
    raw = varint.encode(n)
    assert len(raw) == varint.size(n)
    assert varint.decode(raw) == (n, len(raw))
    assert varint.decode(b"\x00" + raw + b"\x7f", 1) == (n, 1 + len(raw))


@FAST
@given(st.integers(min_value=0, max_value=2**56), st.integers(min_value=1, max_value=2))
def test_varint_non_minimal_property(n: int, pad: int) -> None:
    # Same value with `pad` redundant zero groups appended: must be rejected.
    raw = bytearray(varint.encode(n))
    raw[-1] |= 0x80
    raw += b"\x80" * (pad - 1) + b"\x00"
    with pytest.raises(DecodeError):
        varint.decode(bytes(raw))


@FAST
@given(st.binary(max_size=12))
def test_varint_decode_fuzz(buf: bytes) -> None:
    try:
        value, pos = varint.decode(buf)
    except DecodeError:
        return
    assert 0 < pos <= len(buf)
    assert varint.encode(value) == buf[:pos]


# --------------------------------------------------------------------------------------------------
# multibase
# --------------------------------------------------------------------------------------------------

# Vectors from the multibase spec test suite (tests/basic.csv, leading_zero.csv, two_leading_zeros.csv).
MULTIBASE_VECTORS = [
    (b"yes mani !", "z7paNL19xttacUY", "bpfsxgidnmfxgsibb", "k2lcpzo5yikidynfl"),
    (b"\x00yes mani !", "z17paNL19xttacUY", "bab4wk4zanvqw42jaee", "k02lcpzo5yikidynfl"),
    (b"\x00\x00yes mani !", "z117paNL19xttacUY", "baaahszltebwwc3tjeaqq", "k002lcpzo5yikidynfl"),
]


@pytest.mark.parametrize(("data", "b58", "b32", "b36"), MULTIBASE_VECTORS)
def test_multibase_vectors(data: bytes, b58: str, b32: str, b36: str) -> None:
    assert multibase.encode("z", data) == b58
    assert multibase.encode("b", data) == b32
    assert multibase.encode("k", data) == b36
    for text in (b58, b32, b36, b32.upper(), "K" + b36[1:].upper()):
        assert multibase.decode(text) == data


def test_multibase_empty_payload() -> None:
    for base in "zbk":
        text = multibase.encode(base, b"")
        assert text == base
        assert multibase.decode(text) == b""


@pytest.mark.parametrize("text", ["z0OIl", "b1", "bAbC", "k!", "b8", "bab4wk4zanvqw42jae=e"])
def test_multibase_invalid_body(text: str) -> None:
    with pytest.raises(DecodeError):
        multibase.decode(text)


def test_multibase_empty_string() -> None:
    with pytest.raises(DecodeError):
        multibase.decode("")


@pytest.mark.parametrize("text", ["mAQID", "fabcd", "uAQID", "Qm", "9abc"])
def test_multibase_unsupported_prefix(text: str) -> None:
    with pytest.raises(UnsupportedFormat):
        multibase.decode(text)


def test_multibase_unsupported_encode() -> None:
    with pytest.raises(UnsupportedFormat):
        multibase.encode("m", b"\x01")


@FAST
@given(st.binary(max_size=80), st.integers(min_value=0, max_value=4), st.sampled_from("zbk"))
def test_multibase_roundtrip(data: bytes, zeros: int, base: str) -> None:
    data = b"\x00" * zeros + data
    text = multibase.encode(base, data)
    assert text[0] == base
    assert multibase.decode(text) == data
    if base in "bk":
        assert text == text.lower()
        assert multibase.decode(text.upper()) == data


@FAST
@given(st.binary(max_size=40))
def test_base58_leading_zeros_map_to_ones(data: bytes) -> None:
    zeros = len(data) - len(data.lstrip(b"\0"))
    text = multibase.b58encode(data)
    assert text[:zeros] == "1" * zeros
    assert text[zeros:zeros + 1] != "1"
    assert multibase.b58decode(text) == data


@FAST
@given(st.text(max_size=30))
def test_multibase_decode_fuzz(text: str) -> None:
    with contextlib.suppress(DecodeError, UnsupportedFormat):
        multibase.decode(text)


# --------------------------------------------------------------------------------------------------
# multihash
# --------------------------------------------------------------------------------------------------


def test_multihash_sha256() -> None:
    mh = multihash_sha256(b"hello")
    assert mh == b"\x12\x20" + hashlib.sha256(b"hello").digest()
    assert decode_multihash(mh) == (SHA2_256, hashlib.sha256(b"hello").digest())
    assert verify_multihash(mh, b"hello")
    assert verify_multihash(mh, memoryview(b"hello"))
    assert not verify_multihash(mh, b"hellO")


def test_multihash_identity() -> None:
    mh = multihash_identity(b"abc")
    assert mh == b"\x00\x03abc"
    assert decode_multihash(mh) == (IDENTITY, b"abc")
    assert verify_multihash(mh, b"abc")
    assert not verify_multihash(mh, b"abd")
    assert multihash_identity(b"B" * 128)[:3] == b"\x00\x80\x01"
    with pytest.raises(InvalidCID):
        multihash_identity(b"A" * 129)


def test_multihash_length_mismatch() -> None:
    with pytest.raises(DecodeError):
        decode_multihash(b"\x12\x20" + b"\x00" * 31)
    with pytest.raises(DecodeError):
        decode_multihash(b"\x12\x20" + b"\x00" * 33)
    with pytest.raises(InvalidCID):
        decode_multihash(b"\x00\x81\x01" + b"A" * 129)


def test_verify_multihash_unknown_function() -> None:
    with pytest.raises(UnsupportedFormat):
        verify_multihash(b"\x13\x40" + b"\x00" * 64, b"x")  # sha2-512


def test_read_multihash() -> None:
    mh = multihash_sha256(b"x")
    assert read_multihash(b"\xaa" + mh + b"\xbb", 1) == (mh, 1 + len(mh))
    with pytest.raises(DecodeError):
        read_multihash(mh[:-1], 0)


# --------------------------------------------------------------------------------------------------
# CID: parsing and printing
# --------------------------------------------------------------------------------------------------

EMPTY_DIR_V0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
EMPTY_DIR_V1 = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
EMPTY_RAW = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"

V0_CIDS = [
    EMPTY_DIR_V0,
    "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
    "QmYhmPjhFjYFyaoiuNzYv8WGavpSRDwdHWe5B4M5du5Rtk",
    "QmWvY6FaqFMS89YAQ9NAPjVP4WZKA1qbHbicc9HeSKQTgt",
    "QmNPWHBrVQiiV8FpyNuEPhB9E2rbvdy9Yx79EY1EJuyf9o",
]

V1_BASE32_CIDS = [
    (EMPTY_DIR_V1, DAG_PB),
    ("bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y", DAG_PB),
    (EMPTY_RAW, RAW),
    ("bafkqaaa", RAW),
    ("bafyaabakaieac", DAG_PB),
    ("bafyreibs4utpgbn7uqegmd2goqz4bkyflre2ek2iwv743fhvylwi4zeeim", DAG_CBOR),
    ("baguqeeram5ujjqrwheyaty3w5gdsmoz6vittchvhk723jjqxk7hakxkd47xq", 0x0129),
    ("bagaaierajjsnhsxqlgfrvknlt7z2heoljcgfv37cn45tu7mhmr23x3ekiboq", 0x0200),
    ("bafireif3aymeikgfbofx533yf5vlx4kimzq6zmzmpra2mnzfsfnmv4hchm", 0x51),
]

# IPNS names (libp2p-key CIDs, base36) that appear as gateway-conformance fixture file names.
K51_NAMES = [
    "k51qzi5uqu5dlxdsdu5fpuu7h69wu4ohp32iwm9pdt9nq3y5rpn3ln9j12zfhe",
    "k51qzi5uqu5djokp3m1keo36hoxtd6u3a1d2rg1camf6al7p3huy63dojlm57c",
    "k51qzi5uqu5diamp7qnnvs1p1gzmku3eijkeijs3418j23j077zrkok63xdm8c",
    "k51qzi5uqu5dilgf7gorsh9vcqqq4myo6jd4zmqkuy9pxyxi5fua3uf7axph4y",
    "k51qzi5uqu5dit2ku9mutlfgwyz8u730on38kd10m97m36bjt66my99hb6103f",
    "k51qzi5uqu5dlkw8pxuw9qmqayfdeh4kfebhmreauqdc6a7c3y7d5i9fi8mk9w",
    "k51qzi5uqu5dlmit2tuwdvnx4sbnyqgmvbxftl0eo3f33wwtb9gr7yozae9kpw",
    "k51qzi5uqu5dm4tm0wt8srkg9h9suud4wuiwjimndrkydqm81cqtlb5ak6p7ku",
    "k51qzi5uqu5dghjous0agrwavl8vzl64xckoqzwqeqwudfr74kfd11zcyk3b7l",
    "k51qzi5uqu5dhjghbwdvbo6mi40htrq6e2z4pwgp15pgv3ho1azvidttzh8yy2",
]


@pytest.mark.parametrize("text", V0_CIDS)
def test_parse_v0_roundtrip(text: str) -> None:
    c = CID.parse(text)
    assert c.version == 0
    assert c.codec == DAG_PB
    assert c.hash_code == SHA2_256
    assert len(c.digest) == 32
    assert str(c) == text
    assert c.encode("z") == text
    assert bytes(c) == c.multihash == c.buffer
    assert len(bytes(c)) == 34
    assert CID.from_bytes(bytes(c)) == c
    assert repr(c) == f"CID({text!r})"
    v1 = c.to_v1()
    assert v1.version == 1
    assert v1.codec == DAG_PB
    assert v1.multihash == c.multihash
    assert str(v1).startswith("bafybei")
    assert CID.parse(str(v1)) == v1
    assert v1 != c
    assert v1.to_v1() is v1


@pytest.mark.parametrize(("text", "codec"), V1_BASE32_CIDS)
def test_parse_v1_base32_roundtrip(text: str, codec: int) -> None:
    c = CID.parse(text)
    assert c.version == 1
    assert c.codec == codec
    assert str(c) == text
    assert c.encode("b") == text
    assert CID.from_bytes(bytes(c)) == c
    assert bytes(c)[0] == 1
    # Other bases round-trip too.
    for base in "zk":
        other = c.encode(base)
        assert other[0] == base
        assert CID.parse(other) == c
    # Upper-case base32 (multibase prefix "B") is accepted.
    assert CID.parse(text.upper()) == c
    assert CID.parse(text.upper()).encode() == text


@pytest.mark.parametrize("text", K51_NAMES)
def test_parse_base36_libp2p_key_roundtrip(text: str) -> None:
    c = CID.parse(text)
    assert c.version == 1
    assert c.codec == LIBP2P_KEY
    assert c.is_identity  # ed25519 public keys are inlined
    assert len(c.identity_data()) == 36
    assert str(c) == text  # libp2p-key CIDs print as base36
    assert CID.parse(c.encode("b")) == c
    assert CID.parse(c.encode("z")) == c
    assert CID.parse("K" + text[1:].upper()) == c


def test_parse_base58btc_v1() -> None:
    c = CID.parse(EMPTY_DIR_V1)
    z = c.encode("z")
    assert z.startswith("zdj7W")
    assert CID.parse(z) == c
    assert str(CID.parse(z)) == EMPTY_DIR_V1
    assert CID.parse(z).encode("z") == z


def test_parse_strips_whitespace() -> None:
    assert CID.parse(f"  {EMPTY_DIR_V0}\n") == CID.parse(EMPTY_DIR_V0)


INVALID_CIDS = [
    "",
    "   ",
    "hello",
    "garbage!",
    "Qm",
    EMPTY_DIR_V0[:-1],  # v0, too short
    EMPTY_DIR_V0 + "a",  # v0, too long
    "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3N0",  # v0 with a non-base58 character
    "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3NnQmUNLLs",
    "mAXASIOnrbGCADfkPyOI37VMkbzluh1RZvUrqDLkHbBQvXGtk",  # base64: not supported -> InvalidCID
    "uAXASIOnrbGCADfkPyOI37VMkbzluh1RZvUrqDLkHbBQvXGtk",
    "9" + EMPTY_DIR_V1[1:],
    EMPTY_DIR_V1[:-1],  # truncated digest
    EMPTY_DIR_V1[:-10],
    EMPTY_DIR_V1 + "aa",  # trailing bytes
    "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgF354",  # mixed case base32
    "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf35!",
    "b",
    "z",
    "k",
    "ba",
    multibase.encode("b", b"\x02\x70" + multihash_sha256(b"")),  # CID version 2
    multibase.encode("b", b"\x00\x70" + multihash_sha256(b"")),  # CID version 0 in v1 framing
    multibase.encode("b", multihash_sha256(b"")),  # bare v0 multihash, not base58btc
    multibase.encode("z", multihash_sha256(b"")),  # "zQm...": v0 must not carry a prefix
    multibase.encode("b", b"\x01\x70\x12\x20" + b"\x00" * 31),  # digest shorter than declared
    multibase.encode("b", b"\x01\x70\x12\x20" + b"\x00" * 33),  # digest longer than declared
    multibase.encode("b", b"\x01\x70\x12"),  # multihash without length
    multibase.encode("b", b"\x01\x70"),  # no multihash
    multibase.encode("b", b"\x01"),
    multibase.encode("b", b"\x01\x80\x00\x12\x20" + b"\x00" * 32),  # non-minimal codec varint
    multibase.encode("b", b"\x01\x55\x00\x81\x01" + b"A" * 129),  # identity digest > 128 bytes
]


@pytest.mark.parametrize("text", INVALID_CIDS)
def test_parse_invalid(text: str) -> None:
    with pytest.raises(InvalidCID):
        CID.parse(text)


def test_invalid_cid_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        CID.parse("nope")
    with pytest.raises(ValueError):
        CID.parse("nope")


def test_v0_with_wrong_length_binary() -> None:
    with pytest.raises(InvalidCID):
        CID(0, DAG_PB, b"\x12\x20" + b"\x00" * 31)
    with pytest.raises(InvalidCID):
        CID(0, RAW, multihash_sha256(b""))
    with pytest.raises(InvalidCID):
        CID(0, DAG_PB, multihash_identity(b"x" * 32))
    with pytest.raises(InvalidCID):
        CID(2, DAG_PB, multihash_sha256(b""))  # type: ignore[arg-type]


INVALID_BINARY = [
    b"",
    b"\x01",
    b"\x01\x70",
    b"\x01\x70\x12\x20" + b"\x00" * 31,
    b"\x02\x70\x12\x20" + b"\x00" * 32,
    b"\x12\x20" + b"\x00" * 31,  # short v0
    b"\x12\x20" + b"\x00" * 33,  # v0 + trailing byte
    b"\x01\x70\x12\x20" + b"\x00" * 33,
    b"\x01\x55\x00\x81\x01" + b"A" * 129,
    b"\x01\x80",
]


@pytest.mark.parametrize("raw", INVALID_BINARY)
def test_from_bytes_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidCID):
        CID.from_bytes(raw)


def test_read_at_offset() -> None:
    v0 = CID.parse(EMPTY_DIR_V0)
    v1 = CID.parse(EMPTY_RAW)
    buf = b"\xee" + bytes(v0) + bytes(v1) + b"tail"
    c, pos = CID.read(buf, 1)
    assert c == v0
    assert pos == 35
    c, pos = CID.read(memoryview(buf), pos)
    assert c == v1
    assert buf[pos:] == b"tail"


def test_varint_longer_than_nine_bytes_rejected_in_cid() -> None:
    """The unsigned-varint spec (multiformats) caps varints at 9 bytes; cid.py says so too.

    A minimal 10-byte varint (value 2**63) as the codec must not be accepted in a CID.
    """
    ten = varint.encode(2**63)
    assert len(ten) == 10
    with pytest.raises(InvalidCID):
        CID.from_bytes(b"\x01" + ten + multihash_sha256(b""))
    with pytest.raises(InvalidCID):
        CID.from_bytes(b"\x01\x55" + ten + b"\x00")  # 10-byte multihash code


# --------------------------------------------------------------------------------------------------
# CID: values, constructors, views
# --------------------------------------------------------------------------------------------------


def test_hash_constructor_and_well_known() -> None:
    empty_dir = bytes.fromhex("0a020801")
    assert str(CID.hash(DAG_PB, empty_dir, version=0)) == EMPTY_DIR_V0
    assert str(CID.hash(DAG_PB, empty_dir)) == EMPTY_DIR_V1
    assert str(CID.hash(DAG_PB, memoryview(empty_dir))) == EMPTY_DIR_V1
    assert str(CID.hash(RAW, b"")) == EMPTY_RAW
    with pytest.raises(InvalidCID):
        CID.hash(RAW, b"", version=0)


def test_equality_and_hash() -> None:
    a = CID.parse(EMPTY_DIR_V1)
    b = CID.parse(EMPTY_DIR_V1.upper())
    c = CID.parse(a.encode("z"))
    assert a == b == c
    assert hash(a) == hash(b) == hash(c)
    assert len({a, b, c}) == 1
    v0 = CID.parse(EMPTY_DIR_V0)
    assert v0 != a
    assert v0.to_v1() == a
    assert hash(v0.to_v1()) == hash(a)
    assert v0.multihash == a.multihash
    assert a.with_codec(RAW) != a
    assert a.with_codec(RAW).multihash == a.multihash
    assert a.with_codec(RAW).codec == RAW
    assert v0.with_codec(DAG_PB) == a
    assert a != str(a)
    assert a != bytes(a)
    assert {a: 1}[CID.from_bytes(bytes(a))] == 1


def test_ordering_by_bytes() -> None:
    cids = [CID.hash(RAW, bytes([i])) for i in range(10)]
    assert [bytes(c) for c in sorted(cids)] == sorted(bytes(c) for c in cids)


def test_immutable() -> None:
    c = CID.parse(EMPTY_RAW)
    with pytest.raises(AttributeError):
        c.codec = DAG_PB  # type: ignore[misc]
    with pytest.raises(AttributeError):
        c.foo = 1  # type: ignore[attr-defined]


def test_identity_cids() -> None:
    c = CID.parse("bafkqaaa")
    assert c.is_identity
    assert c.codec == RAW
    assert c.hash_code == IDENTITY
    assert c.identity_data() == b""
    assert c == CID.identity(RAW, b"")
    inlined_dir = CID.identity(DAG_PB, bytes.fromhex("0a020801"))
    assert str(inlined_dir) == "bafyaabakaieac"
    assert CID.parse("bafyaabakaieac").identity_data() == bytes.fromhex("0a020801")
    assert verify_multihash(inlined_dir.multihash, bytes.fromhex("0a020801"))
    sha = CID.parse(EMPTY_RAW)
    assert not sha.is_identity
    with pytest.raises(ValueError):
        sha.identity_data()
    with pytest.raises(InvalidCID):
        CID.identity(RAW, b"A" * 129)
    assert CID.identity(RAW, b"B" * 128).identity_data() == b"B" * 128


# --------------------------------------------------------------------------------------------------
# CID: properties
# --------------------------------------------------------------------------------------------------

CODECS = st.sampled_from([RAW, DAG_PB, DAG_CBOR, LIBP2P_KEY, 0x0129, 0x0200, 0x51, 0x300, 0x1234])


@st.composite
def cids(draw: st.DrawFn) -> CID:
    kind = draw(st.sampled_from(["v0", "sha", "identity"]))
    if kind == "v0":
        return CID(0, DAG_PB, b"\x12\x20" + draw(st.binary(min_size=32, max_size=32)))
    codec = draw(CODECS)
    if kind == "sha":
        return CID(1, codec, b"\x12\x20" + draw(st.binary(min_size=32, max_size=32)))
    return CID.identity(codec, draw(st.binary(max_size=128)))


@FAST
@given(cids())
def test_cid_roundtrip_property(c: CID) -> None:
    assert CID.parse(str(c)) == c
    assert str(CID.parse(str(c))) == str(c)
    assert CID.from_bytes(bytes(c)) == c
    assert CID.read(bytes(c) + b"\x00\x01", 0) == (c, len(bytes(c)))
    assert CID.parse(str(c.to_v1())) == c.to_v1()
    assert c.to_v1().multihash == c.multihash
    if c.version == 1:
        for base in "zbk":
            assert CID.parse(c.encode(base)) == c


@pytest.mark.parametrize("base", ["b", "k"])
def test_v0_encode_in_other_base_is_parseable_or_refused(base: str) -> None:
    """A CIDv0 has only one string form (bare base58btc). Printing it in another base must either be
    refused (go-cid and js-multiformats raise) or give a string that parses back to the same CID;
    it must not produce a string our own parser rejects."""
    c = CID.parse(EMPTY_DIR_V0)
    try:
        text = c.encode(base)
    except InvalidInput:
        return
    assert CID.parse(text) == c


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=70))
def test_parse_fuzz_text(text: str) -> None:
    with contextlib.suppress(InvalidCID):
        CID.parse(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=60), st.binary(max_size=40).map(lambda b: b"\x01" + b)))
def test_from_bytes_fuzz(raw: bytes) -> None:
    try:
        c = CID.from_bytes(raw)
    except InvalidCID:
        return
    assert bytes(c) == raw


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=multibase.B36_ALPHABET, max_size=70).map(lambda s: "k" + s))
def test_parse_fuzz_base36(text: str) -> None:
    try:
        c = CID.parse(text)
    except InvalidCID:
        return
    assert CID.from_bytes(bytes(c)) == c

"""Tests for the DAG-PB codec (and the DAG-CBOR link reader) against the IPLD codec-fixtures."""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _fixtures import car_blocks, car_header, require_fixtures
from ipmirror.codec import dagcbor, dagpb, varint
from ipmirror.codec.cid import CID, DAG_CBOR, DAG_PB, RAW, multihash_sha256
from ipmirror.codec.dagpb import PBLink, PBNode
from ipmirror.errors import DecodeError, InvalidInput

FAST = settings(max_examples=200, deadline=None)

# The 17 dagpb_* folders of ipld/codec-fixtures (see ../shared/fixtures/README.md).
DAGPB_FIXTURES = [
    "dagpb_11unnamedlinks+data",
    "dagpb_1link",
    "dagpb_2link+data",
    "dagpb_4namedlinks+data",
    "dagpb_7unnamedlinks+data",
    "dagpb_Data_some",
    "dagpb_Data_zero",
    "dagpb_Links_Hash_some",
    "dagpb_Links_Hash_some_Name_some",
    "dagpb_Links_Hash_some_Name_zero",
    "dagpb_Links_Hash_some_Tsize_some",
    "dagpb_Links_Hash_some_Tsize_zero",
    "dagpb_empty",
    "dagpb_simple_forms_1",
    "dagpb_simple_forms_2",
    "dagpb_simple_forms_3",
    "dagpb_simple_forms_4",
]

CID_A = CID.parse("QmNPWHBrVQiiV8FpyNuEPhB9E2rbvdy9Yx79EY1EJuyf9o")
CID_RAW = CID.hash(RAW, b"\x00\x01\x02\x03\x04")


def _fixture_file(folder: str, suffix: str) -> pathlib.Path:
    directory = require_fixtures("codec-fixtures", "fixtures", folder)
    files = sorted(directory.glob(f"*.{suffix}"))
    if len(files) != 1:
        pytest.skip(f"{folder}: expected one .{suffix} file, found {len(files)}")
    return files[0]


# --------------------------------------------------------------------------------------------------
# A tiny DAG-CBOR reader (test oracle, independent of ipmirror.codec.dagcbor)
# --------------------------------------------------------------------------------------------------


def cbor_decode(buf: bytes) -> Any:
    value, pos = _cbor_item(buf, 0)
    assert pos == len(buf), "trailing bytes after DAG-CBOR item"
    return value


def _cbor_item(buf: bytes, pos: int) -> tuple[Any, int]:
    ib = buf[pos]
    major, info = ib >> 5, ib & 31
    pos += 1
    if major == 7:
        simple = {20: False, 21: True, 22: None}
        if info in simple:
            return simple[info], pos
        fmt = {25: ">e", 26: ">f", 27: ">d"}[info]
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, buf[pos:pos + size])[0], pos + size
    if info < 24:
        arg = info
    else:
        size = 1 << (info - 24)
        arg = int.from_bytes(buf[pos:pos + size], "big")
        pos += size
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major in (2, 3):
        chunk = buf[pos:pos + arg]
        return (chunk if major == 2 else chunk.decode("utf-8")), pos + arg
    if major == 4:
        items = []
        for _ in range(arg):
            item, pos = _cbor_item(buf, pos)
            items.append(item)
        return items, pos
    if major == 5:
        out = {}
        for _ in range(arg):
            key, pos = _cbor_item(buf, pos)
            out[key], pos = _cbor_item(buf, pos)
        return out, pos
    assert major == 6 and arg == 42, f"unexpected CBOR tag {arg}"
    raw, pos = _cbor_item(buf, pos)
    assert raw[0] == 0
    return CID.from_bytes(raw[1:]), pos


def _cbor_cids(value: Any) -> list[CID]:
    if isinstance(value, CID):
        return [value]
    if isinstance(value, list):
        return [c for v in value for c in _cbor_cids(v)]
    if isinstance(value, dict):
        return [c for v in value.values() for c in _cbor_cids(v)]
    return []


def dag_json_to_form(value: Any) -> Any:
    """Convert a DAG-JSON value (as parsed by ``json``) to the IPLD data-model form."""
    if isinstance(value, dict):
        if set(value) == {"/"}:
            inner = value["/"]
            if isinstance(inner, str):
                return CID.parse(inner)
            if isinstance(inner, dict) and set(inner) == {"bytes"}:
                text = inner["bytes"]
                return base64.b64decode(text + "=" * (-len(text) % 4))
        return {k: dag_json_to_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [dag_json_to_form(v) for v in value]
    return value


def test_dag_json_to_form_helper() -> None:
    form = dag_json_to_form({"Data": {"/": {"bytes": "AQID"}}, "Links": [{"Hash": {"/": str(CID_A)}}]})
    assert form == {"Data": b"\x01\x02\x03", "Links": [{"Hash": CID_A}]}


def test_cbor_oracle_helper() -> None:
    assert cbor_decode(bytes.fromhex("a2616101616282f5f6")) == {"a": 1, "b": [True, None]}
    assert cbor_decode(bytes.fromhex("3863")) == -100
    assert cbor_decode(b"\xd8\x2a\x58\x23\x00" + bytes(CID_A)) == CID_A


# --------------------------------------------------------------------------------------------------
# Positive fixtures
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", DAGPB_FIXTURES)
def test_fixture_roundtrip_and_hash(folder: str) -> None:
    path = _fixture_file(folder, "dag-pb")
    block = path.read_bytes()
    expected = CID.parse(path.stem)
    assert expected.codec == DAG_PB
    assert multihash_sha256(block) == expected.multihash
    assert CID.hash(DAG_PB, block) == expected
    node = dagpb.decode(block)
    assert dagpb.encode(node) == block
    assert dagpb.encode_links(node.links, node.data) == block
    assert dagpb.decode(memoryview(block)) == node
    # Every link's encoded size is what encoded_link_size predicts.
    link_bytes = sum(
        dagpb.encoded_link_size(
            len(bytes(lk.hash)),
            None if lk.name is None else len(dagpb.name_bytes(lk.name)),
            lk.tsize,
        )
        for lk in node.links
    )
    data_bytes = 0 if node.data is None else 1 + varint.size(len(node.data)) + len(node.data)
    assert link_bytes + data_bytes == len(block)


@pytest.mark.parametrize("folder", DAGPB_FIXTURES)
def test_fixture_matches_dag_cbor_sibling(folder: str) -> None:
    pb_path = _fixture_file(folder, "dag-pb")
    cbor_path = _fixture_file(folder, "dag-cbor")
    cbor_block = cbor_path.read_bytes()
    cbor_cid = CID.parse(cbor_path.stem)
    assert cbor_cid.codec == DAG_CBOR
    assert multihash_sha256(cbor_block) == cbor_cid.multihash

    node = dagpb.decode(pb_path.read_bytes())
    form = cbor_decode(cbor_block)
    assert set(form) <= {"Data", "Links"}
    assert form.get("Data") == node.data
    assert len(form["Links"]) == len(node.links)
    for want, got in zip(form["Links"], node.links, strict=True):
        assert want["Hash"] == got.hash
        assert bytes(want["Hash"]) == bytes(got.hash)
        assert want.get("Name") == got.name
        assert want.get("Tsize") == got.tsize
    # The data-model form builds the identical block.
    assert from_form_bytes(form) == pb_path.read_bytes()
    # And dagcbor.links finds exactly the link CIDs, in order.
    assert dagcbor.links(cbor_block) == [lk.hash for lk in node.links]
    assert dagcbor.links(cbor_block) == _cbor_cids(form)


def from_form_bytes(form: Any) -> bytes:
    return dagpb.encode(dagpb.from_form(form))


@pytest.mark.parametrize("folder", DAGPB_FIXTURES)
def test_fixture_matches_libipld(folder: str) -> None:
    libipld = pytest.importorskip("libipld")
    pb_path = _fixture_file(folder, "dag-pb")
    cbor_path = _fixture_file(folder, "dag-cbor")
    node = dagpb.decode(pb_path.read_bytes())
    form = libipld.decode_dag_cbor(cbor_path.read_bytes())
    assert form.get("Data") == node.data
    assert [CID.from_bytes(lk["Hash"]) for lk in form["Links"]] == [lk.hash for lk in node.links]
    assert [lk.get("Name") for lk in form["Links"]] == [lk.name for lk in node.links]
    assert [lk.get("Tsize") for lk in form["Links"]] == [lk.tsize for lk in node.links]


def test_fixture_specific_values() -> None:
    block = _fixture_file("dagpb_Links_Hash_some_Tsize_some", "dag-pb").read_bytes()
    node = dagpb.decode(block)
    assert node.data is None
    assert node.links == (PBLink(CID.from_bytes(bytes.fromhex("015500050001020304")), None, 2**53 - 1),)
    assert dagpb.decode(_fixture_file("dagpb_empty", "dag-pb").read_bytes()) == PBNode()
    assert dagpb.decode(_fixture_file("dagpb_Data_zero", "dag-pb").read_bytes()) == PBNode(b"")
    name_zero = dagpb.decode(_fixture_file("dagpb_Links_Hash_some_Name_zero", "dag-pb").read_bytes())
    assert name_zero.links[0].name == ""  # present but empty, distinct from absent
    forms3 = dagpb.decode(_fixture_file("dagpb_simple_forms_3", "dag-pb").read_bytes())
    assert [lk.name for lk in forms3.links] == [None, "a", "a"]


# --------------------------------------------------------------------------------------------------
# Negative fixtures
# --------------------------------------------------------------------------------------------------


def _negative(kind: str) -> list[dict[str, Any]]:
    directory = require_fixtures("codec-fixtures", "negative-fixtures", "dag-pb", kind)
    cases: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.json")):
        for case in json.loads(path.read_text("utf-8")):
            cases.append({**case, "file": path.name})
    assert cases
    return cases


def test_negative_decode_fixtures() -> None:
    cases = _negative("decode")
    assert len(cases) >= 9
    accepted = []
    for case in cases:
        try:
            dagpb.decode(bytes.fromhex(case["hex"]))
        except DecodeError:
            continue
        accepted.append(case["name"])
    assert accepted == []


def test_negative_encode_fixtures() -> None:
    cases = _negative("encode")
    assert len(cases) >= 60
    accepted = []
    for case in cases:
        form = dag_json_to_form(case["dag-json"])
        try:
            dagpb.from_form(form)
        except InvalidInput:
            continue
        accepted.append(f"{case['file']}: {case['name']}")
    assert accepted == []


# --------------------------------------------------------------------------------------------------
# Hand-written decode/encode cases
# --------------------------------------------------------------------------------------------------

LINK_A = b"\x0a\x22" + bytes(CID_A)  # Hash field of a link to CID_A


def _node(*fields: bytes) -> bytes:
    return b"".join(fields)


def _links_field(body: bytes) -> bytes:
    return b"\x12" + varint.encode(len(body)) + body


def test_decode_simple() -> None:
    block = _links_field(LINK_A + b"\x12\x03foo\x18\x05") + b"\x0a\x02hi"
    assert dagpb.decode(block) == PBNode(b"hi", (PBLink(CID_A, "foo", 5),))
    assert dagpb.encode(PBNode(b"hi", (PBLink(CID_A, "foo", 5),))) == block


DECODE_REJECTS = {
    "unknown node field 3": b"\x1a\x00",
    "node field 0": b"\x02\x00",
    "Data as varint": b"\x08\x01",
    "Links as varint": b"\x10\x01",
    "Data fixed64": b"\x09" + b"\x00" * 8,
    "truncated Data": b"\x0a\x05abc",
    "truncated key": b"\x8a",
    "truncated length": b"\x0a",
    "Data twice": b"\x0a\x01a\x0a\x01b",
    "Links after Data": b"\x0a\x01a" + _links_field(LINK_A),
    "non-minimal Data length": b"\x0a\x81\x00" + b"a",
    "non-minimal key": b"\x8a\x00\x00",
    "link with unknown field": _links_field(LINK_A + b"\x20\x01"),
    "link Name before Hash": _links_field(b"\x12\x01a" + LINK_A),
    "link Tsize before Name": _links_field(LINK_A + b"\x18\x01\x12\x01a"),
    "link Hash twice": _links_field(LINK_A + LINK_A),
    "link Name twice": _links_field(LINK_A + b"\x12\x01a\x12\x01b"),
    "link Hash as varint": _links_field(b"\x08\x01"),
    "link Name as varint": _links_field(LINK_A + b"\x10\x01"),
    "link Tsize as bytes": _links_field(LINK_A + b"\x1a\x01\x01"),
    "link Hash not a CID": _links_field(b"\x0a\x03abc"),
    "link Hash truncated CID": _links_field(b"\x0a\x21" + bytes(CID_A)[:-1]),
    "link Hash with trailing byte": _links_field(b"\x0a\x23" + bytes(CID_A) + b"\x00"),
    "link Tsize runs past link": _links_field(LINK_A + b"\x18") + b"\x01",
    "link Name runs past link": _links_field(LINK_A + b"\x12\x05ab") + b"cde",
    "link truncated": b"\x12\x30" + LINK_A,
    "link Tsize truncated": _links_field(LINK_A + b"\x18\x80"),
    "link identity CID over 128 bytes": _links_field(
        b"\x0a" + varint.encode(133) + b"\x01\x55\x00\x81\x01" + b"A" * 129
    ),
}


@pytest.mark.parametrize("name", sorted(DECODE_REJECTS))
def test_decode_rejects(name: str) -> None:
    with pytest.raises(DecodeError):
        dagpb.decode(DECODE_REJECTS[name])


def test_decode_error_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        dagpb.decode(b"\x1a\x00")
    with pytest.raises(ValueError):
        dagpb.decode(b"\x1a\x00")


def test_decode_accepts_unsorted_links() -> None:
    """Sorting is for encoders; decoders keep the stored order (DAG-PB and UnixFS specs)."""
    block = _links_field(LINK_A + b"\x12\x01b") + _links_field(LINK_A + b"\x12\x01a")
    node = dagpb.decode(block)
    assert [lk.name for lk in node.links] == ["b", "a"]
    with pytest.raises(InvalidInput):
        dagpb.encode(node)


def test_names_non_utf8_roundtrip() -> None:
    raw_name = b"caf\xe9-\xff\xfe"
    block = _links_field(LINK_A + b"\x12" + varint.encode(len(raw_name)) + raw_name)
    node = dagpb.decode(block)
    assert node.links[0].name is not None
    assert dagpb.name_bytes(node.links[0].name) == raw_name
    assert dagpb.encode(node) == block


def test_encode_sorting_rules() -> None:
    # By bytes, not by code points or length first; a missing Name sorts as b"".
    ok = PBNode(None, (
        PBLink(CID_A), PBLink(CID_A, ""), PBLink(CID_A, "A"), PBLink(CID_A, "a"),
        PBLink(CID_A, "aa"), PBLink(CID_A, "ab"), PBLink(CID_A, "b"), PBLink(CID_A, "é"),
    ))
    assert dagpb.decode(dagpb.encode(ok)) == ok
    for bad in (("b", "a"), ("aa", "a"), ("é", "z"), ("a", None)):
        node = PBNode(None, tuple(PBLink(CID_A, name) for name in bad))
        with pytest.raises(InvalidInput):
            dagpb.encode(node)


def test_encode_rejects_negative_tsize() -> None:
    with pytest.raises(InvalidInput):
        dagpb.encode(PBNode(None, (PBLink(CID_A, "x", -1),)))


def test_encode_empty_and_data_only() -> None:
    assert dagpb.encode(PBNode()) == b""
    assert dagpb.encode(PBNode(b"")) == b"\x0a\x00"
    assert dagpb.encode(PBNode(bytes.fromhex("0801"))) == bytes.fromhex("0a020801")


def test_from_form_valid() -> None:
    node = dagpb.from_form({"Data": b"\x01", "Links": [{"Hash": CID_A, "Name": "x", "Tsize": 3}]})
    assert node == PBNode(b"\x01", (PBLink(CID_A, "x", 3),))
    assert dagpb.from_form({"Links": []}) == PBNode()
    assert dagpb.from_form({"Links": [{"Hash": CID_RAW}]}) == PBNode(None, (PBLink(CID_RAW),))


def test_from_form_rejects_unencodable_name() -> None:
    """A str that is not valid Unicode (a lone surrogate outside surrogateescape's range) cannot be
    encoded as a UTF-8 Name; from_form is the strict entry point and must say InvalidInput."""
    with pytest.raises(InvalidInput):
        dagpb.from_form({"Links": [{"Hash": CID_A, "Name": "\ud800"}]})


def test_decode_rejects_tsize_over_uint64() -> None:
    """Tsize is a protobuf uint64: a varint whose value needs more than 64 bits is malformed."""
    for value in (2**64, 2**70 - 1):
        block = _links_field(LINK_A + b"\x18" + varint.encode(value))
        with pytest.raises(DecodeError):
            dagpb.decode(block)
    max_ok = _links_field(LINK_A + b"\x18" + varint.encode(2**64 - 1))
    assert dagpb.decode(max_ok).links[0].tsize == 2**64 - 1


def test_from_form_rejects_tsize_over_uint64() -> None:
    with pytest.raises(InvalidInput):
        dagpb.from_form({"Links": [{"Hash": CID_A, "Tsize": 2**64}]})


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

link_cids = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda d: CID(0, DAG_PB, b"\x12\x20" + d)),
    st.builds(lambda codec, d: CID(1, codec, b"\x12\x20" + d),
              st.sampled_from([RAW, DAG_PB, DAG_CBOR]), st.binary(min_size=32, max_size=32)),
    st.builds(CID.identity, st.sampled_from([RAW, DAG_PB]), st.binary(max_size=40)),
)
names = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.binary(max_size=8).map(lambda b: b.decode("utf-8", "surrogateescape")),
)
tsizes = st.one_of(st.none(), st.integers(min_value=0, max_value=2**64 - 1))
pb_links = st.builds(PBLink, link_cids, names, tsizes)


def _sort_key(link: PBLink) -> bytes:
    return dagpb.name_bytes(link.name) if link.name is not None else b""


pb_nodes = st.builds(
    lambda data, links: PBNode(data, tuple(sorted(links, key=_sort_key))),
    st.one_of(st.none(), st.binary(max_size=64)),
    st.lists(pb_links, max_size=6),
)


@FAST
@given(pb_nodes)
def test_roundtrip_property(node: PBNode) -> None:
    block = dagpb.encode(node)
    assert dagpb.decode(block) == node
    assert dagpb.encode(dagpb.decode(block)) == block
    size = sum(
        dagpb.encoded_link_size(
            len(bytes(lk.hash)),
            None if lk.name is None else len(dagpb.name_bytes(lk.name)),
            lk.tsize,
        )
        for lk in node.links
    )
    if node.data is not None:
        size += 1 + varint.size(len(node.data)) + len(node.data)
    assert size == len(block)


@FAST
@given(pb_nodes)
def test_from_form_property(node: PBNode) -> None:
    form: dict[str, Any] = {"Links": []}
    if node.data is not None:
        form["Data"] = node.data
    for lk in node.links:
        entry: dict[str, Any] = {"Hash": lk.hash}
        if lk.name is not None:
            entry["Name"] = lk.name
        if lk.tsize is not None:
            entry["Tsize"] = lk.tsize
        form["Links"].append(entry)
    assert dagpb.from_form(form) == node


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_decode_fuzz_random_bytes(block: bytes) -> None:
    try:
        node = dagpb.decode(block)
    except DecodeError:
        return
    assert isinstance(node, PBNode)


@settings(max_examples=300, deadline=None)
@given(pb_nodes, st.data())
def test_decode_fuzz_mutations(node: PBNode, data: st.DataObject) -> None:
    block = bytearray(dagpb.encode(node))
    if not block:
        return
    op = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
    i = data.draw(st.integers(min_value=0, max_value=len(block) - 1))
    if op == "flip":
        block[i] ^= data.draw(st.integers(min_value=1, max_value=255))
    elif op == "truncate":
        del block[i:]
    elif op == "insert":
        block.insert(i, data.draw(st.integers(min_value=0, max_value=255)))
    else:
        del block[i]
    try:
        decoded = dagpb.decode(bytes(block))
    except DecodeError:
        return
    assert isinstance(decoded, PBNode)


# --------------------------------------------------------------------------------------------------
# dagcbor.links
# --------------------------------------------------------------------------------------------------


def test_dagcbor_links_basic() -> None:
    cid_bytes = b"\x00" + bytes(CID_A)
    tagged = b"\xd8\x2a\x58" + bytes([len(cid_bytes)]) + cid_bytes
    doc = b"\xa2\x61a" + tagged + b"\x61b\x82" + tagged + b"\xf6"  # {"a": CID, "b": [CID, null]}
    assert dagcbor.links(doc) == [CID_A, CID_A]
    assert dagcbor.links(b"\xa0") == []
    assert dagcbor.links(b"\xfb" + b"\x00" * 8) == []  # float64
    assert dagcbor.links(b"\xc1\x1a\x00\x00\x00\x01") == []  # other tags are ignored
    for bad in (b"", b"\x82\x01", b"\x5f", b"\x9f\xff", b"\x44ab",
                b"\xd8\x2a\x41\x01", b"\xd8\x2a\x43\x00\x01\x02"):
        with pytest.raises(DecodeError):
            dagcbor.links(bad)


CAR_ROOTS = {
    "path_gateway_dag/dag-cbor-traversal.car":
        "bafyreibs4utpgbn7uqegmd2goqz4bkyflre2ek2iwv743fhvylwi4zeeim",
    "path_gateway_dag/dag-json-traversal.car":
        "baguqeeram5ujjqrwheyaty3w5gdsmoz6vittchvhk723jjqxk7hakxkd47xq",
    "path_gateway_unixfs/symlink.car": "QmWvY6FaqFMS89YAQ9NAPjVP4WZKA1qbHbicc9HeSKQTgt",
    "trustless_gateway_car/dir-with-dag-cbor-with-links.car":
        "bafybeia264q44a3kmfc2otctzu4egp2k235o3t7mslz2yjraymp4nv6asi",
}


@pytest.mark.parametrize("car", sorted(CAR_ROOTS))
def test_dagcbor_links_in_car_header(car: str) -> None:
    path = require_fixtures("gateway-conformance", car)
    header = car_header(path)
    assert dagcbor.links(header) == [CID.parse(CAR_ROOTS[car])]
    assert cbor_decode(header) == {"roots": [CID.parse(CAR_ROOTS[car])], "version": 1}


@pytest.mark.parametrize(
    "car",
    ["path_gateway_dag/dag-cbor-traversal.car", "trustless_gateway_car/dir-with-dag-cbor-with-links.car"],
)
def test_dagcbor_links_on_car_blocks(car: str) -> None:
    path = require_fixtures("gateway-conformance", car)
    seen = 0
    for cid, block in car_blocks(path):
        assert hashlib.sha256(block).digest() == cid.digest
        if cid.codec == DAG_CBOR:
            seen += 1
            assert dagcbor.links(block) == _cbor_cids(cbor_decode(block))
        elif cid.codec == DAG_PB:
            dagpb.decode(block)
    assert seen > 0


def test_split_agrees_with_decode() -> None:
    """`split` (links as encoded bytes, for updaters) sees what `decode` sees, and joining its
    pieces gives the block back."""
    from ipmirror.codec import dagpb, varint
    from ipmirror.codec.cid import CID as C
    links = tuple(dagpb.PBLink(C.hash(0x55, b"%d" % i), f"n{i:03d}\udcff", 10 + i * 300) for i in range(40))
    block = dagpb.encode(dagpb.PBNode(b"\x08\x01", links))
    raw, data = dagpb.split(block)
    node = dagpb.decode(block)
    assert data == node.data
    assert [(n, t, h) for n, t, h, _r in raw] == [(lk.name, lk.tsize, lk.hash.buffer) for lk in node.links]
    assert b"".join(r for *_x, r in raw) + b"\x0a" + varint.encode(len(data)) + data == block
    with pytest.raises(DecodeError):
        dagpb.split(block[:-3] + b"\x12\x05")

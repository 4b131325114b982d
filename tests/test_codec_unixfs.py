"""Tests for the UnixFS Data protobuf, driven by the UnixFS spec's test vectors."""

from __future__ import annotations

import functools
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _fixtures import car_block_map, require_fixtures
from ipmirror.codec import dagpb, unixfs_pb, varint
from ipmirror.codec.cid import CID, DAG_PB, IDENTITY, RAW, multihash_sha256
from ipmirror.codec.dagpb import PBLink, PBNode
from ipmirror.codec.unixfs_pb import (
    DIRECTORY,
    FILE,
    HAMT_SHARD,
    METADATA,
    MURMUR3_X64_64,
    SYMLINK,
    MTime,
    UnixFSData,
    encode_mtime,
    file_leaf,
)
from ipmirror.errors import DecodeError, InvalidCID

FAST = settings(max_examples=200, deadline=None)

GC = ("gateway-conformance",)


@functools.cache
def _car(rel: str) -> dict[CID, bytes]:
    return car_block_map(require_fixtures(*GC, *rel.split("/")))


def _block(car: str, cid: str) -> bytes:
    blocks = _car(car)
    c = CID.parse(cid)
    assert c in blocks, f"{cid} not in {car}"
    block = blocks[c]
    assert multihash_sha256(block) == c.multihash
    return block


def _unixfs(car: str, cid: str) -> tuple[PBNode, UnixFSData, int]:
    block = _block(car, cid)
    node = dagpb.decode(block)
    assert dagpb.encode(node) == block
    assert node.data is not None
    return node, UnixFSData.decode(node.data), len(block)


# --------------------------------------------------------------------------------------------------
# Well-known CIDs and identity limits
# --------------------------------------------------------------------------------------------------


def test_well_known_empty_directory() -> None:
    data = UnixFSData(DIRECTORY).encode()
    assert data == bytes.fromhex("0801")
    block = dagpb.encode(PBNode(data))
    assert block == bytes.fromhex("0a020801")
    assert str(CID.hash(DAG_PB, block, version=0)) == "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    assert str(CID.hash(DAG_PB, block)) == "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
    assert str(CID.identity(DAG_PB, block)) == "bafyaabakaieac"
    assert UnixFSData.decode(dagpb.decode(block).data or b"") == UnixFSData(DIRECTORY)


def test_well_known_empty_file() -> None:
    data = UnixFSData(FILE, filesize=0).encode()
    assert data == bytes.fromhex("08021800")
    assert file_leaf(b"") == data
    block = dagpb.encode(PBNode(data))
    assert block == bytes.fromhex("0a0408021800")
    assert str(CID.hash(DAG_PB, block, version=0)) == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    assert str(CID.hash(DAG_PB, block)) == "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y"
    decoded = UnixFSData.decode(data)
    assert decoded == UnixFSData(FILE, filesize=0)
    assert decoded.content_size() == 0


def test_well_known_empty_raw() -> None:
    assert str(CID.hash(RAW, b"")) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    inline = CID.parse("bafkqaaa")
    assert inline == CID.identity(RAW, b"")
    assert inline.hash_code == IDENTITY
    assert inline.identity_data() == b""


IDENTITY_128 = (
    "bafkqbaabijbeeqscijbeeqscijbeeqscijbeeqscijbeeqscijbeeqscijbeeqscijbeeqscijbeeqscijbeeqscijbeeqs"
    "cijbeeqscijbeeqscijbeeqscijbeeqscijbeeqscijbeeqscijbeeqscijbeeqscijbeeqscijbeeqscijbeeqscijbeeqs"
    "cijbeeqscijbeeqscijbee"
)
IDENTITY_129 = (
    "bafkqbaibifaucqkbifaucqkbifaucqkbifaucqkbifaucqkbifaucqkbifaucqkbifaucqkbifaucqkbifaucqkbifaucqk"
    "bifaucqkbifaucqkbifaucqkbifaucqkbifaucqkbifaucqkbifaucqkbifaucqkbifaucqkbifaucqkbifaucqkbifaucqk"
    "bifaucqkbifaucqkbifaucqi"
)


def test_identity_cid_size_limit() -> None:
    c = CID.parse(IDENTITY_128)
    assert c.codec == RAW
    assert c.identity_data() == b"B" * 128
    assert str(c) == IDENTITY_128
    assert CID.identity(RAW, b"B" * 128) == c
    with pytest.raises(InvalidCID):
        CID.parse(IDENTITY_129)
    with pytest.raises(InvalidCID):
        CID.identity(RAW, b"A" * 129)
    with pytest.raises(InvalidCID):
        CID.from_bytes(b"\x01\x55\x00\x81\x01" + b"A" * 129)
    # As a dag-pb link, the 129-byte identity CID makes the block invalid.
    bad_link = b"\x0a" + varint.encode(133) + b"\x01\x55\x00\x81\x01" + b"A" * 129
    with pytest.raises(DecodeError):
        dagpb.decode(b"\x12" + varint.encode(len(bad_link)) + bad_link)


def test_identity_vectors_match_spec_file() -> None:
    text = require_fixtures("unixfs-vectors.md").read_text("utf-8")
    assert IDENTITY_128 in text
    assert IDENTITY_129 in text


# --------------------------------------------------------------------------------------------------
# File vectors
# --------------------------------------------------------------------------------------------------

DIR_WITH_FILES = "path_gateway_unixfs/dir-with-files.car"
HELLO = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
ASCII = "bafkreifkam6ns4aoolg3wedr4uzrs3kvq66p4pecirz6y2vlrngla62mxm"
MULTIBLOCK = "bafybeigcisqd7m5nf3qmuvjdbakl5bdnh4ocrmacaqkpuh77qjvggmt2sa"
MULTIBLOCK_LEAVES = [
    ("bafkreie5noke3mb7hqxukzcy73nl23k6lxszxi5w3dtmuwz62wnvkpsscm", 256),
    ("bafkreih4ephajybraj6wnxsbwjwa77fukurtpl7oj7t7pfq545duhot7cq", 256),
    ("bafkreigu7buvm3cfunb35766dn7tmqyh2um62zcio63en2btvxuybgcpue", 256),
    ("bafkreicll3huefkc3qnrzeony7zcfo7cr3nbx64hnxrqzsixpceg332fhe", 256),
    ("bafkreifst3pqztuvj57lycamoi7z34b4emf7gawxs74nwrc2c7jncmpaqm", 2),
]


def test_single_raw_block_file() -> None:
    c = CID.parse(HELLO)
    assert c.codec == RAW
    assert _block(DIR_WITH_FILES, HELLO) == b"hello world\n"


def test_single_dag_pb_block_file() -> None:
    block = bytes.fromhex(
        "0a260802122048656c6c6f2066726f6d2049504653204761746577617920436865636b65720a1820"
    )
    assert len(block) == 40
    assert str(CID.hash(DAG_PB, block)) == "bafybeifx7yeb55armcsxwwitkymga5xf53dxiarykms3ygqic223w5sk3m"
    node = dagpb.decode(block)
    assert node.links == ()
    assert node.data is not None
    msg = UnixFSData.decode(node.data)
    content = b"Hello from IPFS Gateway Checker\n"
    assert msg == UnixFSData(FILE, data=content, filesize=32)
    assert msg.content_size() == 32
    assert len(block) - len(content) == 8  # dag-pb envelope
    assert msg.encode() == node.data
    assert file_leaf(content) == node.data
    assert dagpb.encode(PBNode(file_leaf(content))) == block


def test_multi_block_file() -> None:
    node, msg, size = _unixfs(DIR_WITH_FILES, MULTIBLOCK)
    assert size == 245
    assert msg.type == FILE
    assert msg.type_name == "file"
    assert msg.data is None
    assert msg.filesize == 1026
    assert msg.content_size() == 1026
    assert msg.blocksizes == (256, 256, 256, 256, 2)
    assert len(msg.blocksizes) == len(node.links)
    assert [(str(lk.hash), lk.tsize) for lk in node.links] == MULTIBLOCK_LEAVES
    # The spec says "Links have no Names (must be absent)"; this block stores empty names, which
    # the spec says to treat as absent.
    assert all(lk.name in (None, "") for lk in node.links)
    content = b"".join(_block(DIR_WITH_FILES, cid) for cid, _ in MULTIBLOCK_LEAVES)
    assert len(content) == 1026
    assert [len(_block(DIR_WITH_FILES, cid)) for cid, _ in MULTIBLOCK_LEAVES] == list(msg.blocksizes)
    assert msg.encode() == node.data


def test_file_with_missing_blocks() -> None:
    path = require_fixtures(
        "codec-fixtures", "fixtures", "dagpb_7unnamedlinks+data",
        "bafybeibfhhww5bpsu34qs7nz25wp7ve36mcc5mxd5du26sr45bbnjhpkei.dag-pb",
    )
    node = dagpb.decode(path.read_bytes())
    assert node.data is not None
    msg = UnixFSData.decode(node.data)
    assert msg.type == FILE
    assert msg.filesize == 306208971  # "306MB total (from metadata)"
    assert len(node.links) == 7
    assert len(msg.blocksizes) == 7
    assert sum(msg.blocksizes) == msg.filesize
    assert all(lk.name in (None, "") for lk in node.links)
    assert msg.encode() == node.data


def test_range_requests_with_missing_blocks() -> None:
    car = "trustless_gateway_car/file-3k-and-3-blocks-missing-block.car"
    node, msg, _ = _unixfs(car, "QmYhmPjhFjYFyaoiuNzYv8WGavpSRDwdHWe5B4M5du5Rtk")
    assert msg.type == FILE
    assert msg.filesize == 3072
    assert msg.blocksizes == (1024, 1024, 1024)
    assert len(node.links) == 3
    blocks = _car(car)
    first, middle, last = (lk.hash for lk in node.links)
    assert str(first) == "QmPKt7ptM2ZYSGPUc8PmPT2VBkLDK3iqpG9TBJY7PCE9rF"
    assert str(last) == "QmWXY482zQdwecnfBsj78poUUuPXvyw2JAFAEMw4tzTavV"
    assert first in blocks
    assert last in blocks
    assert middle not in blocks  # intentionally removed
    for leaf in (first, last):
        leaf_node = dagpb.decode(blocks[leaf])
        assert leaf_node.data is not None
        leaf_msg = UnixFSData.decode(leaf_node.data)
        assert leaf_msg.content_size() == 1024
        assert leaf_msg.data is not None
        assert len(leaf_msg.data) == 1024


# --------------------------------------------------------------------------------------------------
# Directory vectors
# --------------------------------------------------------------------------------------------------


def _check_simple_directory(car: str) -> None:
    node, msg, size = _unixfs(car, "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy")
    assert msg == UnixFSData(DIRECTORY)
    assert size == 227  # the spec says 185; the block that hashes to the CID is 227 bytes
    assert [(lk.name, str(lk.hash), lk.tsize) for lk in node.links] == [
        ("ascii-copy.txt", ASCII, 31),
        ("ascii.txt", ASCII, 31),
        ("hello.txt", HELLO, 12),
        ("multiblock.txt", MULTIBLOCK, 1271),
    ]
    names = [lk.name for lk in node.links]
    assert names == sorted(names)
    assert size + sum(lk.tsize or 0 for lk in node.links) == 1572
    assert _block(car, ASCII) == b"hello application/vnd.ipld.car\n"  # 31 bytes


def test_simple_directory() -> None:
    _check_simple_directory(DIR_WITH_FILES)


def test_deduplication() -> None:
    _check_simple_directory("trustless_gateway_car/dir-with-duplicate-files.car")


def test_nested_directories() -> None:
    car = "trustless_gateway_car/subdir-with-two-single-block-files.car"
    root, msg, size = _unixfs(car, "bafybeietjm63oynimmv5yyqay33nui4y4wx6u3peezwetxgiwvfmelutzu")
    assert msg.type == DIRECTORY
    assert size == 55
    assert [lk.name for lk in root.links] == ["subdir"]
    sub, sub_msg, sub_size = _unixfs(car, str(root.links[0].hash))
    assert sub_msg.type == DIRECTORY
    assert sub_size == 110
    assert [(lk.name, str(lk.hash)) for lk in sub.links] == [("ascii.txt", ASCII), ("hello.txt", HELLO)]


def test_nested_directories_second() -> None:
    car = "path_gateway_dag/dag-pb.car"
    root, msg, _ = _unixfs(car, "bafybeiegxwlgmoh2cny7qlolykdf7aq7g6dlommarldrbm7c4hbckhfcke")
    assert msg.type == DIRECTORY
    assert [lk.name for lk in root.links] == ["foo", "foo.txt"]
    assert root.links[1].hash.codec == RAW  # raw leaf
    sub, sub_msg, _ = _unixfs(car, str(root.links[0].hash))
    assert sub_msg.type == DIRECTORY
    for lk in sub.links:
        assert lk.hash.codec == RAW


def _walk_names(car: str, cid: CID) -> list[str]:
    blocks = _car(car)
    out: list[str] = []
    if cid.codec != DAG_PB or cid not in blocks:
        return out
    node = dagpb.decode(blocks[cid])
    assert node.data is not None
    UnixFSData.decode(node.data)
    for lk in node.links:
        assert lk.name is not None
        out.append(lk.name)
        out += _walk_names(car, lk.hash)
    return out


def test_special_characters_in_filenames() -> None:
    car = "path_gateway_tar/fixtures.car"
    names = _walk_names(car, CID.parse("bafybeig6ka5mlwkl4subqhaiatalkcleo4jgnr3hqwvpmsqfca27cijp3i"))
    assert {"ą", "ę", "file-źł.txt"} <= set(names)
    for name in names:
        dagpb.name_bytes(name).decode("utf-8")  # strict UTF-8, no surrogate escapes


def test_special_characters_percent_encoded() -> None:
    car = "path_gateway_unixfs/dir-with-percent-encoded-filename.car"
    root, msg, _ = _unixfs(car, "bafybeig675grnxcmshiuzdaz2xalm6ef4thxxds6o6ypakpghm5kghpc34")
    assert msg.type == DIRECTORY
    assert [lk.name for lk in root.links] == ["Portugal%2C+España=Peninsula Ibérica.txt"]


def test_directory_with_missing_blocks() -> None:
    path = require_fixtures(
        "codec-fixtures", "fixtures", "dagpb_4namedlinks+data",
        "bafybeigcsevw74ssldzfwhiijzmg7a35lssfmjkuoj2t5qs5u5aztj47tq.dag-pb",
    )
    node = dagpb.decode(path.read_bytes())
    assert node.data is not None
    assert UnixFSData.decode(node.data) == UnixFSData(DIRECTORY)
    assert [lk.name for lk in node.links] == ["audio_only.m4a", "chat.txt", "playback.m3u", "zoom_0.mp4"]


def test_hamt_sharded_directory() -> None:
    car = "trustless_gateway_car/single-layer-hamt-with-multi-block-files.car"
    node, msg, size = _unixfs(car, "bafybeidbclfqleg2uojchspzd4bob56dqetqjsj27gy2cq3klkkgxtpn4i")
    assert size == 12046
    assert msg.type == HAMT_SHARD
    assert msg.type_name == "hamt-sharded-directory"
    assert msg.fanout == 256
    assert msg.hash_type == MURMUR3_X64_64 == 0x22
    assert msg.data is not None
    assert len(msg.data) == 256 // 8  # bitfield
    assert msg.encode() == node.data
    assert len(node.links) > 0
    for lk in node.links:
        assert lk.name is not None
        prefix = lk.name[:2]
        assert prefix == prefix.upper()
        int(prefix, 16)
    # Every child is itself HAMT shard or an entry named prefix + file name.
    blocks = _car(car)
    files = 0
    for lk in node.links:
        if lk.hash not in blocks:
            continue
        child = dagpb.decode(blocks[lk.hash])
        assert child.data is not None
        child_msg = UnixFSData.decode(child.data)
        if len(lk.name or "") == 2:
            assert child_msg.type == HAMT_SHARD
            assert child_msg.fanout == 256
            assert child_msg.hash_type == MURMUR3_X64_64
            files += sum(1 for c in child.links if len(c.name or "") > 2)
        else:
            files += 1
    assert files > 0


def test_symbolic_links() -> None:
    car = "path_gateway_unixfs/symlink.car"
    root, msg, _ = _unixfs(car, "QmWvY6FaqFMS89YAQ9NAPjVP4WZKA1qbHbicc9HeSKQTgt")
    assert msg.type == DIRECTORY
    assert [(lk.name, str(lk.hash)) for lk in root.links] == [
        ("bar", "QmTB8BaCJdCH5H3k7GrxJsxgDNmNYGGR71C58ERkivXoj5"),
        ("foo", "Qme2y5HA5kvo2jAx13UsnV5bQJVijiAJCPvaW3JGQWhvJZ"),
    ]
    link_node, link_msg, link_size = _unixfs(car, "QmTB8BaCJdCH5H3k7GrxJsxgDNmNYGGR71C58ERkivXoj5")
    assert link_size == 9
    assert link_node.links == ()
    assert link_msg.type == SYMLINK
    assert link_msg.type_name == "symlink"
    assert link_msg.data == b"foo"
    _, file_msg, file_size = _unixfs(car, "Qme2y5HA5kvo2jAx13UsnV5bQJVijiAJCPvaW3JGQWhvJZ")
    assert file_size == 16
    assert file_msg.type == FILE
    assert file_msg.data is not None
    assert file_msg.data.rstrip(b"\n") == b"content"


def test_mixed_block_sizes() -> None:
    car = "trustless_gateway_car/subdir-with-mixed-block-files.car"
    root, msg, _ = _unixfs(car, "bafybeidh6k2vzukelqtrjsmd4p52cpmltd2ufqrdtdg6yigi73in672fwu")
    assert msg.type == DIRECTORY
    assert [(lk.name, str(lk.hash)) for lk in root.links] == [
        ("subdir", "bafybeicnmple4ehlz3ostv2sbojz3zhh5q7tz5r2qkfdpqfilgggeen7xm"),
    ]
    sub, sub_msg, _ = _unixfs(car, "bafybeicnmple4ehlz3ostv2sbojz3zhh5q7tz5r2qkfdpqfilgggeen7xm")
    assert sub_msg.type == DIRECTORY
    assert [(lk.name, str(lk.hash), lk.tsize) for lk in sub.links] == [
        ("ascii.txt", ASCII, 31),
        ("hello.txt", HELLO, 12),
        ("multiblock.txt", MULTIBLOCK, 1271),
    ]
    _, mb_msg, mb_size = _unixfs(car, MULTIBLOCK)
    assert mb_msg.filesize == 1026
    assert mb_size + mb_msg.filesize == 1271


# --------------------------------------------------------------------------------------------------
# Invalid test cases: valid dag-pb, invalid UnixFS
# --------------------------------------------------------------------------------------------------

INVALID_UNIXFS = [
    ("dagpb_empty", "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
    ("dagpb_1link", "bafybeihyivpglm6o6wrafbe36fp5l67abmewk7i2eob5wacdbhz7as5obe"),
    ("dagpb_2link+data", "bafybeibh647pmxyksmdm24uad6b5f7tx4dhvilzbg2fiqgzll4yek7g7y4"),
    ("dagpb_11unnamedlinks+data", "bafybeie7xh3zqqmeedkotykfsnj2pi4sacvvsjq6zddvcff4pq7dvyenhu"),
    ("dagpb_Data_some", "bafybeibazl2z4vqp2tmwcfag6wirmtpnomxknqcgrauj7m2yisrz3qjbom"),
    ("dagpb_Data_zero", "bafybeiaqfni3s5s2k2r6rgpxz4hohdsskh44ka5tk6ztbjerqpvxwfkwaq"),
    ("dagpb_Links_Hash_some", "bafybeia53f5n75ituvc3yupuf7tdnxf6fqetrmo2alc6g6iljkmk7ys5mm"),
    ("dagpb_Links_Hash_some_Name_some", "bafybeifq4hcxma3kjljrpxtunnljtc6tvbkgsy3vldyfpfbx2lij76niyu"),
    ("dagpb_Links_Hash_some_Name_zero", "bafybeie7fstnkm4yshfwnmpp7d3mlh4f4okmk7a54d6c3ffr755q7qzk44"),
    ("dagpb_Links_Hash_some_Tsize_some", "bafybeiezymjvhwfuharanxmzxwuomzjjuzqjewjolr4phaiyp6l7qfwo64"),
    ("dagpb_Links_Hash_some_Tsize_zero", "bafybeichjs5otecmbvwh5azdr4jc45mp2qcofh2fr54wjdxhz4znahod2i"),
    ("dagpb_simple_forms_1", "bafybeia2qk4u55f2qj7zimmtpulejgz7urp7rzs44cvledcaj42gltkk3u"),
    ("dagpb_simple_forms_2", "bafybeiahfgovhod2uvww72vwdgatl5r6qkoeegg7at2bghiokupfphqcku"),
    ("dagpb_simple_forms_3", "bafybeidrg2f6slbv4yzydqtgmsi2vzojajnt7iufcreynfpxndca4z5twm"),
    ("dagpb_simple_forms_4", "bafybeieube7zxmzoc5bgttub2aqofi6xdzimv5munkjseeqccn36a6v6j4"),
]


def test_invalid_cases_list_matches_spec_file() -> None:
    text = require_fixtures("unixfs-vectors.md").read_text("utf-8")
    section = text.split("### Invalid Test Cases", 1)[1]
    listed = {line.split("`")[1].removesuffix(".dag-pb") for line in section.splitlines()
              if line.startswith("- 💢 ") and ".dag-pb" in line}
    assert listed == {cid for _, cid in INVALID_UNIXFS}
    assert len(INVALID_UNIXFS) == 15


@pytest.mark.parametrize(("folder", "cid"), INVALID_UNIXFS)
def test_invalid_unixfs_vectors(folder: str, cid: str) -> None:
    path = require_fixtures("codec-fixtures", "fixtures", folder, f"{cid}.dag-pb")
    block = path.read_bytes()
    assert CID.hash(DAG_PB, block) == CID.parse(cid)
    node = dagpb.decode(block)  # valid dag-pb ...
    assert dagpb.encode(node) == block
    with pytest.raises(DecodeError):  # ... but not a UnixFS node
        UnixFSData.decode(node.data if node.data is not None else b"")


# --------------------------------------------------------------------------------------------------
# Hand-written encode/decode cases
# --------------------------------------------------------------------------------------------------


def test_encode_field_order() -> None:
    msg = UnixFSData(FILE, data=b"ab", filesize=5, blocksizes=(1, 2), mode=0o644, mtime=MTime(10, 5))
    assert msg.encode() == bytes.fromhex("0802") + b"\x12\x02ab" + bytes.fromhex(
        "1805" "2001" "2002" "38a403" "4207" "080a" "1505000000"
    )
    hamt = UnixFSData(HAMT_SHARD, data=b"\x01", hash_type=0x22, fanout=256)
    assert hamt.encode() == bytes.fromhex("0805" "120101" "2822" "308002")
    assert UnixFSData.decode(hamt.encode()) == hamt


def test_encode_omits_empty_data() -> None:
    assert UnixFSData(DIRECTORY, data=b"").encode() == b"\x08\x01"
    assert UnixFSData.decode(UnixFSData(DIRECTORY, data=b"").encode()).data is None


def test_decode_packed_blocksizes() -> None:
    packed = bytes.fromhex("0802" "1803" "2203" "010101")
    assert UnixFSData.decode(packed) == UnixFSData(FILE, filesize=3, blocksizes=(1, 1, 1))


def test_decode_empty_data_field() -> None:
    assert UnixFSData.decode(bytes.fromhex("08011200")) == UnixFSData(DIRECTORY, data=b"")


def test_decode_types() -> None:
    for typ, name in unixfs_pb.TYPE_NAMES.items():
        msg = UnixFSData.decode(bytes([0x08, typ]) + (b"\x28\x22\x30\x80\x02" if typ == HAMT_SHARD else b""))
        assert msg.type == typ
        assert msg.type_name == name
    assert UnixFSData(METADATA).type_name == "metadata"


def test_mtime_encoding() -> None:
    assert encode_mtime(MTime(0)) == b"\x08\x00"
    assert encode_mtime(MTime(1, 0)) == b"\x08\x01"
    assert encode_mtime(MTime(-1)) == b"\x08" + b"\xff" * 9 + b"\x01"
    assert encode_mtime(MTime(1, 999_999_999)) == b"\x08\x01\x15" + (999_999_999).to_bytes(4, "little")
    for mt in (MTime(-1), MTime(-(2**63), 1), MTime(2**63 - 1, 999_999_999), MTime(1_700_000_000, 5)):
        msg = UnixFSData(FILE, filesize=0, mtime=mt)
        assert UnixFSData.decode(msg.encode()).mtime == mt


def _with_mtime(body: bytes) -> bytes:
    return b"\x08\x02\x42" + varint.encode(len(body)) + body


UNIXFS_REJECTS = {
    "empty": b"",
    "missing Type": b"\x18\x00",
    "unknown Type 6": b"\x08\x06",
    "unknown Type 100": b"\x08\x64",
    "unknown field 9": b"\x08\x02\x48\x01",
    "unknown field 0": b"\x08\x02\x00\x01",
    "Type as bytes": b"\x0a\x01\x02",
    "Data as varint": b"\x08\x02\x10\x01",
    "filesize as bytes": b"\x08\x02\x1a\x01\x00",
    "fanout fixed64": b"\x08\x05\x31" + b"\x00" * 8,
    "mtime as varint": b"\x08\x02\x40\x01",
    "Type twice": b"\x08\x02\x08\x02",
    "Data twice": b"\x08\x02\x12\x01a\x12\x01b",
    "filesize twice": b"\x08\x02\x18\x01\x18\x01",
    "truncated Data": b"\x08\x02\x12\x05ab",
    "truncated varint": b"\x08\x82",
    "truncated key": b"\x08\x02\x98",
    "non-minimal Type varint": b"\x08\x82\x00",
    "packed blocksizes truncated": b"\x08\x02\x22\x01\x80",
    "mode over 32 bits": b"\x08\x02\x38" + varint.encode(2**32),
    "HAMT without fanout": b"\x08\x05\x28\x22",
    "HAMT without hashType": b"\x08\x05\x30\x80\x02",
    "HAMT with wrong hashType": b"\x08\x05\x28\x12\x30\x80\x02",
    "HAMT fanout 0": b"\x08\x05\x28\x22\x30\x00",
    "HAMT fanout 1": b"\x08\x05\x28\x22\x30\x01",
    "HAMT fanout 3": b"\x08\x05\x28\x22\x30\x03",
    "HAMT fanout 12": b"\x08\x05\x28\x22\x30\x0c",
    "HAMT fanout 2048": b"\x08\x05\x28\x22\x30\x80\x10",
    "mtime without Seconds": _with_mtime(b""),
    "mtime nanos only": _with_mtime(b"\x15\x01\x00\x00\x00"),
    "mtime nanos 0": _with_mtime(b"\x08\x01\x15\x00\x00\x00\x00"),
    "mtime nanos 1e9": _with_mtime(b"\x08\x01\x15" + (10**9).to_bytes(4, "little")),
    "mtime nanos 0xffffffff": _with_mtime(b"\x08\x01\x15\xff\xff\xff\xff"),
    "mtime nanos truncated": _with_mtime(b"\x08\x01\x15\x01\x00"),
    "mtime Seconds twice": _with_mtime(b"\x08\x01\x08\x02"),
    "mtime unknown field": _with_mtime(b"\x08\x01\x18\x01"),
    "mtime Seconds as fixed64": _with_mtime(b"\x09" + b"\x00" * 8),
    "mtime truncated": b"\x08\x02\x42\x05\x08\x01",
}


@pytest.mark.parametrize("name", sorted(UNIXFS_REJECTS))
def test_decode_rejects(name: str) -> None:
    with pytest.raises(DecodeError):
        UnixFSData.decode(UNIXFS_REJECTS[name])


@pytest.mark.parametrize(
    "raw",
    [
        b"\x08\x02\x18" + varint.encode(2**64),  # filesize (uint64)
        b"\x08\x02\x20" + varint.encode(2**64),  # blocksizes (uint64)
        _with_mtime(b"\x08" + varint.encode(2**64)),  # Seconds (int64): would wrap to 0
        _with_mtime(b"\x08" + varint.encode(2**64 + 5)),  # would wrap to 5
    ],
    ids=["filesize", "blocksizes", "mtime-2^64", "mtime-2^64+5"],
)
def test_decode_rejects_varint_over_64_bits(raw: bytes) -> None:
    """Protobuf varints carry at most 64 bits; larger values are malformed, not truncated/wrapped."""
    with pytest.raises(DecodeError):
        UnixFSData.decode(raw)


@pytest.mark.parametrize("fanout", [8, 16, 32, 64, 128, 256, 512, 1024])
def test_hamt_valid_fanouts(fanout: int) -> None:
    msg = UnixFSData(HAMT_SHARD, hash_type=MURMUR3_X64_64, fanout=fanout)
    assert UnixFSData.decode(msg.encode()) == msg


@pytest.mark.parametrize("fanout", [2, 4])
def test_hamt_fanout_must_be_multiple_of_8(fanout: int) -> None:
    """UnixFS spec (HAMTDirectory): fanout "MUST be a power of two, a multiple of 8 (for
    byte-aligned bitfields), and at most 1024"."""
    raw = UnixFSData(HAMT_SHARD, hash_type=MURMUR3_X64_64, fanout=fanout).encode()
    with pytest.raises(DecodeError):
        UnixFSData.decode(raw)


def test_file_leaf() -> None:
    for chunk in (b"", b"x", b"a" * 300):
        assert file_leaf(chunk) == UnixFSData(FILE, data=chunk or None, filesize=len(chunk)).encode()
        assert UnixFSData.decode(file_leaf(chunk)).content_size() == len(chunk)
    assert UnixFSData.decode(file_leaf(b"ab", unixfs_pb.RAW)) == UnixFSData(unixfs_pb.RAW, b"ab", 2)


def test_content_size() -> None:
    assert UnixFSData(FILE, data=b"abc").content_size() == 3
    assert UnixFSData(FILE, data=b"abc", filesize=10).content_size() == 10
    assert UnixFSData(DIRECTORY).content_size() == 0


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

u64 = st.integers(min_value=0, max_value=2**64 - 1)
opt_data = st.one_of(st.none(), st.binary(min_size=1, max_size=40))
mtimes = st.one_of(
    st.none(),
    st.builds(MTime, st.integers(min_value=-(2**63), max_value=2**63 - 1),
              st.one_of(st.just(0), st.integers(min_value=1, max_value=999_999_999))),
)
modes = st.one_of(st.none(), st.integers(min_value=0, max_value=2**32 - 1))


@st.composite
def unixfs_messages(draw: st.DrawFn) -> UnixFSData:
    typ = draw(st.integers(min_value=0, max_value=5))
    if typ == HAMT_SHARD:
        fanout: int | None = draw(st.sampled_from([8, 16, 32, 64, 128, 256, 512, 1024]))
        hash_type: int | None = MURMUR3_X64_64
    else:
        fanout = draw(st.one_of(st.none(), u64))
        hash_type = draw(st.one_of(st.none(), u64))
    return UnixFSData(
        type=typ,
        data=draw(opt_data),
        filesize=draw(st.one_of(st.none(), u64)),
        blocksizes=tuple(draw(st.lists(u64, max_size=5))),
        hash_type=hash_type,
        fanout=fanout,
        mode=draw(modes),
        mtime=draw(mtimes),
    )


@FAST
@given(unixfs_messages())
def test_unixfs_roundtrip_property(msg: UnixFSData) -> None:
    raw = msg.encode()
    decoded = UnixFSData.decode(raw)
    assert decoded == msg
    assert decoded.encode() == raw
    # Wrapped in a dag-pb node it survives too.
    block = dagpb.encode(PBNode(raw, (PBLink(CID.hash(RAW, raw)),)))
    assert UnixFSData.decode(dagpb.decode(block).data or b"") == msg


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_unixfs_decode_fuzz_random_bytes(raw: bytes) -> None:
    try:
        msg = UnixFSData.decode(raw)
    except DecodeError:
        return
    assert msg.type in unixfs_pb.TYPE_NAMES


@settings(max_examples=300, deadline=None)
@given(unixfs_messages(), st.data())
def test_unixfs_decode_fuzz_mutations(msg: UnixFSData, data: st.DataObject) -> None:
    raw = bytearray(msg.encode())
    i = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    op = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
    if op == "flip":
        raw[i] ^= data.draw(st.integers(min_value=1, max_value=255))
    elif op == "truncate":
        del raw[i:]
    elif op == "insert":
        raw.insert(i, data.draw(st.integers(min_value=0, max_value=255)))
    else:
        del raw[i]
    try:
        decoded = UnixFSData.decode(bytes(raw))
    except DecodeError:
        return
    assert decoded.type in unixfs_pb.TYPE_NAMES


def test_fixture_helpers_read_car(tmp_path: pathlib.Path) -> None:
    """car_blocks reads a CAR we build by hand (no fixtures needed)."""
    from _fixtures import car_blocks, car_header

    header = bytes.fromhex("a265726f6f747380") + b"\x67version\x01"
    blocks = [(CID.hash(RAW, b"hi"), b"hi"), (CID.hash(DAG_PB, b"\x0a\x02\x08\x01", 0), b"\x0a\x02\x08\x01")]
    body = varint.encode(len(header)) + header
    for cid, block in blocks:
        frame = bytes(cid) + block
        body += varint.encode(len(frame)) + frame
    path = tmp_path / "t.car"
    path.write_bytes(body)
    assert car_header(path) == header
    assert list(car_blocks(path)) == blocks

"""The mount's namespace and per-open reader without FUSE (mount/tree.py, mount/reader.py):
deep and odd file layouts read at random offsets, verified blocks, listings that describe raw
files without reading them. Runs everywhere (no /dev/fuse, no mfusepy needed)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from ipmirror.codec.cid import CID, RAW
from ipmirror.errors import BlockNotFound, Corrupt, DecodeError, NotFound, PathNotFound
from ipmirror.mount.reader import FileReader
from ipmirror.mount.source import KeptVersion
from ipmirror.mount.tree import Tree, cid_ino
from ipmirror.unixfs import exporter as ex
from ipmirror.unixfs.importer import import_chunks
from ipmirror.unixfs.nodes import BlockMaker
from ipmirror.unixfs.profile import PRESETS


class DictSource:
    """A Source over a dict of blocks, one mirror ``m`` whose versions the test sets."""

    def __init__(self) -> None:
        self.blocks: dict[CID, bytes] = {}
        self.reads = 0
        self.latest = ""
        self.kept: list[KeptVersion] = []

    def put(self, cid: CID, data: bytes | memoryview) -> None:
        self.blocks[cid] = bytes(data)

    def get(self, cid: CID) -> bytes:
        self.reads += 1
        try:
            return self.blocks[cid]
        except KeyError:
            raise BlockNotFound(cid) from None

    def block_size(self, cid: CID) -> int:
        return len(self.get(cid))

    def resolve_name(self, name: str) -> str:
        if name != "m" or not self.latest:
            raise NotFound(f"no name {name}", name)
        return self.latest

    def mirror_names(self) -> list[str]:
        return ["m"]

    def versions(self, mirror: str) -> list[KeptVersion]:
        if mirror != "m":
            raise NotFound("no mirror", mirror)
        return self.kept

    def usage(self) -> tuple[int, int]:
        return len(self.blocks), sum(map(len, self.blocks.values()))


def _file(src: DictSource, data: bytes, profile_name: str, **changes: object) -> CID:
    profile = dataclasses.replace(PRESETS[profile_name], **changes)  # type: ignore[arg-type]
    rng = random.Random(len(data))
    chunks, pos = [], 0
    while pos < len(data):
        n = rng.randrange(1, 3000)
        chunks.append(data[pos:pos + n])
        pos += n
    entry = import_chunks(BlockMaker(profile, src.put), profile, chunks, None, None)
    return entry.cid


@pytest.mark.parametrize(("profile", "changes"), [
    ("unixfs-v1-2025", {"max_links": 3}),                      # raw leaves, balanced, deep
    ("unixfs-v0-2015", {"max_links": 2}),                      # dag-pb leaves, balanced, deeper
    ("unixfs-v0-2015", {"max_links": 3, "layout": "trickle"}),  # trickle
])
def test_random_reads_through_deep_layouts(profile: str, changes: dict[str, object]) -> None:
    src = DictSource()
    data = random.Random(5).randbytes(200_000)
    cid = _file(src, data, profile, **changes)
    node = ex.decode_node(cid, src.blocks[cid])
    assert node.size == len(data)
    tree = Tree(src)
    reader = FileReader(tree.block, cid, node.size, node)
    rng = random.Random(1)
    for _ in range(400):
        off = rng.randrange(len(data) + 5)
        n = rng.choice([1, 7, 999, 4096, 65536, 300_000])
        assert reader.read(off, n) == data[off:off + n], (off, n)
    src.reads = 0
    assert reader.read(0, len(data)) == data  # sequential: each block once at most
    assert src.reads <= len(src.blocks)


def test_blocks_are_verified() -> None:
    src = DictSource()
    data = b"abc" * 50_000
    cid = _file(src, data, "unixfs-v1-2025", max_links=4)
    leaf = next(c for c in src.blocks if c.codec == RAW)
    good = src.blocks[leaf]
    src.blocks[leaf] = b"X" + good[1:]
    tree = Tree(src)
    reader = tree.open(f"/ipfs/{cid}")
    with pytest.raises(Corrupt):
        reader.read(0, len(data))
    src.blocks[leaf] = good
    del src.blocks[cid]
    with pytest.raises(PathNotFound):  # an unknown root CID is not there, not an I/O error
        Tree(src).entry(f"/ipfs/{cid}")


def test_a_raw_file_of_the_wrong_size_is_an_error() -> None:
    src = DictSource()
    cid = CID.hash(RAW, b"twelve bytes")
    src.put(cid, b"twelve bytes")
    with pytest.raises(DecodeError):
        FileReader(Tree(src).block, cid, 5).read(0, 5)
    assert FileReader(Tree(src).block, cid, 12).read(0, 100) == b"twelve bytes"


def test_names_versions_and_listings() -> None:
    src = DictSource()
    a = CID.hash(RAW, b"a")
    src.put(a, b"a")
    tree = Tree(src)
    with pytest.raises(PathNotFound):
        tree.readlink("/ipns/m")  # nothing published yet
    src.latest = f"/ipfs/{a}"
    assert tree.readlink("/ipns/m") == f"../ipfs/{a}"
    src.kept = [KeptVersion(1, a, 0.0)]
    assert list(tree.listdir("/mirrors/m")) == [("1", tree.entry("/mirrors/m/1").ino, 0o120000, None)]
    assert tree.readlink("/mirrors/m/1") == f"../../ipfs/{a}"
    e = tree.entry(f"/ipfs/{a}")
    assert (e.kind, e.size, e.ino) == ("file", 1, cid_ino(a))
    with pytest.raises(PathNotFound):
        tree.entry("/mirrors/nope")


def test_a_hamt_listing_streams_and_describes_raw_files() -> None:
    from ipmirror.unixfs.hamt import build_hamt
    from ipmirror.unixfs.nodes import Entry

    src = DictSource()
    profile = PRESETS["unixfs-v1-2025"]
    maker = BlockMaker(profile, src.put)
    children = []
    for i in range(5000):
        data = b"%d\n" % i
        cid = CID.hash(RAW, data)
        src.put(cid, data)
        children.append((b"f%04d" % i, Entry(cid, len(data), len(data))))
    root = build_hamt(maker, children, fanout=16).cid
    shards = sum(1 for c in src.blocks if c.codec != RAW)
    assert shards > 20
    tree = Tree(src)
    tree.entry(f"/ipfs/{root}")
    src.reads = 0
    listing = tree.listdir(f"/ipfs/{root}")
    first = next(listing)
    assert src.reads < shards // 2, (src.reads, shards)  # the first entry before most shards
    names = [first[0], *(n for n, _ino, _t, _e in listing)]
    assert sorted(names) == [f"f{i:04d}" for i in range(5000)]
    src.reads = 0
    e = tree.entry(f"/ipfs/{root}/f1234")  # described by the listing: no block read
    assert (e.kind, e.size, src.reads) == ("file", 5, 0)
    assert tree.open(f"/ipfs/{root}/f1234").read(0, 100) == b"1234\n"

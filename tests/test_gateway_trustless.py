"""The trustless gateway (raw blocks, CARs), IPNS records, delegated routing v1 and ?format=tar,
against the real app on 127.0.0.1 (aiohttp's test server) over a repository filled from the
gateway-conformance fixtures with the CLI (``ipmirror dag import``, ``ipmirror name put``).

Expected block lists are worked out here from the fixture CARs themselves (the spec's rules:
path blocks, then the scope, depth first), never from the gateway's code.
"""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDictProxy

from _cli import run_cli
from _fixtures import car_block_map, require_fixtures
from ipmirror.codec import dagpb, ipns
from ipmirror.codec import unixfs_pb as ufs
from ipmirror.codec.car import read_car
from ipmirror.codec.cid import CID, verify_multihash
from ipmirror.codec.libp2p_key import PrivateKey
from ipmirror.codec.peerid import PeerID
from ipmirror.errors import InvalidInput
from ipmirror.gateway.app import make_app
from ipmirror.gateway.config import GatewayConfig
from ipmirror.mirror.register import add_mirror
from ipmirror.node import Repo
from ipmirror.unixfs import exporter as ex
from ipmirror.unixfs.resolve import Resolver

GC = "gateway-conformance"
TG = "trustless_gateway_car"
RAW_FIXTURE = "gateway-raw-block.car"
TWO_FILES = f"{TG}/subdir-with-two-single-block-files.car"
MIXED = f"{TG}/subdir-with-mixed-block-files.car"
HAMT = f"{TG}/single-layer-hamt-with-multi-block-files.car"
DUPS = f"{TG}/dir-with-duplicate-files.car"
CBOR_LINKS = f"{TG}/dir-with-dag-cbor-with-links.car"
MISSING = f"{TG}/file-3k-and-3-blocks-missing-block.car"
TAR_DIR = "path_gateway_tar/fixtures.car"
TAR_INSIDE = "path_gateway_tar/inside-root.car"
TAR_OUTSIDE = "path_gateway_tar/outside-root.car"
SYMLINK = "path_gateway_unixfs/symlink.car"
CARS = [RAW_FIXTURE, TWO_FILES, MIXED, HAMT, DUPS, CBOR_LINKS, TAR_DIR, TAR_INSIDE, TAR_OUTSIDE, SYMLINK]
V1V2 = "k51qzi5uqu5dlkw8pxuw9qmqayfdeh4kfebhmreauqdc6a7c3y7d5i9fi8mk9w"
V2 = "k51qzi5uqu5dit2ku9mutlfgwyz8u730on38kd10m97m36bjt66my99hb6103f"
RECORDS = {V1V2: f"ipns_records/{V1V2}_v1-v2.ipns-record", V2: f"ipns_records/{V2}_v2.ipns-record"}
BROKEN = ["ipns_records/k51qzi5uqu5dm4tm0wt8srkg9h9suud4wuiwjimndrkydqm81cqtlb5ak6p7ku_v1.ipns-record",
          "ipns_records/k51qzi5uqu5dlmit2tuwdvnx4sbnyqgmvbxftl0eo3f33wwtb9gr7yozae9kpw_v1-v2-broken-v1-value"
          ".ipns-record",
          "ipns_records/k51qzi5uqu5diamp7qnnvs1p1gzmku3eijkeijs3418j23j077zrkok63xdm8c_v1-v2-broken-signature-v2"
          ".ipns-record"]
MULTIBLOCK_LEAVES = ["bafkreie5noke3mb7hqxukzcy73nl23k6lxszxi5w3dtmuwz62wnvkpsscm",
                     "bafkreih4ephajybraj6wnxsbwjwa77fukurtpl7oj7t7pfq545duhot7cq",
                     "bafkreigu7buvm3cfunb35766dn7tmqyh2um62zcio63en2btvxuybgcpue",
                     "bafkreicll3huefkc3qnrzeony7zcfo7cr3nbx64hnxrqzsixpceg332fhe",
                     "bafkreifst3pqztuvj57lycamoi7z34b4emf7gawxs74nwrc2c7jncmpaqm"]
CAR_N = "application/vnd.ipld.car; version=1; order=dfs; dups=n"
CAR_Y = "application/vnd.ipld.car; version=1; order=dfs; dups=y"


# -- the stack ------------------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    port: int
    truncated: bool = False

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    @property
    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class Fixture:
    """The blocks of one fixture CAR, for working out what a response must hold."""

    blocks: dict[CID, bytes]
    root: CID

    def get(self, cid: CID) -> bytes:
        for c, d in self.blocks.items():
            if c.multihash == cid.multihash:
                return d
        raise KeyError(cid)

    def cid(self, *path: str) -> CID:
        return Resolver(self.get).resolve_path(self.root, path).cid

    def v1(self, *path: str) -> str:
        return str(self.cid(*path).to_v1())

    def descendants(self, *path: str) -> list[str]:
        """Every block below the node, depth first, in link order, each once (not the node)."""
        out: list[str] = []
        seen: set[bytes] = set()

        def visit(cid: CID) -> None:
            if cid.codec != 0x70:
                return
            for lk in dagpb.decode(self.get(cid)).links:
                if lk.hash.multihash not in seen:
                    seen.add(lk.hash.multihash)
                    out.append(str(lk.hash.to_v1()))
                    visit(lk.hash)

        visit(self.cid(*path))
        return out


@dataclass
class Gateway:
    repo: Repo
    fixtures: Path
    config: GatewayConfig = field(default_factory=GatewayConfig)

    def fixture(self, name: str) -> Fixture:
        path = self.fixtures / name
        with open(path, "rb") as f:
            roots, _ = read_car(f.read)
        return Fixture(car_block_map(path), roots[0])

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                data: bytes | None = None, config: GatewayConfig | None = None) -> Reply:
        return asyncio.run(self._request(method, path, headers or {}, data, config or self.config))

    async def _request(self, method: str, path: str, headers: dict[str, str], data: bytes | None,
                       config: GatewayConfig) -> Reply:
        app = make_app(self.repo.gateway_backend(), config)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            r = await client.request(method, path, headers=headers, data=data, allow_redirects=False)
            body = b""
            truncated = False
            try:
                async for chunk in r.content.iter_any():
                    body += chunk
            except aiohttp.ClientPayloadError:
                truncated = True
            port = client.server.port
            assert port is not None
            return Reply(r.status, r.headers, body, port, truncated)

    def get(self, path: str, **headers: str) -> Reply:
        return self.request("GET", path, {k.replace("_", "-"): v for k, v in headers.items()})


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    fixtures = require_fixtures(GC)
    repo_path = tmp_path_factory.mktemp("gateway") / "repo"
    run_cli(repo_path, "dag", "import", *(fixtures / c for c in CARS))
    run_cli(repo_path, "dag", "import", "--pin-roots=false", fixtures / MISSING)  # incomplete on purpose
    for name, rel in RECORDS.items():
        run_cli(repo_path, "name", "put", name, fixtures / rel)
    with Repo.open(repo_path) as repo:
        yield Gateway(repo, fixtures)


def car_cids(reply: Reply) -> tuple[list[CID], list[str]]:
    """The CAR's roots and its blocks (CIDv1 text, in order); every block must hash to its CID."""
    assert reply.status == 200, reply.body
    roots, frames = read_car(io.BytesIO(reply.body).read)
    out = []
    for cid, data in frames:
        assert verify_multihash(cid.multihash, data), f"{cid} does not match its bytes"
        assert not cid.is_identity
        out.append(str(cid.to_v1()))
    return roots, out


def car(gw: Gateway, path: str, accept: str | None = None, **params: str) -> Reply:
    query = "&".join(f"{k.replace('_', '-')}={v}" for k, v in params.items())
    url = f"{path}?{query}" if query else path
    return gw.request("GET", url, {"Accept": accept} if accept else {})


# -- raw blocks and the probe ---------------------------------------------------------------------

def test_probe_bafkqaaa(gw: Gateway) -> None:
    for headers in ({}, {"Accept": "application/vnd.ipld.raw"}):
        for method in ("GET", "HEAD"):
            r = gw.request(method, "/ipfs/bafkqaaa", headers)
            assert (r.status, r.body) == (200, b"")
    r = gw.get("/ipfs/bafkqaaa?format=raw")
    assert (r.status, r.body, r.header("Content-Type")) == (200, b"", "application/vnd.ipld.raw")
    roots, blocks = car_cids(gw.get("/ipfs/bafkqaaa?format=car"))
    assert (roots, blocks) == ([CID.parse("bafkqaaa")], [])


def test_raw_block_bytes_and_headers(gw: Gateway) -> None:
    fx = gw.fixture(RAW_FIXTURE)
    d, f = fx.cid("dir"), fx.cid("dir", "ascii.txt")
    assert gw.get(f"/ipfs/{d}?format=raw").body == fx.get(d)
    r = gw.get(f"/ipfs/{f}", Accept="application/vnd.ipld.raw")
    assert r.status == 200 and r.body == fx.get(f)
    assert r.header("Content-Type") == "application/vnd.ipld.raw"
    assert r.header("Content-Length") == str(len(fx.get(f)))
    assert r.header("Content-Disposition").startswith(f'attachment; filename="{f}.bin"')
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("ETag") == f'"{f}.raw"'
    assert r.header("Cache-Control") == "public, max-age=29030400, immutable"
    assert r.header("X-Ipfs-Path") == f"/ipfs/{f}" and str(f) in r.header("X-Ipfs-Roots")
    assert "Accept" in r.header("Vary")
    assert r.header("Content-Location") == f"/ipfs/{f}?format=raw"  # negotiated by Accept alone
    assert "Content-Location" not in gw.get(f"/ipfs/{f}?format=raw").headers
    named = gw.get(f"/ipfs/{f}?filename=foobar.bin", Accept="application/vnd.ipld.raw")
    assert named.header("Content-Disposition").startswith('attachment; filename="foobar.bin"')
    part = gw.get(f"/ipfs/{f}", Accept="application/vnd.ipld.raw", Range="bytes=6-16")
    assert (part.status, part.body, part.header("Content-Range")) == (206, fx.get(f)[6:17],
                                                                      f"bytes 6-16/{len(fx.get(f))}")
    assert gw.get(f"/ipfs/{f}?format=raw", If_None_Match=f'"{f}.raw"').status == 304
    both = gw.get(f"/ipfs/{f}?format=raw", Range="bytes=0-1,-2")
    assert both.status == 206 and both.header("Content-Type").startswith("multipart/byteranges; boundary=")
    assert both.body.count(b"Content-Type: application/vnd.ipld.raw\r\n") == 2
    assert f"Content-Range: bytes 0-1/{len(fx.get(f))}".encode() in both.body
    assert gw.get(f"/ipfs/{f}?format=raw", Range=f"bytes={len(fx.get(f))}-").status == 416
    # a path is allowed (path gateway); the block at its end is served
    assert gw.get(f"/ipfs/{fx.root}/dir/ascii.txt?format=raw").body == fx.get(f)


def test_raw_missing_and_identity(gw: Gateway) -> None:
    absent = CID.hash(0x55, b"not in the store")
    assert gw.get(f"/ipfs/{absent}?format=raw").status == 404
    ident = CID.identity(0x55, b"hello identity")
    r = gw.get(f"/ipfs/{ident}?format=raw")
    assert (r.status, r.body) == (200, b"hello identity")
    assert gw.get("/ipfs/not-a-cid?format=raw").status == 400


def test_format_wins_over_accept(gw: Gateway) -> None:
    fx = gw.fixture(RAW_FIXTURE)
    d = fx.cid("dir")
    r = gw.get(f"/ipfs/{d}?format=car", Accept="application/vnd.ipld.raw")
    assert r.header("Content-Type") == CAR_N
    r = gw.get(f"/ipfs/{d}?format=raw", Accept="application/vnd.ipld.car")
    assert r.header("Content-Type") == "application/vnd.ipld.raw"


def test_negotiation_errors_and_generic_accept(gw: Gateway) -> None:
    fx = gw.fixture(RAW_FIXTURE)
    f = fx.cid("dir", "ascii.txt")
    assert gw.get(f"/ipfs/{f}?format=nonsense").status == 400
    assert gw.get(f"/ipfs/{f}?format=dag-json").status == 406  # no codec conversions (IPIP-524)
    assert gw.get(f"/ipfs/{f}", Accept="application/vnd.ipld.dag-json").status == 406
    assert gw.get(f"/ipfs/{f}", Accept="application/vnd.ipld.car; version=2").status == 406
    assert gw.get(f"/ipfs/{f}?format=car&car-version=2").status == 400
    assert gw.get(f"/ipfs/{f}?format=car&car-order=random").status == 400
    assert gw.get(f"/ipfs/{f}?format=car&car-dups=maybe").status == 400
    # package managers and browsers get the file itself
    for accept in ("application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
                   "text/html,application/xhtml+xml,*/*;q=0.8", "application/json"):
        r = gw.get(f"/ipfs/{f}", Accept=accept)
        assert (r.status, r.body) == (200, fx.get(f)), accept
    # quality counts: the CAR is preferred here
    r = gw.get(f"/ipfs/{f}", Accept="application/vnd.ipld.raw;q=0.5, application/vnd.ipld.car")
    assert r.header("Content-Type") == CAR_N


def test_only_if_cached(gw: Gateway) -> None:
    fx = gw.fixture(RAW_FIXTURE)
    assert gw.get(f"/ipfs/{fx.root}?format=raw", Cache_Control="only-if-cached").status == 200
    absent = CID.hash(0x55, b"absent")
    assert gw.request("HEAD", f"/ipfs/{absent}", {"Cache-Control": "only-if-cached"}).status == 412


# -- CAR: pathing and dag-scope ---------------------------------------------------------------------

def test_car_pathing_through_directories(gw: Gateway) -> None:
    fx = gw.fixture(TWO_FILES)
    r = car(gw, f"/ipfs/{fx.v1()}/subdir/ascii.txt", format="car")
    roots, blocks = car_cids(r)
    assert blocks == [fx.v1(), fx.v1("subdir"), fx.v1("subdir", "ascii.txt")]
    assert roots == [fx.cid("subdir", "ascii.txt")]  # the root is the end of the path, as Kubo's
    assert r.header("Content-Type") == CAR_N
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("Content-Disposition").startswith(f'attachment; filename="{fx.v1()}_ascii.txt.car"')
    assert r.header("Accept-Ranges") == "none"
    assert r.header("ETag").startswith(f'"{fx.v1()}.car.') and r.header("ETag").endswith('"')
    assert r.header("Cache-Control") == "public, max-age=29030400, immutable"
    assert gw.get(f"/ipfs/{fx.v1()}/subdir/i-do-not-exist?format=car").status == 404
    # a missing root is 404 before any byte is sent
    assert gw.get(f"/ipfs/{CID.hash(0x70, b'nope')}?format=car").status == 404


def test_car_dag_scope_block(gw: Gateway) -> None:
    fx = gw.fixture(TWO_FILES)
    _, blocks = car_cids(car(gw, f"/ipfs/{fx.v1()}/subdir", format="car", dag_scope="block"))
    assert blocks == [fx.v1(), fx.v1("subdir")]
    _, blocks = car_cids(car(gw, f"/ipfs/{fx.v1()}/subdir/ascii.txt", format="car", dag_scope="block"))
    assert blocks == [fx.v1(), fx.v1("subdir"), fx.v1("subdir", "ascii.txt")]
    assert car(gw, f"/ipfs/{fx.v1()}", format="car", dag_scope="blocks").status == 400


def hamt_shards(fx: Fixture, cid: CID) -> list[str]:
    """The shards below a HAMT node, depth first (links whose name is only the bucket)."""
    out: list[str] = []
    node = dagpb.decode(fx.get(cid))
    assert node.data is not None
    fanout = ufs.UnixFSData.decode(node.data).fanout
    assert fanout
    pad = len(f"{fanout - 1:X}")
    for lk in node.links:
        if len(lk.name or "") == pad:
            out.append(str(lk.hash.to_v1()))
            out += hamt_shards(fx, lk.hash)
    return out


def hamt_path(fx: Fixture, name: str) -> list[str]:
    """The shards read to look ``name`` up below the HAMT root (not the root, not the entry)."""
    seen: list[CID] = []

    def get(cid: CID) -> bytes:
        seen.append(cid)
        return fx.get(cid)

    ex.lookup(get, ex.stat(fx.get, fx.root), name)
    return [str(c.to_v1()) for c in seen]


def test_car_hamt(gw: Gateway) -> None:
    fx = gw.fixture(HAMT)
    shards = hamt_shards(fx, fx.root)
    assert shards, "the fixture has sub-shards"
    _, blocks = car_cids(car(gw, f"/ipfs/{fx.v1()}", format="car", dag_scope="entity"))
    assert blocks == [fx.v1(), *shards]  # the directory, not its entries
    _, blocks = car_cids(car(gw, f"/ipfs/{fx.v1()}", format="car", dag_scope="entity", entity_bytes="0:*"))
    assert blocks == [fx.v1(), *shards]  # entity-bytes means nothing for a directory
    via = hamt_path(fx, "685.txt")
    _, blocks = car_cids(car(gw, f"/ipfs/{fx.v1()}/685.txt", format="car"))
    assert blocks == [fx.v1(), *via, fx.v1("685.txt"), *fx.descendants("685.txt")]
    _, blocks = car_cids(car(gw, f"/ipfs/{fx.v1()}/1.txt", format="car", dag_scope="block"))
    assert blocks == [fx.v1(), *hamt_path(fx, "1.txt"), fx.v1("1.txt")]


def test_car_dag_scope_entity_and_all(gw: Gateway) -> None:
    fx = gw.fixture(MIXED)
    base = [fx.v1(), fx.v1("subdir")]
    _, blocks = car_cids(car(gw, f"/ipfs/{fx.v1()}", format="car", dag_scope="entity"))
    assert blocks == [fx.v1()]
    _, blocks = car_cids(car(gw, f"/ipfs/{fx.v1()}/subdir/ascii.txt", format="car", dag_scope="entity"))
    assert blocks == [*base, fx.v1("subdir", "ascii.txt")]
    mb = [fx.v1("subdir", "multiblock.txt"), *fx.descendants("subdir", "multiblock.txt")]
    assert fx.descendants("subdir", "multiblock.txt") == MULTIBLOCK_LEAVES
    for scope in ("entity", "all"):
        _, blocks = car_cids(car(gw, f"/ipfs/{fx.v1()}/subdir/multiblock.txt", format="car", dag_scope=scope))
        assert blocks == [*base, *mb]
    _, blocks = car_cids(car(gw, f"/ipfs/{fx.v1()}/subdir", format="car", dag_scope="all"))
    assert blocks == [*base, *fx.descendants("subdir")]
    _, default = car_cids(car(gw, f"/ipfs/{fx.v1()}/subdir", format="car"))
    assert default == blocks


def test_car_entity_bytes(gw: Gateway) -> None:
    fx = gw.fixture(MIXED)
    file = f"/ipfs/{fx.v1('subdir', 'multiblock.txt')}"
    head = [fx.v1("subdir", "multiblock.txt")]
    leaves = MULTIBLOCK_LEAVES  # 4 x 256 bytes + 2 bytes
    cases = {"0:0": leaves[:1], "512:*": leaves[2:], "512:1023": leaves[2:4], "512:-256": leaves[2:4],
             "-5:*": leaves[3:], "-9999:*": leaves, "-9999:-3": leaves[:4], "0:*": leaves,
             "1000:99999": leaves[3:], "500:-1000": []}
    for rng, want in cases.items():
        _, blocks = car_cids(car(gw, file, format="car", dag_scope="entity", entity_bytes=rng))
        assert blocks == head + want, rng
    _, blocks = car_cids(car(gw, f"/ipfs/{fx.v1()}/subdir/multiblock.txt", format="car",
                             entity_bytes="0:*"))  # entity-bytes alone implies dag-scope=entity
    assert blocks == [fx.v1(), fx.v1("subdir"), *head, *leaves]
    for bad in ("1:", "a:b", "10:5", "-1:-5", "1:2:3", "+1:5"):
        assert car(gw, file, format="car", dag_scope="entity", entity_bytes=bad).status == 400, bad
    # a range wholly past the end is known before streaming: 400
    assert car(gw, file, format="car", dag_scope="entity", entity_bytes="1026:*").status == 400


def test_car_entity_bytes_around_a_missing_block(gw: Gateway) -> None:
    fx = gw.fixture(MISSING)
    root = fx.v1()
    _, blocks = car_cids(car(gw, f"/ipfs/{root}", format="car", dag_scope="entity", entity_bytes="0:1000"))
    assert blocks == [root, str(CID.parse("QmPKt7ptM2ZYSGPUc8PmPT2VBkLDK3iqpG9TBJY7PCE9rF").to_v1())]
    _, blocks = car_cids(car(gw, f"/ipfs/{root}", format="car", dag_scope="entity", entity_bytes="2200:*"))
    assert blocks == [root, str(CID.parse("QmWXY482zQdwecnfBsj78poUUuPXvyw2JAFAEMw4tzTavV").to_v1())]
    # the whole DAG: 200 is committed with the first blocks, then the stream is cut at the gap
    r = car(gw, f"/ipfs/{root}", format="car")
    assert r.status == 200 and r.truncated
    roots, frames = read_car(io.BytesIO(r.body).read)
    first_leaf = str(CID.parse("QmPKt7ptM2ZYSGPUc8PmPT2VBkLDK3iqpG9TBJY7PCE9rF").to_v1())
    assert roots == [fx.cid().to_v1()]
    assert [str(c.to_v1()) for c, _ in frames] == [root, first_leaf]


def test_car_dups_and_order(gw: Gateway) -> None:
    fx = gw.fixture(DUPS)
    assert fx.cid("ascii.txt") == fx.cid("ascii-copy.txt")
    r = car(gw, f"/ipfs/{fx.v1()}", accept="application/vnd.ipld.car; version=1; order=dfs; dups=y")
    assert r.header("Content-Type") == CAR_Y
    assert r.header("Content-Location").endswith("format=car&car-version=1&car-order=dfs&car-dups=y")
    _, blocks = car_cids(r)
    assert blocks == [fx.v1(), fx.v1("ascii.txt"), fx.v1("ascii-copy.txt"), fx.v1("hello.txt"),
                      fx.v1("multiblock.txt"), *MULTIBLOCK_LEAVES]
    r = car(gw, f"/ipfs/{fx.v1()}", accept="application/vnd.ipld.car; version=1; order=dfs; dups=n")
    assert r.header("Content-Type") == CAR_N
    _, blocks = car_cids(r)
    assert blocks == [fx.v1(), fx.v1("ascii.txt"), fx.v1("hello.txt"), fx.v1("multiblock.txt"),
                      *MULTIBLOCK_LEAVES]
    r = car(gw, f"/ipfs/{fx.v1()}", accept="application/vnd.ipld.car; version=1; order=unk")
    assert r.header("Content-Type") == CAR_N  # any order was fine: we say which one we used
    # URL parameters win over Accept parameters (IPIP-523); ?format=car keeps Accept's parameters
    r = car(gw, f"/ipfs/{fx.v1()}", accept="application/vnd.ipld.car; dups=n", format="car", car_dups="y")
    assert r.header("Content-Type") == CAR_Y
    r = car(gw, f"/ipfs/{fx.v1()}", accept="application/vnd.ipld.car; order=unk", format="car",
            car_order="dfs")
    assert r.header("Content-Type") == CAR_N
    r = car(gw, f"/ipfs/{fx.v1()}", accept="application/vnd.ipld.car; version=1; order=dfs; dups=y",
            format="car")
    assert r.header("Content-Type") == CAR_Y
    # a preference list: the variant we can make is chosen
    r = car(gw, f"/ipfs/{fx.v1()}", accept="application/vnd.ipld.car;order=foo, "
                                           "application/vnd.ipld.car;order=dfs;dups=y;q=0.5")
    assert r.header("Content-Type") == CAR_Y
    # identity CIDs are never sent as blocks, even with dups=y
    ident = "bafkqaf3imvwgy3zaneqgc3janfxgy2lomvscay3jmqfa"
    r = car(gw, f"/ipfs/{ident}", accept="application/vnd.ipld.car; dups=y")
    assert r.header("Content-Type") == CAR_Y and car_cids(r)[1] == []


def test_car_etag(gw: Gateway) -> None:
    fx = gw.fixture(MIXED)
    file = f"/ipfs/{fx.v1()}/subdir/multiblock.txt"
    tags = {car(gw, file, format="car", **q).header("ETag") for q in (
        {}, {"dag_scope": "block"}, {"dag_scope": "entity"}, {"dag_scope": "entity", "entity_bytes": "0:10"},
        {"car_dups": "y"})}
    assert len(tags) == 5 and not any(t.startswith("W/") for t in tags)
    etag = car(gw, file, format="car").header("ETag")
    assert car(gw, file, format="car").header("ETag") == etag  # the bytes are deterministic
    assert gw.get(f"{file}?format=car", If_None_Match=etag).status == 304
    head = gw.request("HEAD", f"{file}?format=car")
    assert (head.status, head.body, head.header("ETag")) == (200, b"", etag)


def test_car_pathing_through_dag_cbor(gw: Gateway) -> None:
    fx = gw.fixture(CBOR_LINKS)
    doc = fx.cid("document")
    _, blocks = car_cids(car(gw, f"/ipfs/{fx.v1()}/document", format="car", dag_scope="entity"))
    assert blocks == [fx.v1(), str(doc)]
    single = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    _, blocks = car_cids(car(gw, f"/ipfs/{doc}/files/single", format="car"))
    assert blocks == [str(doc), single]
    assert gw.get(f"/ipfs/{doc}/files/none?format=car").status == 404
    assert gw.get(f"/ipfs/{doc}/cats?format=car").status == 501  # ends inside the block
    r = gw.get(f"/ipfs/{doc}/files/single")
    assert (r.status, r.body) == (200, fx.get(CID.parse(single)))
    r = gw.get(f"/ipfs/{doc}")  # DAG-CBOR as itself (no conversion)
    assert r.header("Content-Type") == "application/vnd.ipld.dag-cbor" and r.body == fx.get(doc)
    assert gw.get(f"/ipfs/{doc}?format=dag-cbor").body == fx.get(doc)
    assert gw.get(f"/ipfs/{doc}?format=dag-json").status == 406


# -- IPNS records -----------------------------------------------------------------------------------

def test_ipns_record_on_the_gateway(gw: Gateway) -> None:
    for name, rel in RECORDS.items():
        want = (gw.fixtures / rel).read_bytes()
        for r in (gw.get(f"/ipns/{name}?format=ipns-record"),
                  gw.get(f"/ipns/{name}", Accept="application/vnd.ipfs.ipns-record")):
            assert (r.status, r.body) == (200, want)
            assert r.header("Content-Type") == "application/vnd.ipfs.ipns-record"
            assert r.header("Content-Disposition").startswith(f'attachment; filename="{name}.ipns-record"')
            assert r.header("Cache-Control").startswith("public, max-age=1800")
            assert ipns.validate(r.body, PeerID.parse(name), time.time_ns()).sequence == 0
            assert gw.get(f"/ipns/{name}?format=ipns-record", If_None_Match=r.header("ETag")).status == 304
    r = gw.get(f"/ipns/{V1V2}?format=ipns-record&filename=testтест.ipns-record")
    assert r.header("Content-Disposition") == ("attachment; filename=\"test____.ipns-record\"; "
                                               "filename*=UTF-8''test%D1%82%D0%B5%D1%81%D1%82.ipns-record")
    assert gw.get(f"/ipns/{V1V2}/sub?format=ipns-record").status == 400
    assert gw.get("/ipfs/bafkqaaa?format=ipns-record").status == 400
    assert gw.get("/ipns/example.com?format=ipns-record").status == 400
    stranger = PeerID.from_public_key(PrivateKey.from_ed25519_seed(b"\1" * 32).public_key())
    assert gw.get(f"/ipns/{stranger}?format=ipns-record").status == 404
    assert gw.get(f"/ipns/{stranger.to_base58()}?format=ipns-record").status == 404


def test_ipns_record_of_a_local_key(gw: Gateway) -> None:
    info = gw.repo.keystore.gen("site-key")
    pub = gw.repo.names.publish("site-key", "/ipfs/bafkqaaa")
    r = gw.get("/ipns/site-key?format=ipns-record")
    assert (r.status, r.body) == (200, pub.record)
    assert f'filename="{info.id}.ipns-record"' in r.header("Content-Disposition")


def test_ipns_record_of_a_mirror(gw: Gateway, tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    add_mirror(gw.repo.mirrors(), gw.repo.keystore, "docs-mirror", str(tmp_path / "tree"),
               profile="unixfs-v1-2025", key="docs-key")
    pub = gw.repo.names.publish("docs-key", "/ipfs/bafkqaaa")
    r = gw.get("/ipns/docs-mirror?format=ipns-record")  # a mirror's record is its key's
    assert (r.status, r.body) == (200, pub.record)
    assert gw.get("/ipns/no-such-local-name?format=ipns-record").status == 400


def test_records_are_verified_once_across_requests(gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node keeps one ``Names`` (with its memory of verified records) for all requests and
    apps: serving an unchanged record again checks no signature (docs/design.md, Serving)."""
    gw.repo.keystore.gen("counted-key")
    pub = gw.repo.names.publish("counted-key", "/ipfs/bafkqaaa")  # a new record: not verified yet
    calls: list[bytes] = []
    validate = ipns.validate

    def counting(raw: bytes, *args: object, **kwargs: object) -> ipns.Record:
        calls.append(raw)
        return validate(raw, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ipns, "validate", counting)
    start = time.monotonic()
    for _ in range(3):
        assert gw.get("/ipns/counted-key?format=ipns-record").body == pub.record
        assert gw.get(f"/routing/v1/ipns/{pub.name}").body == pub.record
        assert gw.get("/ipns/counted-key").status == 200
    elapsed = time.monotonic() - start
    # a verified record is checked again after a second (naming/names.py, rule 3), never per request
    assert calls and len(calls) <= 1 + int(elapsed), (len(calls), elapsed)
    assert set(calls) == {pub.record}


def _record(seed: bytes, seq: int, value: str = "/ipfs/bafkqaaa",
            eol_ns: int | None = None) -> tuple[str, bytes]:
    key = PrivateKey.from_ed25519_seed(seed)
    raw = ipns.create(key, value, sequence=seq, eol_ns=eol_ns or time.time_ns() + ipns.HOUR,
                      ttl_ns=ipns.MINUTE)
    return str(PeerID.from_public_key(key.public_key())), raw


def test_routing_ipns_get(gw: Gateway) -> None:
    want = (gw.fixtures / RECORDS[V1V2]).read_bytes()
    r = gw.get(f"/routing/v1/ipns/{V1V2}", Accept="application/vnd.ipfs.ipns-record")
    assert (r.status, r.body) == (200, want)
    assert r.header("Content-Type") == "application/vnd.ipfs.ipns-record"
    assert r.header("Cache-Control").startswith("public, max-age=1800, stale-while-revalidate=")
    assert r.header("Expires") == "Sat, 14 Aug 2123 12:17:03 GMT"
    assert r.header("ETag") and r.header("Last-Modified") and "Accept" in r.header("Vary")
    assert gw.get(f"/routing/v1/ipns/{V1V2}").body == want  # no Accept: the record
    assert gw.get(f"/routing/v1/ipns/{V1V2}", Accept="text/html").status == 406
    assert gw.get("/routing/v1/ipns/not-a-name").status == 400
    assert gw.get("/routing/v1/ipns/site-key").status == 400  # names only, not local keys
    none, _ = _record(b"\2" * 32, 0)
    r = gw.get(f"/routing/v1/ipns/{none}", Accept="application/vnd.ipfs.ipns-record")
    assert r.status == 200 and r.header("Content-Type").startswith("text/plain")  # IPIP-513: no record
    assert "max-age=15" in r.header("Cache-Control")


def test_routing_ipns_put(gw: Gateway) -> None:
    ctype = {"Content-Type": "application/vnd.ipfs.ipns-record"}
    name, rec1 = _record(b"\3" * 32, 1, "/ipfs/bafkqaaa")
    _, rec0 = _record(b"\3" * 32, 0)
    _, expired = _record(b"\3" * 32, 5, eol_ns=time.time_ns() - ipns.SECOND)
    other, foreign = _record(b"\4" * 32, 9)
    url = f"/routing/v1/ipns/{name}"
    assert gw.request("PUT", url, ctype, rec1).status == 200
    assert gw.get(url).body == rec1
    assert gw.request("PUT", url, ctype, rec1).status == 200  # the same record again: a no-op
    assert gw.request("PUT", url, ctype, rec0).status == 409  # older
    assert gw.request("PUT", url, ctype, expired).status == 400
    assert gw.request("PUT", url, ctype, foreign).status == 400  # signed by another key
    tampered = bytearray(rec1)
    tampered[-5] ^= 1
    assert gw.request("PUT", url, ctype, bytes(tampered)).status == 400
    assert gw.request("PUT", url, {"Content-Type": "application/octet-stream"}, rec1).status == 406
    assert gw.request("PUT", url, ctype, b"\0" * (17 << 10)).status == 413
    assert gw.request("PUT", "/routing/v1/ipns/nope", ctype, rec1).status == 400
    assert gw.get(url).body == rec1  # nothing above replaced it
    for rel in BROKEN:  # the spec's invalid vectors
        broken = rel.split("/")[1].split("_")[0]
        raw = (gw.fixtures / rel).read_bytes()
        assert gw.request("PUT", f"/routing/v1/ipns/{broken}", ctype, raw).status == 400
    assert gw.request("PUT", f"/routing/v1/ipns/{other}", ctype, foreign).status == 200


# -- delegated routing: providers and peers ------------------------------------------------------------

def test_routing_providers(gw: Gateway) -> None:
    fx = gw.fixture(RAW_FIXTURE)
    me = gw.repo.keystore.identity().id
    r = gw.get(f"/routing/v1/providers/{fx.root}")
    assert r.status == 200 and r.header("Content-Type") == "application/json"
    assert r.json == {"Providers": [{"Schema": "peer", "ID": me.to_base58(), "Protocols": [
        "transport-ipfs-gateway-http"], "Addrs": [f"/ip4/127.0.0.1/tcp/{r.port}/http"]}]}
    assert "max-age=300" in r.header("Cache-Control") and "Accept" in r.header("Vary")
    assert r.header("Last-Modified")
    nd = gw.get(f"/routing/v1/providers/{fx.root}", Accept="application/x-ndjson")
    assert nd.header("Content-Type") == "application/x-ndjson"
    lines = nd.body.decode().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["ID"] == me.to_base58()
    empty = gw.get(f"/routing/v1/providers/{CID.hash(0x55, b'nobody has this')}")
    assert (empty.status, empty.json) == (200, {"Providers": []})  # IPIP-513: 200, not 404
    assert "max-age=15" in empty.header("Cache-Control")
    assert gw.get(f"/routing/v1/providers/{CID.hash(0x55, b'x')}", Accept="application/x-ndjson").body == b""
    assert gw.get("/routing/v1/providers/not-a-cid").status == 400
    assert gw.get(f"/routing/v1/providers/{fx.root}", Accept="text/html").status == 400


def test_routing_provider_addresses_and_filters(gw: Gateway) -> None:
    root = gw.fixture(RAW_FIXTURE).root
    for url, addr in (("https://localhost/", "/dns/localhost/tcp/443/https"),
                      ("http://[::1]:9090", "/ip6/::1/tcp/9090/http"),
                      ("https://127.0.0.1:8443/mirror/", "/ip4/127.0.0.1/tcp/8443/https/http-path/mirror")):
        r = gw.request("GET", f"/routing/v1/providers/{root}", config=GatewayConfig(public_url=url))
        assert r.json == {"Providers": [{"Schema": "peer", "ID": gw.repo.keystore.identity().id.to_base58(),
                                         "Protocols": ["transport-ipfs-gateway-http"], "Addrs": [addr]}]}
    def count(query: str) -> int:
        providers = gw.get(f"/routing/v1/providers/{root}?{query}").json
        assert isinstance(providers, dict)
        return len(providers["Providers"])
    assert count("filter-protocols=transport-bitswap") == 0
    assert count("filter-protocols=transport-bitswap,TRANSPORT-IPFS-GATEWAY-HTTP") == 1
    assert count("filter-addrs=!http") == 0
    assert count("filter-addrs=tcp,webrtc") == 1
    assert count("filter-addrs=webtransport") == 0


def test_routing_peers_and_unknown_paths(gw: Gateway) -> None:
    me = gw.repo.keystore.identity().id
    for form in (str(me), me.to_base58()):
        r = gw.get(f"/routing/v1/peers/{form}")
        assert r.status == 200 and r.json["Peers"][0]["ID"] == me.to_base58()  # type: ignore[index]
    stranger, _ = _record(b"\5" * 32, 0)
    assert gw.get(f"/routing/v1/peers/{stranger}").json == {"Peers": []}
    assert gw.get("/routing/v1/nothing-here").status == 400
    assert gw.request("PUT", "/routing/v1/providers", {}, b"{}").status == 501
    assert gw.get(f"/routing/v1/dht/closest/peers/{me}").status == 501
    for path in (f"/routing/v1/ipns/{me}", "/routing/v1/providers/bafkqaaa", "/routing/v1/x"):
        pre = gw.request("OPTIONS", path)
        assert pre.status == 200 and "PUT" in pre.header("Access-Control-Allow-Methods")
        assert pre.header("Access-Control-Allow-Origin") == "*"
    pre = gw.request("OPTIONS", "/ipfs/bafkqaaa")
    assert pre.status == 200 and pre.header("Access-Control-Allow-Origin") == "*"


def test_node_identity_key(gw: Gateway, tmp_path: Path) -> None:
    with Repo.open(tmp_path / "fresh") as repo:
        assert repo.keystore.names() == ["self"]  # made with the repository, as Kubo's init does
        pid = repo.gateway_backend().peer_id()
        assert repo.keystore.names() == ["self"] and repo.keystore.identity().id == pid
        with pytest.raises(InvalidInput):
            repo.keystore.gen("self")


# -- tar ------------------------------------------------------------------------------------------------

def _tar(reply: Reply) -> tarfile.TarFile:
    assert reply.status == 200, reply.body
    return tarfile.open(fileobj=io.BytesIO(reply.body), mode="r:")


def test_tar_of_a_directory(gw: Gateway) -> None:
    fx = gw.fixture(TAR_DIR)
    r = gw.get(f"/ipfs/{fx.root}?format=tar")
    assert r.header("Content-Type") == "application/x-tar"
    assert r.header("ETag") == f'W/"{fx.root}.x-tar"'
    assert r.header("Content-Disposition").startswith(f'attachment; filename="{fx.root}.tar"')
    with _tar(r) as t:
        names = t.getnames()
        assert names[0] == str(fx.root)
        member = t.extractfile(f"{fx.root}/ą/ę/file-źł.txt")
        assert member is not None and member.read() == b"I am a txt file on path with utf8\n"
        entries = {e.name for e in ex.list_dir(fx.get, fx.root)}
        assert {n.split("/")[1] for n in names[1:]} == entries
        assert all(t.getmember(n).isdir() for n in names if n.count("/") == 0)
    file = fx.cid("ą", "ę", "file-źł.txt")
    r = gw.get(f"/ipfs/{file}", Accept="application/x-tar")
    assert r.header("ETag") == f'W/"{file}.x-tar"' and r.header("Content-Location").endswith("?format=tar")
    with _tar(r) as t:
        member = t.extractfile(str(file))
        assert member is not None and member.read() == b"I am a txt file on path with utf8\n"
    named = gw.get(f"/ipfs/{fx.root}?format=tar&filename=testтест.tar")
    assert named.header("Content-Disposition") == (
        "attachment; filename=\"test____.tar\"; filename*=UTF-8''test%D1%82%D0%B5%D1%81%D1%82.tar")
    head = gw.request("HEAD", f"/ipfs/{fx.root}?format=tar")
    assert (head.status, head.body) == (200, b"")
    assert gw.get(f"/ipfs/{fx.root}?format=tar", If_None_Match=f'W/"{fx.root}.x-tar"').status == 304


def test_tar_names_that_leave_the_root(gw: Gateway) -> None:
    inside = gw.fixture(TAR_INSIDE)
    with _tar(gw.get(f"/ipfs/{inside.root}?format=tar")) as t:
        member = t.extractfile(f"{inside.root}/foobar/file")  # foobar/directory/../file
        assert member is not None and member.read() == b"Hello, world!\n"
    outside = gw.fixture(TAR_OUTSIDE)
    r = gw.get(f"/ipfs/{outside.root}?format=tar")
    assert r.status == 400 and b"leaves the root" in r.body


def test_tar_symlink_and_non_unixfs(gw: Gateway) -> None:
    fx = gw.fixture(SYMLINK)
    with _tar(gw.get(f"/ipfs/{fx.root}?format=tar")) as t:
        links = [m for m in t.getmembers() if m.issym()]
        assert links, "the fixture's symlink stays a symlink"
        for m in links:
            node = ex.stat(fx.get, fx.cid(m.name.split("/", 1)[1]))
            assert node.data is not None and m.linkname.encode() == node.data.data
    doc = gw.fixture(CBOR_LINKS).cid("document")
    assert gw.get(f"/ipfs/{doc}?format=tar").status == 400


def _directory(gw: Gateway, entries: dict[str, CID]) -> CID:
    """Store a flat UnixFS directory over blocks of the store (links sorted by name)."""
    links = tuple(dagpb.PBLink(cid, name, 0) for name, cid in sorted(entries.items()))
    block = dagpb.encode(dagpb.PBNode(ufs.UnixFSData(ufs.DIRECTORY).encode(), links))
    cid = CID.hash(0x70, block)
    with gw.repo.store.session() as s:
        s.put(cid, block)
    return cid


def test_tar_missing_block_before_and_after_the_status(gw: Gateway) -> None:
    missing = gw.fixture(MISSING).cid()
    assert gw.get(f"/ipfs/{missing}?format=tar").status == 404  # found in the first 64 KiB
    big = gw.fixture(HAMT).cid()  # ~0.5 MiB of tar first, then the gap
    r = gw.get(f"/ipfs/{_directory(gw, {'a': big, 'b': missing})}?format=tar")
    assert r.status == 200 and r.truncated
    assert len(r.body) > 64 << 10


def test_a_file_cut_short_by_a_missing_block(gw: Gateway) -> None:
    """An error after the headers went out (here in the path gateway's file stream) cannot change
    the status: the app closes the connection, so the client sees an incomplete body."""
    fx = gw.fixture(MISSING)
    r = gw.get(f"/ipfs/{fx.cid()}")
    assert (r.status, r.truncated, r.header("Content-Length")) == (200, True, "3072")
    assert r.body == b"".join(ex.read(fx.get, CID.parse("QmPKt7ptM2ZYSGPUc8PmPT2VBkLDK3iqpG9TBJY7PCE9rF")))

"""Request plumbing shared by the gateway handlers: content paths, formats, headers, streaming.

A request for ``/ipfs/{cid}/{path}`` or ``/ipns/{name}/{path}`` becomes a :class:`Target`: the
resolved CID, the roots along the path (for ``X-Ipfs-Roots``), and the caching policy of its
namespace (immutable for /ipfs, the record's TTL for /ipns). :func:`negotiate` turns ``?format=``
and ``Accept`` into the response format (path-gateway.md, trustless-gateway.md):

- ``?format=`` wins over ``Accept``; an unknown ``?format=`` value or a bad ``car-*`` parameter
  is 400. ``Accept`` is read by quality, our formats before generic types of equal quality;
  generic types (``text/html``, ``*/*``, ``application/json``…) mean the deserialized response.
  An ``Accept`` that names only IPFS/IPLD types or variants we cannot produce is 406.
- Paths may cross DAG-CBOR blocks (IPLD pathing through map keys and list indexes up to a link);
  a path that ends inside a block is 501, as the spec asks.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar
from urllib.parse import quote, urlencode

from aiohttp import web

from ipmirror.codec import dagcbor
from ipmirror.codec.cid import CID, DAG_CBOR
from ipmirror.errors import InvalidInput, PathNotFound
from ipmirror.gateway.backend import Backend
from ipmirror.unixfs import exporter as ex

IMMUTABLE = "public, max-age=29030400, immutable"
MAX_PATH = 4096
MAX_SEGMENT = 1024
T = TypeVar("T")
Getter = Callable[[CID], bytes]

RAW_TYPE: Final = "application/vnd.ipld.raw"
CAR_TYPE: Final = "application/vnd.ipld.car"
TAR_TYPE: Final = "application/x-tar"
IPNS_RECORD_TYPE: Final = "application/vnd.ipfs.ipns-record"
FORMATS: Final = {"raw": RAW_TYPE, "car": CAR_TYPE, "tar": TAR_TYPE, "ipns-record": IPNS_RECORD_TYPE,
                  "dag-json": "application/vnd.ipld.dag-json", "dag-cbor": "application/vnd.ipld.dag-cbor",
                  "json": "application/json", "cbor": "application/cbor"}
# media types that select a format through Accept; application/json and application/cbor do not
# (package managers send them for plain files), only ?format=json|cbor does
_ACCEPTED: Final = {t: f for f, t in FORMATS.items() if f not in ("json", "cbor")}


CORS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Range, User-Agent, X-Requested-With",
    "Access-Control-Expose-Headers": "Content-Range, Content-Length, X-Ipfs-Path, X-Ipfs-Roots, "
                                     "X-Chunked-Output, X-Stream-Output",
}
STARTED: Final[web.RequestKey[bool]] = web.RequestKey("response-started", bool)  # its headers went out


def decorate(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Headers every response gets: CORS, and ``Vary: Accept`` on content and routing answers.
    The error middleware applies it to returned responses, ``start_stream`` to streamed ones
    (cheaper than aiohttp's ``on_response_prepare`` signal, measured ~10 µs a request)."""
    h = response.headers
    for k, v in CORS.items():
        h.setdefault(k, v)
    if request.path.startswith(("/ipfs/", "/ipns/", "/routing/")):
        vary = h.get("Vary", "")
        if "accept" not in vary.lower():
            h["Vary"] = f"{vary}, Accept" if vary else "Accept"


async def start_stream(request: web.Request, resp: web.StreamResponse) -> None:
    """Send a streamed response's headers; from here on an error can only cut the body short."""
    decorate(request, resp)
    request[STARTED] = True
    await resp.prepare(request)


@dataclass
class GatewayConfig:
    public_url: str = ""  # how clients reach us (behind a reverse proxy), for routing answers
    token: str = ""  # required (Bearer) for endpoints that change state, except IPNS record PUT
    listing_chunk: int = 512  # directory listing rows per write


@dataclass
class Target:
    """What a request path resolved to. ``segments`` are the request's own components below the
    root (or below the name, for /ipns/); ``roots`` the CID of every step from the root;
    ``steps`` every component walked below ``roots[0]`` (for /ipns/: the name's path, then
    ``segments``), so ``/ipfs/{roots[0]}/{steps…}`` is the immutable path."""

    namespace: str  # "ipfs" | "ipns"
    head: str  # the CID or the name, as requested
    segments: list[str]
    cid: CID
    roots: list[CID] = field(default_factory=list)
    cache_control: str = IMMUTABLE
    last_modified: float | None = None
    steps: list[str] = field(default_factory=list)
    texts: tuple[str, str] | None = None  # str(cid) and X-Ipfs-Roots, when known (cached)

    @property
    def root(self) -> CID:
        return self.roots[0]

    @property
    def cid_text(self) -> str:
        return self.texts[0] if self.texts else str(self.cid)

    @property
    def roots_text(self) -> str:
        return self.texts[1] if self.texts else ",".join(str(c) for c in self.roots)

    @property
    def immutable_path(self) -> str:
        return "/".join(["/ipfs", str(self.root), *self.steps])


def split_request_path(raw: str) -> list[str]:
    """Path segments below the root, decoded once. Empty and ``.`` segments are dropped (apt asks
    for ``/./Packages`` in flat repositories); ``..``, NUL and over-long input are refused."""
    if len(raw) > MAX_PATH:
        raise InvalidInput("path too long")
    out = []
    for seg in raw.split("/"):
        if seg in ("", "."):
            continue
        if seg == ".." or "\0" in seg or len(seg) > MAX_SEGMENT:
            raise InvalidInput(f"invalid path segment {seg[:40]!r}")
        out.append(seg)
    return out


async def run_blocking(fn: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, fn)


def _ipld_step(value: object, seg: str) -> object:
    if isinstance(value, dict) and seg in value:
        return value[seg]
    if isinstance(value, list) and seg.isdigit() and int(seg) < len(value):
        return value[int(seg)]
    raise PathNotFound(f"no field {seg!r}")


class NodeCache:
    """Decoded directory nodes (and HAMT shards) by CID, with a name index for flat directories.

    Content never changes under a CID, so entries are always valid; the cache only bounds memory
    (by the blocks' encoded size). Without it every request decodes each directory on its path
    again: a 2,000-entry directory costs ~13 ms of CPU per request (docs/benchmarks.md).
    """

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self._max = max_bytes
        self._size = 0
        self._items: OrderedDict[bytes, tuple[ex.Node, dict[str, CID] | None]] = OrderedDict()
        self._lock = threading.Lock()

    def _entry(self, get: Getter, cid: CID) -> tuple[ex.Node, dict[str, CID] | None]:
        key = cid.buffer
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        node = ex.stat(get, cid)
        index = ({lk.name or "": lk.hash for lk in node.pb.links}
                 if node.kind == "directory" and node.pb is not None else None)
        if node.is_dir:  # files are streamed, not cached
            with self._lock:
                if key not in self._items:
                    self._items[key] = (node, index)
                    self._size += node.block_size
                    while self._size > self._max and self._items:
                        _k, (old, _i) = self._items.popitem(last=False)
                        self._size -= old.block_size
        return node, index

    def stat(self, get: Getter, cid: CID) -> ex.Node:
        return self._entry(get, cid)[0]

    def child(self, get: Getter, cid: CID, name: str) -> tuple[ex.Node, CID | None]:
        node, index = self._entry(get, cid)
        if index is not None:
            return node, index.get(name)
        if not node.is_dir:
            return node, None
        return node, ex.lookup(get, node, name, self.stat)


def walk_path(get: Getter, root: CID, segments: list[str],
              cache: NodeCache | None = None) -> tuple[CID, list[CID]]:
    """Resolve ``segments`` below ``root``; returns the target and the CID of every step.

    Without ``cache``, every block is read through ``get``, in path order, so a recording getter
    learns the blocks that prove the path (the CAR handler does this)."""
    roots = [root]
    cid = root
    i = 0
    while i < len(segments):
        if cid.codec == DAG_CBOR:
            value: object = dagcbor.decode(get(cid))
            while True:
                try:
                    value = _ipld_step(value, segments[i])
                except PathNotFound:
                    raise PathNotFound(f"no field {segments[i]!r} in {cid} (at "
                                       f"/ipfs/{root}/{'/'.join(segments[:i + 1])})") from None
                i += 1
                if isinstance(value, CID) or i == len(segments):
                    break
                roots.append(cid)  # a step inside the same block
            if not isinstance(value, CID):
                raise web.HTTPNotImplemented(text=f"/ipfs/{root}/{'/'.join(segments)} ends inside the "
                                                  f"DAG-CBOR block {cid}, not at a link; pathing into "
                                                  "IPLD data is not supported\n")
            cid = value
            roots.append(cid)
            continue
        seg = segments[i]
        if cache is not None:
            node, child = cache.child(get, cid, seg)
        else:
            node = ex.stat(get, cid)
            child = ex.lookup(get, node, seg) if node.is_dir else None
        if not node.is_dir:
            raise PathNotFound(f"{'/'.join(segments[:i]) or root} is not a directory")
        if child is None:
            raise PathNotFound(f"no link named {seg!r} under /ipfs/{root}/{'/'.join(segments[:i])}")
        cid = child
        roots.append(cid)
        i += 1
    return cid, roots


def resolve_target(backend: Backend, namespace: str, head: str, rest: list[str],
                   get: Getter | None = None, cache: NodeCache | None = None) -> Target:
    """Resolve ``/{namespace}/{head}/{rest…}`` (blocking: reads blocks, through ``get`` if given;
    ``cache`` applies only to plain reads)."""
    read = get or backend.get
    if get is not None:
        cache = None
    if namespace == "ipfs":
        root = CID.parse(head)
        cid, roots = walk_path(read, root, rest, cache)
        return Target("ipfs", head, rest, cid, roots, steps=rest)
    res = backend.resolve_name(head)  # one lookup per request: a new version is seen at once
    steps = res.path + rest
    cid, roots = walk_path(read, res.root, steps, cache)
    return Target("ipns", head, rest, cid, roots, f"public, max-age={res.ttl_s}", res.modified, steps)


def ipfs_headers(t: Target, request_path: str) -> dict[str, str]:
    h = {"X-Ipfs-Path": request_path, "X-Ipfs-Roots": t.roots_text, "Cache-Control": t.cache_control}
    if t.last_modified is not None:
        h["Last-Modified"] = email.utils.formatdate(t.last_modified, usegmt=True)
    return h


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    tags = [x.strip() for x in header.split(",")]
    return etag in tags or ("W/" + etag) in tags or etag.removeprefix("W/") in tags


def content_disposition(filename: str, attachment: bool) -> str:
    """``inline|attachment; filename="…"; filename*=UTF-8''…``: the ASCII form has every other
    character (and ``"``, ``\\``, controls) replaced by ``_``, one for one (path-gateway.md)."""
    kind = "attachment" if attachment else "inline"
    ascii_name = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def aiter_blocking(gen: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Pull a blocking generator from a thread, one item at a time."""
    sentinel = object()

    def nxt() -> object:
        return next(gen, sentinel)

    while True:
        item = await run_blocking(nxt)
        if item is sentinel:
            return
        yield item  # type: ignore[misc]


async def write_all(resp: web.StreamResponse, chunks: AsyncIterator[bytes]) -> None:
    async for c in chunks:
        await resp.write(c)


def batched(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Join small chunks into pieces of at least ``size`` bytes (fewer thread hops and writes).
    When ``chunks`` fails, what it gave before still comes out first."""
    buf: list[bytes] = []
    n = 0
    try:
        for c in chunks:
            buf.append(c)
            n += len(c)
            if n >= size:
                yield b"".join(buf)
                buf, n = [], 0
    except Exception:
        if buf:
            yield b"".join(buf)
        raise
    if buf:
        yield b"".join(buf)


# -- format negotiation ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MediaRange:
    type: str  # lower case, e.g. "application/vnd.ipld.car"
    params: Mapping[str, str]  # lower-case names, without q
    q: float


def parse_accept(headers: list[str]) -> list[MediaRange]:
    """Media ranges of ``Accept`` headers, best first (stable for equal quality); q=0 dropped,
    malformed entries skipped."""
    out: list[MediaRange] = []
    for header in headers:
        for item in header.split(","):
            mtype, *raw_params = (p.strip() for p in item.split(";"))
            if "/" not in mtype:
                continue
            params: dict[str, str] = {}
            q = 1.0
            for p in raw_params:
                k, eq, v = p.partition("=")
                k, v = k.strip().lower(), v.strip().strip('"')
                if not eq or not k:
                    continue
                if k == "q":
                    try:
                        q = min(max(float(v), 0.0), 1.0)
                    except ValueError:
                        q = 0.0
                else:
                    params[k] = v
            if q > 0:
                out.append(MediaRange(mtype.lower(), params, q))
    return sorted(out, key=lambda m: (-m.q, m.type not in _ACCEPTED))


@dataclass(frozen=True, slots=True)
class CarParams:
    """The CAR variant we answer with: always CARv1 in depth-first order (``order=unk`` is
    answered with ``dfs``, a valid choice for "any order"); ``dups`` as asked, default ``n``."""

    dups: bool = False
    given: Mapping[str, str] = field(default_factory=dict)  # as sent in Accept (for Content-Location)

    @property
    def content_type(self) -> str:
        return f"{CAR_TYPE}; version=1; order=dfs; dups={'y' if self.dups else 'n'}"


def car_params(accept: Mapping[str, str], query: Mapping[str, str]) -> CarParams:
    """Merge CAR parameters of Accept and the URL (``car-version``, ``car-order``, ``car-dups``
    win); InvalidInput for a variant we cannot produce."""
    merged = {k: v.lower() for k, v in accept.items() if k in ("version", "order", "dups")}
    for k in ("version", "order", "dups"):
        if query.get(f"car-{k}"):
            merged[k] = query[f"car-{k}"].lower()
    if merged.get("version", "1") != "1":
        raise InvalidInput(f"CAR version {merged['version']!r} is not supported: only version=1")
    if merged.get("order", "dfs") not in ("dfs", "unk"):
        raise InvalidInput(f"CAR order {merged['order']!r} is not supported: use dfs or unk")
    if merged.get("dups", "n") not in ("y", "n"):
        raise InvalidInput(f"CAR dups must be y or n, not {merged['dups']!r}")
    given = {k: v for k, v in accept.items() if k in ("version", "order", "dups")}
    return CarParams(merged.get("dups") == "y", given)


@dataclass(frozen=True, slots=True)
class Negotiated:
    format: str  # "" (deserialized) or a key of FORMATS
    car: CarParams = field(default_factory=CarParams)
    from_accept: bool = False  # chosen by Accept alone: answer with a Content-Location

    @property
    def media_type(self) -> str:
        return FORMATS.get(self.format, "")

    def content_location(self, request: web.Request) -> dict[str, str]:
        """``Content-Location`` with ``?format=`` (and the CAR parameters Accept gave), so caches
        keep responses negotiated by Accept apart."""
        if not self.from_accept:
            return {}
        q = dict(request.query)
        q["format"] = self.format
        if self.format == "car":
            for k, v in self.car.given.items():
                q.setdefault(f"car-{k}", v)
        return {"Content-Location": f"{request.rel_url.raw_path}?{urlencode(q)}"}


@functools.lru_cache(maxsize=256)
def plain_accept(accept: tuple[str, ...]) -> Negotiated:
    """``negotiate`` for a URL without a query, memoized: clients send a handful of Accept values."""
    return negotiate({}, list(accept))


def negotiate(query: Mapping[str, str], accept: list[str]) -> Negotiated:
    """The response format for ``?format=`` and Accept (see the module notes). Raises
    HTTPBadRequest (bad URL parameters) or HTTPNotAcceptable (nothing in Accept we can make)."""
    ranges = parse_accept(accept)
    try:
        car_params({}, query)  # bad car-* URL parameters are 400 whatever the format
    except InvalidInput as e:
        raise web.HTTPBadRequest(text=f"{e}\n") from None
    fmt = query.get("format")
    if fmt:
        if fmt not in FORMATS:
            raise web.HTTPBadRequest(text=f"unknown format {fmt!r} (known: {', '.join(FORMATS)})\n")
        if fmt != "car":
            return Negotiated(fmt)
        for m in ranges:  # CAR parameters may come from Accept (IPIP-523)
            if m.type == CAR_TYPE:
                try:
                    return Negotiated("car", car_params(m.params, query))
                except InvalidInput:
                    continue
        return Negotiated("car", car_params({}, query))
    skipped: list[str] = []
    for m in ranges:
        f = _ACCEPTED.get(m.type)
        if f is None:
            if m.type.startswith(("application/vnd.ipld.", "application/vnd.ipfs.")):
                skipped.append(m.type)
                continue
            return Negotiated("")
        if f == "car":
            try:
                return Negotiated("car", car_params(m.params, query), True)
            except InvalidInput as e:
                skipped.append(f"{m.type} ({e})")
                continue
        return Negotiated(f, from_accept=True)
    if skipped:
        raise web.HTTPNotAcceptable(text=f"cannot produce any of: {', '.join(skipped)}\n")
    return Negotiated("")

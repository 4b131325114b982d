"""The trustless gateway: raw blocks and CAR streams (ipfs/specs trustless-gateway.md, IPIP-402,
IPIP-412, IPIP-523). Also the codec formats (``?format=dag-json`` …) as the block itself, never a
conversion (IPIP-524).

Usage (from the app's ``content`` handler)::

    rec = PathRecorder(backend.get)
    t = resolve_target(backend, Resolver(rec), "ipfs", cid, rest)   # rec.blocks: the path's proof
    return await serve_car(request, backend, t, rec.blocks, negotiated)

Rules kept here:

- A CAR is CARv1, depth-first, and its header root is the CID at the end of the path (as Kubo
  does; the spec leaves roots open and tells clients to ignore them): so ``ipmirror dag import``
  of a ``dag-scope=all`` answer pins exactly the requested DAG. The blocks that prove the path
  come first, in path order, then the blocks of ``dag-scope``: ``block`` the target only,
  ``entity`` a file's blocks (those of ``entity-bytes`` only) or a directory with its HAMT shards
  (not its entries), ``all`` the whole DAG.
- ``dups=n`` sends a block once; ``dups=y`` sends it every time the walk meets it. Identity CIDs
  are never sent. Bytes are deterministic for a path and parameters, so the ETag is strong.
- The status is decided once the header, the path blocks and the target block are in hand: a
  missing one is 404, an ``entity-bytes`` range that starts past the end of a file is 400. After
  that the stream is committed to 200; a block missing later cuts the response short (the
  connection closes without the final chunk), as the spec says clients must detect.
- Memory stays bounded: blocks are read one at a time in a worker thread and written in ~256 KiB
  pieces; ``dups=n`` keeps the set of sent multihashes (34 bytes each), as any dedupe must.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from aiohttp import web

from ipmirror.codec import unixfs_pb as ufs
from ipmirror.codec.car import encode_frame, encode_header
from ipmirror.codec.cid import CID, DAG_PB, RAW
from ipmirror.errors import DecodeError, InvalidInput
from ipmirror.gateway.backend import Backend
from ipmirror.gateway.headers import content_disposition, etag_matches
from ipmirror.gateway.negotiate import CODEC_FORMATS, RAW_TYPE, Negotiated
from ipmirror.gateway.ranges import send_ranged
from ipmirror.gateway.streaming import aiter_blocking, batched, run_blocking, start_stream
from ipmirror.gateway.target import Target
from ipmirror.store.dag import links
from ipmirror.unixfs import exporter as ex
from ipmirror.unixfs.exporter import Getter

CHUNK = 256 << 10
_INT = re.compile(r"-?[0-9]{1,19}")


class PathRecorder:
    """A block getter that keeps every block it read, in order: the blocks proving a path."""

    def __init__(self, get: Getter) -> None:
        self._get = get
        self.blocks: list[tuple[CID, bytes]] = []

    def __call__(self, cid: CID) -> bytes:
        data = self._get(cid)
        self.blocks.append((cid, data))
        return data


def _trustless_headers(request: web.Request, t: Target, fmt: Negotiated, etag: str, ctype: str,
                       filename: str, attachment: bool = True) -> dict[str, str]:
    attachment = attachment or request.query.get("download") == "true"
    return {**t.headers(request.path), **fmt.content_location(request.rel_url.raw_path, request.query),
            "ETag": etag, "Content-Type": ctype, "X-Content-Type-Options": "nosniff",
            "Content-Disposition": content_disposition(request.query.get("filename") or filename, attachment)}


# -- raw blocks -----------------------------------------------------------------------------------

async def serve_block(request: web.Request, backend: Backend, t: Target,
                      fmt: Negotiated) -> web.StreamResponse:
    """The block at the end of the path, as it is: ``?format=raw``, or a codec format that is the
    block's own codec (anything else would be a conversion: 406). JSON is shown inline, the rest
    is an attachment."""
    if fmt.format == "raw":
        ctype, etag, name = RAW_TYPE, f'"{t.cid}.raw"', f"{t.cid}.bin"
    else:
        if CODEC_FORMATS[fmt.format] != t.cid.codec:
            raise web.HTTPNotAcceptable(text=f"{t.cid} is not {fmt.format}; this gateway does not "
                                             "convert between codecs (fetch ?format=raw)\n")
        ctype, etag, name = fmt.media_type, f'"{t.cid}.{fmt.format}"', f"{t.cid}.{fmt.format.split('-')[-1]}"
    headers = _trustless_headers(request, t, fmt, etag, ctype, name, not name.endswith(".json"))
    headers["Accept-Ranges"] = "bytes"
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    data = await run_blocking(lambda: backend.get(t.cid))
    return await send_ranged(request, headers, len(data), body=data)


# -- CAR ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ByteRange:
    """``entity-bytes=from:to``: inclusive offsets, negative from the end; ``to`` None is ``*``."""

    start: int
    stop: int | None

    @classmethod
    def parse(cls, text: str) -> ByteRange:
        a, sep, b = text.partition(":")
        if not sep or not _INT.fullmatch(a) or not (b == "*" or _INT.fullmatch(b)):
            raise InvalidInput(f"entity-bytes must be FROM:TO (integers, TO may be '*'), not {text!r}")
        start, stop = int(a), None if b == "*" else int(b)
        if stop is not None and (start >= 0) == (stop >= 0) and start > stop:
            raise InvalidInput(f"entity-bytes {text!r}: FROM is after TO")
        return cls(start, stop)

    def resolve(self, size: int) -> tuple[int, int]:
        """``[first, end)`` within a file of ``size`` bytes (clamped; may be empty)."""
        first = max(size + self.start, 0) if self.start < 0 else self.start
        last = size - 1 if self.stop is None else (size + self.stop if self.stop < 0 else self.stop)
        return first, min(last, size - 1) + 1

    def __str__(self) -> str:
        return f"{self.start}:{'*' if self.stop is None else self.stop}"


def car_request(request: web.Request) -> tuple[str, ByteRange | None]:
    """``dag-scope`` (default ``all``; ``entity`` when only ``entity-bytes`` is given) and the
    byte range, which counts for ``dag-scope=entity`` only."""
    q = request.query
    scope = q.get("dag-scope") or ("entity" if "entity-bytes" in q else "all")
    if scope not in ("block", "entity", "all"):
        raise web.HTTPBadRequest(text=f"dag-scope must be block, entity or all, not {scope!r}\n")
    rng = None
    if "entity-bytes" in q and scope == "entity":
        try:
            rng = ByteRange.parse(q["entity-bytes"])
        except InvalidInput as e:
            raise web.HTTPBadRequest(text=f"{e}\n") from None
    return scope, rng


def car_etag(t: Target, scope: str, rng: ByteRange | None, dups: bool) -> str:
    key = f"{t.immutable_path}\0scope={scope}\0range={rng}\0dups={dups}\0order=dfs\0v1"
    return f'"{t.root}.car.{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}"'


async def serve_car(request: web.Request, backend: Backend, t: Target, path_blocks: list[tuple[CID, bytes]],
                    fmt: Negotiated) -> web.StreamResponse:
    scope, rng = car_request(request)
    etag = car_etag(t, scope, rng, fmt.car.dups)
    name = f"{t.root}_{t.steps[-1]}.car" if t.steps else f"{t.root}.car"
    headers = _trustless_headers(request, t, fmt, etag, fmt.car.content_type, name)
    headers["Accept-Ranges"] = "none"
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    chunks = car_chunks(backend.get, t.cid, path_blocks, scope, rng, fmt.car.dups)
    first = await run_blocking(lambda: next(chunks))  # 404/400 still possible here
    resp = web.StreamResponse(status=200, headers=headers)
    await start_stream(request, resp)
    if request.method == "HEAD":
        return resp
    await resp.write(first)
    async for chunk in aiter_blocking(batched(chunks, CHUNK)):
        await resp.write(chunk)
    await resp.write_eof()
    return resp


class _Frames:
    """CAR frames with the ``dups`` rule applied; identity CIDs are never framed.

    With ``dups=n`` a block is framed once, and a block whose whole subtree went out already is
    not walked again (``done``); one sent for part of a file range is walked again when met."""

    def __init__(self, dups: bool) -> None:
        self.dups = dups
        self.sent: set[bytes] = set()
        self.done: set[bytes] = set()

    def frame(self, cid: CID, data: bytes) -> bytes:
        if cid.is_identity:
            return b""
        if not self.dups:
            if cid.multihash in self.sent:
                return b""
            self.sent.add(cid.multihash)
        return encode_frame(cid, data)

    def skip(self, cid: CID) -> bool:
        """True if the subtree under ``cid`` was sent whole already (never with ``dups=y``)."""
        return not self.dups and cid.multihash in self.done

    def whole(self, cid: CID) -> None:
        """Note that the subtree under ``cid`` is being sent whole."""
        if not self.dups:
            self.done.add(cid.multihash)


def car_chunks(get: Getter, target: CID, path_blocks: list[tuple[CID, bytes]], scope: str,
               rng: ByteRange | None, dups: bool) -> Iterator[bytes]:
    """The CAR as byte chunks (blocking). The first chunk holds the header, the path blocks and
    the target block; everything that can make the request fail with a status happens before it."""
    frames = _Frames(dups)
    data = get(target)
    span: tuple[int, int] | None = None
    node: ex.Node | None = None
    if scope == "entity" and target.codec in (DAG_PB, RAW):
        try:
            node = ex.decode_node(target, data)
        except DecodeError:  # dag-pb but not UnixFS: the block is the entity
            node = None
        if node is not None and rng is not None and node.kind == "file":
            span = rng.resolve(node.size)
            if node.size > 0 and span[0] >= node.size:
                raise InvalidInput(f"entity-bytes={rng} starts past the end of the file ({node.size} bytes)")
    yield b"".join([encode_header([target]), *(frames.frame(c, d) for c, d in path_blocks),
                    frames.frame(target, data)])
    if scope == "block":
        return
    if scope == "all":
        yield from _walk_all(get, target, data, frames)
        return
    if node is None or node.pb is None:  # not UnixFS, or a raw leaf: the block is the entity
        return
    if node.kind == "file":
        first, end = span if span is not None else (0, node.size)
        if first < end:
            yield from _file_range(get, node, first, end, frames)
    elif node.kind == "hamt-sharded-directory":
        yield from _hamt_shards(get, node, frames)


def _walk_all(get: Getter, root: CID, data: bytes, frames: _Frames) -> Iterator[bytes]:
    """Every block below ``root`` (already sent), depth first, in link order. With ``dups=n`` a
    block met again is skipped with its subtree (sent whole the first time)."""
    frames.whole(root)
    stack = list(reversed(links(root, data)))
    while stack:
        cid = stack.pop()
        if frames.skip(cid):
            continue
        block = get(cid)
        yield frames.frame(cid, block)
        frames.whole(cid)
        stack.extend(reversed(links(cid, block)))


def _file_range(get: Getter, node: ex.Node, first: int, end: int, frames: _Frames) -> Iterator[bytes]:
    """The blocks below a file node (already sent) that hold bytes ``[first, end)``: intermediate
    nodes and leaves overlapping the range, depth first (``blocksizes`` skip the rest unread)."""
    assert node.pb is not None and node.data is not None
    sizes = node.data.blocksizes
    if len(sizes) != len(node.pb.links):
        raise DecodeError(f"{node.cid}: {len(sizes)} blocksizes for {len(node.pb.links)} links")
    pos = len(node.data.data or b"")
    for link, size in zip(node.pb.links, sizes, strict=True):
        lo, hi = pos, pos + size
        pos = hi
        if hi <= first or lo >= end:
            if lo >= end:
                break
            continue
        whole = first <= lo and hi <= end
        if frames.skip(link.hash):
            continue  # its whole subtree went out before (dups=n)
        data = get(link.hash)
        yield frames.frame(link.hash, data)
        child = ex.decode_node(link.hash, data)
        if child.pb is None:
            frames.whole(link.hash)
        elif whole:
            yield from _walk_all(get, link.hash, data, frames)
        else:
            yield from _file_range(get, child, max(first, lo) - lo, min(end, hi) - lo, frames)


def _hamt_shards(get: Getter, node: ex.Node, frames: _Frames) -> Iterator[bytes]:
    """The shards below a HAMT directory node (already sent), depth first; not the entries."""
    assert node.pb is not None and node.data is not None and node.data.fanout
    pad = len(f"{node.data.fanout - 1:X}")
    for lk in node.pb.links:
        if len(lk.name or "") != pad or frames.skip(lk.hash):
            continue
        data = get(lk.hash)
        child = ex.decode_node(lk.hash, data)
        if child.data is None or child.data.type != ufs.HAMT_SHARD:
            raise DecodeError(f"{node.cid}: HAMT child {lk.hash} is not a shard")
        yield frames.frame(lk.hash, data)
        frames.whole(lk.hash)
        yield from _hamt_shards(get, child, frames)

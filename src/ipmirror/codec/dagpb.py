"""DAG-PB codec (pure), strict per the IPLD DAG-PB spec.

Usage::

    block = encode(PBNode(data=b"...", links=(PBLink(cid, "name", 12),)))
    node = decode(block)

Rules:
- Encoding is canonical: every link as Hash, Name, Tsize (in that order, each only if present),
  all links before Data. Links must already be sorted by Name bytes (the encoder checks; the
  UnixFS layer sorts).
- Decoding rejects anything else: unknown fields, wrong wire types, fields out of order or
  repeated, Data before/between Links, a link without a valid Hash, truncated input, trailing
  bytes inside a message, non-minimal varints.
- Names are ``str``; bytes that are not UTF-8 round-trip through ``surrogateescape`` (file names
  on POSIX are bytes, and Kubo stores them as they are).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from ipmirror.codec import varint
from ipmirror.codec.cid import CID
from ipmirror.errors import DecodeError, InvalidCID, InvalidInput

# field tags (field number << 3 | wire type): PBNode.Data = 1, PBNode.Links = 2 (length-delimited);
# PBLink.Hash = 1, PBLink.Name = 2 (length-delimited), PBLink.Tsize = 3 (varint)
_TAG_DATA: Final = b"\x0a"
_TAG_LINKS: Final = b"\x12"
_TAG_HASH: Final = b"\x0a"
_TAG_NAME: Final = b"\x12"
_TAG_TSIZE: Final = b"\x18"


@dataclass(frozen=True, slots=True)
class PBLink:
    hash: CID
    name: str | None = None
    tsize: int | None = None


@dataclass(frozen=True, slots=True)
class PBNode:
    data: bytes | None = None
    links: tuple[PBLink, ...] = ()


def name_bytes(name: str) -> bytes:
    try:
        return name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise InvalidInput(f"link name {name!r} cannot be encoded as bytes") from None


def _encode_link(link: PBLink) -> bytes:
    h = link.hash.buffer
    parts = [_TAG_HASH, varint.encode(len(h)), h]
    if link.name is not None:
        nb = name_bytes(link.name)
        parts += [_TAG_NAME, varint.encode(len(nb)), nb]
    if link.tsize is not None:
        if not 0 <= link.tsize < 1 << 64:
            raise InvalidInput("link Tsize must be a uint64")
        parts += [_TAG_TSIZE, varint.encode(link.tsize)]
    return b"".join(parts)


def encode_link(link: PBLink) -> bytes:
    """One link as it appears in an encoded node (its ``Links`` tag and length included): what
    :func:`split` returns as a link's encoded bytes, and what :func:`join` takes."""
    body = _encode_link(link)
    return b"".join((_TAG_LINKS, varint.encode(len(body)), body))


def join(encoded_links: Iterable[bytes], data: bytes | None) -> bytes:
    """A node from links already encoded (by :func:`encode_link`, or copied from :func:`split`),
    in the order given, which must be the sort order by Name, then ``data``. The fast path of
    directory updates: unchanged links are copied as bytes, not decoded and encoded again."""
    if data is None:
        return b"".join(encoded_links)
    return b"".join((*encoded_links, _TAG_DATA, varint.encode(len(data)), data))


def encode_links(links: Sequence[PBLink], data: bytes | None) -> bytes:
    """Encode links + data without constructing a PBNode (hot path for the importer)."""
    out: list[bytes] = []
    prev: bytes | None = None
    for link in links:
        nb = name_bytes(link.name) if link.name is not None else b""
        if prev is not None and nb < prev:
            raise InvalidInput("links must be sorted by Name bytes")
        prev = nb
        body = _encode_link(link)
        out.append(_TAG_LINKS)
        out.append(varint.encode(len(body)))
        out.append(body)
    if data is not None:
        out.append(_TAG_DATA)
        out.append(varint.encode(len(data)))
        out.append(data)
    return b"".join(out)


def encoded_data_size(data_len: int) -> int:
    """Bytes the ``Data`` field adds to an encoded node (tag and length prefix included)."""
    return 1 + varint.size(data_len) + data_len


def encode(node: PBNode) -> bytes:
    return encode_links(node.links, node.data)


def encoded_link_size(cid_len: int, name_len: int | None, tsize: int | None) -> int:
    """Bytes one link adds to an encoded node (the ``0x12`` tag and length prefix included)."""
    body = 1 + varint.size(cid_len) + cid_len
    if name_len is not None:
        body += 1 + varint.size(name_len) + name_len
    if tsize is not None:
        body += 1 + varint.size(tsize)
    return 1 + varint.size(body) + body


RawLink = tuple[str, int, bytes, bytes]  # name, Tsize, Hash bytes, the link as encoded (tag included)


def split(block: bytes) -> tuple[list[RawLink], bytes]:
    """A dag-pb block's links and Data in one pass, without decoding CIDs: each link as (name,
    Tsize, Hash bytes, its encoded bytes), so an updater can copy unchanged links as they are.
    Every link must have a Hash and a Tsize (as UnixFS directories' do)."""
    try:
        return _split(block)
    except (IndexError, UnicodeDecodeError):
        raise DecodeError("malformed dag-pb block") from None


def _split(block: bytes) -> tuple[list[RawLink], bytes]:
    links: list[RawLink] = []
    data = b""
    pos, end = 0, len(block)
    while pos < end:
        tag = block[pos]
        n, body = varint.decode(block, pos + 1)
        stop = body + n
        if stop > end:
            raise DecodeError("truncated")
        if tag == 0x0A:  # the tags of _TAG_DATA, _TAG_LINKS; in a link _TAG_TSIZE, _TAG_HASH, _TAG_NAME
            data = block[body:stop]
        elif tag == 0x12:
            name, tsize, cid = "", -1, b""
            p = body
            while p < stop:
                field = block[p]
                if field == 0x18:
                    tsize, p = varint.decode(block, p + 1)
                    continue
                m, q = varint.decode(block, p + 1)
                if field == 0x0A:
                    cid = block[q:q + m]
                elif field == 0x12:
                    name = block[q:q + m].decode("utf-8", "surrogateescape")
                else:
                    raise DecodeError("unknown link field")
                p = q + m
            if tsize < 0 or not cid:
                raise DecodeError("link without Tsize or Hash")
            links.append((name, tsize, cid, block[pos:stop]))
        else:
            raise DecodeError("unknown field")
        pos = stop
    return links, data


def _read_field(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    key, pos = varint.decode(buf, pos)
    if pos > end:
        raise DecodeError("truncated field")
    return key >> 3, key & 7, pos


def _read_bytes(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    length, pos = varint.decode(buf, pos)
    if pos + length > end:
        raise DecodeError("truncated length-delimited field")
    return pos, pos + length


def _decode_link(buf: bytes, pos: int, end: int) -> PBLink:
    cid: CID | None = None
    name: str | None = None
    tsize: int | None = None
    last = 0
    while pos < end:
        field, wt, pos = _read_field(buf, pos, end)
        if field <= last:
            raise DecodeError("link fields out of order or repeated")
        last = field
        if field == 1:
            if wt != 2:
                raise DecodeError("wrong wire type for link Hash")
            s, pos = _read_bytes(buf, pos, end)
            try:
                cid = CID.from_bytes(buf[s:pos])
            except InvalidCID:
                raise DecodeError("Invalid Hash field found in link, expected CID") from None
        elif field == 2:
            if wt != 2:
                raise DecodeError("wrong wire type for link Name")
            s, pos = _read_bytes(buf, pos, end)
            name = buf[s:pos].decode("utf-8", "surrogateescape")
        elif field == 3:
            if wt != 0:
                raise DecodeError("wrong wire type for link Tsize")
            tsize, pos = varint.decode(buf, pos)
            if pos > end:
                raise DecodeError("truncated Tsize")
        else:
            raise DecodeError(f"unknown link field {field}")
    if cid is None:
        raise DecodeError("Invalid Hash field found in link, expected CID")
    return PBLink(cid, name, tsize)


def decode(block: bytes | memoryview) -> PBNode:
    buf = bytes(block)
    pos = 0
    end = len(buf)
    links: list[PBLink] = []
    data: bytes | None = None
    try:
        while pos < end:
            field, wt, pos = _read_field(buf, pos, end)
            if wt != 2:
                raise DecodeError(f"wrong wire type {wt} for PBNode field {field}")
            s, pos = _read_bytes(buf, pos, end)
            if field == 2:
                if data is not None:
                    raise DecodeError("duplicate Links section (Links after Data)")
                links.append(_decode_link(buf, s, pos))
            elif field == 1:
                if data is not None:
                    raise DecodeError("duplicate Data section")
                data = buf[s:pos]
            else:
                raise DecodeError(f"unknown PBNode field {field}")
    except DecodeError as e:
        raise DecodeError(f"invalid dag-pb block: {e}") from None
    return PBNode(data, tuple(links))


def from_form(form: object) -> PBNode:
    """Build a PBNode from an IPLD data-model form (dict with ``Data``/``Links``), strictly."""
    if not isinstance(form, dict):
        raise InvalidInput("Invalid DAG-PB form")
    extra = set(form) - {"Data", "Links"}
    if extra:
        raise InvalidInput("Invalid DAG-PB form (extraneous properties)")
    if "Links" not in form or not isinstance(form["Links"], list):
        raise InvalidInput("Invalid DAG-PB form (Links must be a list)")
    data = form.get("Data", b"")
    if "Data" in form and not isinstance(data, bytes):
        raise InvalidInput("Invalid DAG-PB form (Data must be bytes)")
    links: list[PBLink] = []
    for lk in form["Links"]:
        if not isinstance(lk, dict):
            raise InvalidInput("Invalid DAG-PB form (bad link)")
        if set(lk) - {"Hash", "Name", "Tsize"}:
            raise InvalidInput("Invalid DAG-PB form (extraneous properties on link)")
        if "Hash" not in lk:
            raise InvalidInput("Invalid DAG-PB form (link must have a Hash)")
        if not isinstance(lk["Hash"], CID):
            raise InvalidInput("Invalid DAG-PB form (link Hash must be a CID)")
        name = lk.get("Name")
        if "Name" in lk and not isinstance(name, str):
            raise InvalidInput("Invalid DAG-PB form (link Name must be a string)")
        tsize = lk.get("Tsize")
        if "Tsize" in lk and (not isinstance(tsize, int) or isinstance(tsize, bool)):
            raise InvalidInput("Invalid DAG-PB form (link Tsize must be an integer)")
        if tsize is not None and tsize < 0:
            raise InvalidInput("Invalid DAG-PB form (link Tsize cannot be negative)")
        if tsize is not None and tsize >= 1 << 64:
            raise InvalidInput("Invalid DAG-PB form (link Tsize must be a uint64)")
        links.append(PBLink(lk["Hash"], name, tsize))
    node = PBNode(data if "Data" in form else None, tuple(links))
    encode(node)  # checks the sort order
    return node

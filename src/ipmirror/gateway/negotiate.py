"""Content negotiation (pure: no I/O, no aiohttp): ``?format=`` and ``Accept`` -> the response
format (ipfs/specs path-gateway.md, trustless-gateway.md, IPIP-412, IPIP-523).

Usage::

    fmt = negotiate(request.query, request.headers.getall("Accept", []))   # or plain_accept(…)
    fmt.format                    # "" (the deserialized response) or a key of FORMATS
    fmt.content_location(raw_path, query)                                  # Content-Location

Rules kept here:

- ``?format=`` wins over ``Accept``; an unknown ``?format=`` value or a bad ``car-*`` parameter
  is ``InvalidInput`` (400). ``Accept`` is read by quality, our formats before generic types of
  equal quality; generic types (``text/html``, ``*/*``, ``application/json``…) mean the
  deserialized response. An ``Accept`` that names only IPFS/IPLD types or variants we cannot
  produce is :class:`Unacceptable` (406).
- ``application/json`` and ``application/cbor`` do not select a format through ``Accept``
  (package managers send them for plain files); only ``?format=json|cbor`` does.
- A CAR is always CARv1 in depth-first order (``order=unk`` is answered with ``dfs``);
  ``dups`` as asked, default ``n``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlencode

from ipmirror.codec.cid import CBOR, DAG_CBOR, DAG_JSON, JSON
from ipmirror.errors import InvalidInput

RAW_TYPE: Final = "application/vnd.ipld.raw"
CAR_TYPE: Final = "application/vnd.ipld.car"
TAR_TYPE: Final = "application/x-tar"
IPNS_RECORD_TYPE: Final = "application/vnd.ipfs.ipns-record"
FORMATS: Final = {"raw": RAW_TYPE, "car": CAR_TYPE, "tar": TAR_TYPE, "ipns-record": IPNS_RECORD_TYPE,
                  "dag-json": "application/vnd.ipld.dag-json", "dag-cbor": "application/vnd.ipld.dag-cbor",
                  "json": "application/json", "cbor": "application/cbor"}
# the formats that are a block's own codec (served as the block, never converted: IPIP-524)
CODEC_FORMATS: Final = {"dag-json": DAG_JSON, "dag-cbor": DAG_CBOR, "json": JSON, "cbor": CBOR}
# media types that select a format through Accept; application/json and application/cbor do not
_ACCEPTED: Final = {t: f for f, t in FORMATS.items() if f not in ("json", "cbor")}


class Unacceptable(InvalidInput):
    """Nothing the client accepts can be produced (the gateway's 406)."""


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

    def content_location(self, raw_path: str, query: Mapping[str, str]) -> dict[str, str]:
        """``Content-Location`` with ``?format=`` (and the CAR parameters Accept gave), so caches
        keep responses negotiated by Accept apart; ``raw_path`` is the request's path as sent."""
        if not self.from_accept:
            return {}
        q = dict(query)
        q["format"] = self.format
        if self.format == "car":
            for k, v in self.car.given.items():
                q.setdefault(f"car-{k}", v)
        return {"Content-Location": f"{raw_path}?{urlencode(q)}"}


@functools.lru_cache(maxsize=256)
def plain_accept(accept: tuple[str, ...]) -> Negotiated:
    """``negotiate`` for a URL without a query, memoized: clients send a handful of Accept values."""
    return negotiate({}, list(accept))


def negotiate(query: Mapping[str, str], accept: list[str]) -> Negotiated:
    """The response format for ``?format=`` and Accept (see the module rules). Raises
    InvalidInput (bad URL parameters) or Unacceptable (nothing in Accept we can make)."""
    ranges = parse_accept(accept)
    car_params({}, query)  # bad car-* URL parameters are 400 whatever the format
    fmt = query.get("format")
    if fmt:
        if fmt not in FORMATS:
            raise InvalidInput(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
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
        raise Unacceptable(f"cannot produce any of: {', '.join(skipped)}")
    return Negotiated("")

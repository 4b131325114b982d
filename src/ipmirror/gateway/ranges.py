"""HTTP Range requests (RFC 9110 §14, If-Range §13.1.5): one representation of a known size,
answered whole or in byte ranges. The one implementation the UnixFS file handler and the
raw-block handler share; :func:`parse_range` is pure.

Usage::

    spans = parse_range("bytes=0-99,-50", size)   # [(0, 100), (size-50, size)] as [start, end)
    return await send_ranged(request, headers, size, body=data)                   # in memory
    return await send_ranged(request, headers, size, read=lambda a, b: ex.read(get, cid, a, b - a))

Rules kept here:

- ``headers`` are the representation's, with its ``ETag`` and ``Content-Type``; a ``Range`` is
  honoured only when ``If-Range`` is absent or names that ETag (else the whole is sent).
- A malformed or non-``bytes`` Range is ignored (RFC 9110), and so is one of more than
  ``MAX_RANGES`` ranges; one no range of which can be satisfied is ``416`` with
  ``Content-Range: bytes */size``.
- One range is a ``206`` with ``Content-Range``; several are a ``206 multipart/byteranges``, each
  part with the representation's ``Content-Type`` and its ``Content-Range``. The exact
  ``Content-Length`` is always known up front.
- With ``body`` the answer is one ``Response``; otherwise it streams from ``read(start, end)``
  (blocking, pulled on the thread pool) and a ``HEAD`` gets the headers only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

from aiohttp import web

from ipmirror.gateway.streaming import aiter_blocking, start_stream

Reader = Callable[[int, int], Iterator[bytes]]  # bytes [start, end) of the representation
Part = tuple[bytes, int, int]  # a multipart head (or b"") and the span [start, end) after it


MAX_RANGES = 64


class Unsatisfiable(ValueError):
    pass


def parse_range(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """Spans ``[start, end)`` for a Range header, None to ignore it (absent or not bytes or
    malformed, which RFC 9110 says to ignore), or raise Unsatisfiable (416)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    spans: list[tuple[int, int]] = []
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) > MAX_RANGES:
        return None
    for part in parts:
        first, dash, last = part.partition("-")
        if not dash:
            return None
        first, last = first.strip(), last.strip()
        try:
            if first == "":
                if not last.isdigit():
                    return None
                n = int(last)
                if n == 0:
                    continue
                spans.append((max(0, size - n), size))
            else:
                if not first.isdigit() or (last and not last.isdigit()):
                    return None
                a = int(first)
                if a >= size:
                    continue  # not satisfiable; 416 if no other range is
                b = int(last) + 1 if last else size
                if b <= a:
                    return None
                spans.append((a, min(b, size)))
        except ValueError:
            return None
    if not spans:
        raise Unsatisfiable(f"bytes */{size}")
    return spans


async def send_ranged(request: web.Request, headers: dict[str, str], size: int, *, body: bytes | None = None,
                      read: Reader | None = None) -> web.StreamResponse:
    """The answer to a GET or HEAD (see the module rules); one of ``body`` and ``read`` is needed."""
    try:
        spans = parse_range(request.headers.get("Range"), size)
    except Unsatisfiable:
        headers["Content-Range"] = f"bytes */{size}"
        return web.Response(status=416, headers=headers)
    if spans is not None and request.headers.get("If-Range") not in (None, headers.get("ETag")):
        spans = None  # the client's copy is of another entity: send it whole
    if spans is None:
        if body is not None:
            return web.Response(body=body, headers=headers)
        return await _stream(request, web.StreamResponse(status=200, headers=headers), size,
                             [(b"", 0, size)], b"", read)
    if len(spans) == 1:
        a, b = spans[0]
        headers["Content-Range"] = f"bytes {a}-{b - 1}/{size}"
        if body is not None:
            return web.Response(status=206, body=body[a:b], headers=headers)
        return await _stream(request, web.StreamResponse(status=206, headers=headers), b - a,
                             [(b"", a, b)], b"", read)
    boundary = secrets.token_hex(12)
    ctype = headers["Content-Type"]
    parts = [((f"\r\n--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {a}-{b - 1}/{size}"
               "\r\n\r\n").encode(), a, b) for a, b in spans]
    tail = f"\r\n--{boundary}--\r\n".encode()
    headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
    if body is not None:
        joined = b"".join(head + body[a:b] for head, a, b in parts) + tail
        return web.Response(status=206, body=joined, headers=headers)
    length = sum(len(head) + b - a for head, a, b in parts) + len(tail)
    resp = web.StreamResponse(status=206, headers=headers)
    return await _stream(request, resp, length, parts, tail, read)


async def _stream(request: web.Request, resp: web.StreamResponse, length: int,
                  parts: list[Part], tail: bytes, read: Reader | None) -> web.StreamResponse:
    """Send ``resp`` with ``length`` bytes: each part's head and bytes ``[a, b)``, then ``tail``."""
    if read is None:
        raise ValueError("send_ranged needs body or read")
    resp.content_length = length
    await start_stream(request, resp)
    if request.method == "HEAD":
        return resp
    for head, a, b in parts:
        if head:
            await resp.write(head)
        async for chunk in aiter_blocking(read(a, b)):
            await resp.write(chunk)
    if tail:
        await resp.write(tail)
    await resp.write_eof()
    return resp

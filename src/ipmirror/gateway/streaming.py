"""Streaming plumbing for the handlers: blocking work on the thread pool, blocking generators as
async ones, and the point where a response's headers go out.

Usage::

    node = await run_blocking(lambda: resolver.stat(cid))
    await start_stream(request, resp)                  # from here on the status is committed
    async for chunk in aiter_blocking(batched(gen, 256 << 10)):
        await resp.write(chunk)

Rule: once ``start_stream`` has run (``request[STARTED]``), an error can only cut the body short;
the error middleware closes the connection instead of answering with a status (see app.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Final, TypeVar

from aiohttp import web

from ipmirror.gateway.headers import decorate

T = TypeVar("T")
STARTED: Final[web.RequestKey[bool]] = web.RequestKey("response-started", bool)  # its headers went out


async def start_stream(request: web.Request, resp: web.StreamResponse) -> None:
    """Send a streamed response's headers; from here on an error can only cut the body short."""
    decorate(request, resp)
    request[STARTED] = True
    await resp.prepare(request)


async def run_blocking(fn: Callable[[], T]) -> T:
    """``fn()`` on the default thread pool."""
    return await asyncio.get_running_loop().run_in_executor(None, fn)


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

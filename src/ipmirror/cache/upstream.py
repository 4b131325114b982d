"""Requests to a cache's upstream: one place that decides where credentials go, which redirects
are followed, how long to wait and how much to read.

Usage::

    up = Upstream(client, "http://user:pw@127.0.0.1:9000/simple/", Limits())   # client: a Client
    async with up.get(url, headers) as resp:      # aiohttp.ClientResponse, status checked by caller
        body = await up.read_capped(resp, limit)   # UpstreamError when longer than limit

Rules:

1. Credentials in the upstream URL (``user:password@``) are taken out of it, never logged (see
   :func:`redact`), and sent only to the upstream's own origin (scheme, host and port).
2. Redirects are followed by hand, at most 5, and only within the origin of the URL asked for;
   a redirect to another host is an :class:`~ipmirror.errors.UpstreamError` unless that host is
   in ``Limits.allow_hosts``.
3. Every request has a connect and a read (between bytes) timeout; a slow-loris upstream fails.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import aiohttp

from ipmirror.errors import UpstreamError

MAX_REDIRECTS = 5


class Client(Protocol):
    """The outgoing HTTP client (the runtime's one client, or ``app.Sessions``): ``get`` is
    aiohttp's ``ClientSession.get`` (an async context manager giving the response)."""

    def get(self, url: str, **kw: Any) -> Any: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Limits:
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_doc_bytes: int = 64 << 20  # a metadata document (index page) larger than this is refused
    max_artifact_bytes: int = 16 << 30
    allow_hosts: tuple[str, ...] = ()  # hosts redirects may go to besides the URL's own


def split_credentials(url: str) -> tuple[str, str | None]:
    """The URL without ``user:password@`` and the ``Authorization`` value it carried."""
    u = urlsplit(url)
    if u.username is None:
        return url, None
    host = u.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{u.port}" if u.port else host
    creds = f"{unquote(u.username)}:{unquote(u.password or '')}".encode()
    auth = "Basic " + base64.b64encode(creds).decode()
    return urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment)), auth


def origin(url: str) -> tuple[str, str, int | None]:
    u = urlsplit(url)
    return u.scheme, (u.hostname or "").lower(), u.port or (443 if u.scheme == "https" else 80)


class Upstream:
    def __init__(self, client: Client, base_url: str, limits: Limits) -> None:
        self._client = client
        self.base, self._auth = split_credentials(base_url)
        self._origin = origin(self.base)
        self.limits = limits

    def url(self, path: str) -> str:
        return urljoin(self.base if self.base.endswith("/") else self.base + "/", path)

    @contextlib.asynccontextmanager
    async def get(self, url: str, headers: dict[str, str] | None = None,
                  read_timeout: float | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        lim = self.limits
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=lim.connect_timeout,
                                        sock_read=read_timeout or lim.read_timeout)
        start = origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            hs = dict(headers or {})
            if self._auth is not None and origin(url) == self._origin:
                hs["Authorization"] = self._auth
            try:
                cm = self._client.get(url, headers=hs, allow_redirects=False, timeout=timeout)
                resp = await cm.__aenter__()
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                raise UpstreamError(f"upstream unreachable: {type(e).__name__}: {e}") from None
            try:
                if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                    nxt = urljoin(url, resp.headers["Location"])
                    o = origin(nxt)
                    if o != start and o[1] not in lim.allow_hosts:
                        raise UpstreamError(f"upstream redirected to another host ({o[1]}); not followed")
                    url = nxt
                    continue
                yield resp
                return
            finally:
                await cm.__aexit__(None, None, None)
        raise UpstreamError("upstream: too many redirects")

    async def read_capped(self, resp: aiohttp.ClientResponse, limit: int) -> bytes:
        """The whole body, or UpstreamError when it is longer than ``limit`` (stops reading there)."""
        if resp.content_length is not None and resp.content_length > limit:
            raise UpstreamError(f"upstream document too large ({resp.content_length} > {limit} bytes)")
        buf = bytearray()
        try:
            async for chunk in resp.content.iter_chunked(256 << 10):
                buf += chunk
                if len(buf) > limit:
                    raise UpstreamError(f"upstream document too large (more than {limit} bytes)")
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise UpstreamError(f"upstream failed mid-body: {type(e).__name__}: {e}") from None
        return bytes(buf)

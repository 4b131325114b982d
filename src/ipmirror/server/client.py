"""The one HTTP client for outgoing traffic (upstream registries, peers): aiohttp's, configured
once from ``config.http``.

Usage::

    async with HttpClient(cfg.http) as http:
        async with http.get(url) as resp:        # aiohttp.ClientResponse
            body = await resp.read()

    HttpClient(cfg.http, connector=TCPConnector(resolver=...))   # tests: a transport of their own

Rules: every request has the configured total and connect timeouts (a request may pass its own
``timeout``); connections are pooled with a total and a per-host limit; the proxy, if
configured, is used for every request; ``User-Agent`` names ipmirror. Tests point it at a local
server (a base URL on 127.0.0.1) or give it their own connector; nothing else in the code
makes HTTP requests.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import aiohttp

from ipmirror import __version__
from ipmirror.config import HttpConfig

USER_AGENT = f"ipmirror/{__version__}"


class HttpClient:
    def __init__(self, settings: HttpConfig, *, connector: aiohttp.BaseConnector | None = None,
                 base_url: str | None = None) -> None:
        self.settings = settings
        self._connector = connector
        self._base_url = base_url
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on first use, on the running loop
            s = self.settings
            connector = self._connector or aiohttp.TCPConnector(limit=s.limit,
                                                                limit_per_host=s.limit_per_host)
            self._session = aiohttp.ClientSession(
                base_url=self._base_url, connector=connector, headers={"User-Agent": USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=s.timeout, sock_connect=s.connect_timeout))
        return self._session

    def request(self, method: str, url: str, **kw: Any) -> Any:
        """``session.request`` (an async context manager giving the response)."""
        self.requests += 1
        if self.settings.proxy:
            kw.setdefault("proxy", self.settings.proxy)
        return self.session.request(method, url, **kw)

    def get(self, url: str, **kw: Any) -> Any:
        return self.request("GET", url, **kw)

    def status(self) -> dict[str, Any]:
        return {"requests": self.requests, "limit": self.settings.limit,
                "limit_per_host": self.settings.limit_per_host}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

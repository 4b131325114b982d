"""The gateway's settings, read once at the edge (``ipmirror serve``'s options) and passed in.

Usage::

    app = make_app(backend, GatewayConfig(public_url=args.public_url))
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GatewayConfig:
    public_url: str = ""  # how clients reach us (behind a reverse proxy), for routing answers
    token: str = ""  # required (Bearer) for endpoints that change state, except IPNS record PUT
    listing_chunk: int = 512  # directory listing rows per write

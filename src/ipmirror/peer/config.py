"""HostConfig: where the libp2p host listens and the limits it keeps (a frozen value, checked once).

Limits and why:
- ``max_peers`` (default 256): connected peers at once; a new connection past it is closed at
  once (outbound dials we asked for count too). Kubo's connection manager starts trimming at 96
  (low water) / 160 (high water) for a desktop node; a mirror serves more, but each peer costs
  a trio task tree and buffers in one Python process.
- ``max_streams_per_peer`` (default 256): streams open at once on one peer's connections; the
  stream past it gets the peer disconnected (a peer that floods streams is cut off, not just
  refused: it is misbehaving). Bitswap, identify and pubsub keep a handful open; go-libp2p's
  resource manager allows a peer 512 inbound streams by default, Helia far fewer.
- ``negotiate_timeout``: an inbound stream must name its protocol within this many seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from ipmirror.errors import InvalidInput

DEFAULT_LISTEN = "/ip4/127.0.0.1/tcp/4001"


@dataclass(frozen=True, slots=True)
class HostConfig:
    listen: tuple[str, ...] = (DEFAULT_LISTEN,)
    max_peers: int = 256
    max_streams_per_peer: int = 256
    dial_timeout: float = 10.0
    negotiate_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.listen:
            raise InvalidInput("the libp2p host needs at least one listen address")
        for addr in self.listen:
            parts = addr.split("/")
            if len(parts) != 5 or parts[0] or parts[1] not in ("ip4", "ip6") or parts[3] != "tcp" \
                    or not parts[4].isdigit() or int(parts[4]) > 65535:
                raise InvalidInput(f"listen address {addr!r} is not /ip4|ip6/ADDRESS/tcp/PORT")
        if self.max_peers < 1 or self.max_streams_per_peer < 1:
            raise InvalidInput("max_peers and max_streams_per_peer must be at least 1")
        if self.dial_timeout <= 0 or self.negotiate_timeout <= 0:
            raise InvalidInput("timeouts must be positive")

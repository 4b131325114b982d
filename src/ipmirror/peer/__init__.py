"""The libp2p host: ipmirror as a peer of Kubo and Helia nodes (issue #17).

Modules::

    identity.py   who we are: peer ID, public key, agent (Kubo's ``id`` fields); no libp2p import
    config.py     HostConfig: listen addresses and limits (a frozen value, validated once)
    host.py       PeerHost: the host's thread and its thread-safe API (start/stop, connect, peers, …)
    _node.py      the trio side: py-libp2p's host, our identify and ping, the guard; runs in that thread
    _guard.py     connection limits: peers, streams per peer; handler wrapping (a bad peer is cut off)
    control.py    the control-channel handlers (``swarm peers|connect|disconnect|addrs``, ``id``)

Rules:
- py-libp2p is trio; the rest of ipmirror is asyncio or plain threads. Everything trio stays in
  ``_node.py``/``_guard.py`` and runs in the one thread :class:`host.PeerHost` starts; other threads
  reach it only through ``PeerHost`` (``submit`` or the blocking methods), asyncio code through
  ``PeerHost.acall``. Nothing here imports asyncio's loop or the gateway.
- ``import libp2p`` is slow (~2.6 s cold), so only ``host.py`` imports ``_node.py``, and only when a
  host is started; ``identity.py`` and ``control.py`` never import libp2p.
- Security is Noise only and muxing Yamux only: py-libp2p would also offer plaintext, SECIO, TLS
  and mplex unless told otherwise.
- Depends on ``codec`` (keys, peer IDs) and ``errors`` only; the caller passes the private key in.
"""

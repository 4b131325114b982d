"""The HTTP gateway (``ipmirror serve``): path gateway, trustless gateway, IPNS records, delegated
routing. Handlers see only a :class:`~ipmirror.gateway.backend.Backend`, never the store.

Modules: ``app`` (routes, format dispatch, the one error-to-status mapping), one handler per
response format (``unixfs_handler``, ``trustless``, ``tar``, ``ipns_routes``,
``delegated_routing``), request plumbing (``target``, ``pathcache``, ``replay``, ``negotiate`` —
pure —, ``headers``, ``streaming``, ``ranges``, ``config``, ``accesslog``) and the
node adapter ``node_backend``. This package is an I/O shell: it may import aiohttp; the layers
below it may not (pyproject.toml). Paths are resolved by ``unixfs.resolve``.
"""

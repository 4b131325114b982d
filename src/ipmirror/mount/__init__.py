"""A read-only FUSE file system of the store: ``/ipfs/<cid>/…``, ``/ipns/<name>`` and
``/mirrors/<name>/<version>`` as plain directories and files (``ipmirror mount MOUNTPOINT``).

An I/O shell like ``gateway/``: it may import mirror/, naming/, unixfs/, store/ and codec/, and
nothing imports it but the CLI. Modules:

- ``source``  — what it reads from a repository (a narrow protocol and the repository adapter)
- ``tree``    — the namespace without FUSE: paths to entries, listings, symlink targets
- ``reader``  — per-open file state (decoded nodes, last leaves)
- ``control`` — mount points from the outside: stale mounts, unmount, read-ahead
- ``fs``      — the libfuse operations (needs the optional ``mfusepy``: ``pip install 'ipmirror[mount]'``)
"""

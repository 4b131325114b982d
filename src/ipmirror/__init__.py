"""ipmirror: an IPFS-native mirror and cache for package registries.

Layers. Imports only point down; import-linter checks the rules in pyproject.toml::

    cli/            thin: parse args, call the library, print, return an exit code
    serving.py      what `ipmirror serve` runs: the apps and services of the shells, composed
    node.py         composition root: opens the repository, picks the concrete store, hands out
                    narrow handles (the only module above store/ that may import a concrete store)
    server/ gateway/ cache/ follow/ peer/ mount/
                    I/O shells: the serve runtime (workers, services, control channel), the HTTP
                    gateway, and (as they land) the pull-through cache, the follower, the libp2p
                    peer and the FUSE mount. Only these import aiohttp (or trio, FUSE) directly.
    mirror/ naming/ mutable state: mirror versions of a directory tree; keys, IPNS records, DNSLink
    config.py       the typed repository configuration, read once at the edge
    dag/            DAGs over a store: link walking, CAR export/import and block selection, GC, verify
    unixfs/         UnixFS importer, balanced and trickle layouts, directories and HAMT, exporter,
                    the one path resolver (unixfs/resolve.py)
    store/          Blockstore contract, pins and declared capabilities; LMDB and memory backends
    codec/          pure formats: multiformats, CID, DAG-PB, UnixFS protobuf, DAG-CBOR, CAR, IPNS
    errors.py       the one exception tree

A layer may import any layer below it, never one above; packages on one line do not import each
other unless the contract says so.
"""

import logging

__version__ = "0.1.0"

# a library's loggers print nothing unless the application configures logging (``serve`` does);
# without this, Python's last-resort handler would add a line to the CLI's one-line errors
logging.getLogger("ipmirror").addHandler(logging.NullHandler())

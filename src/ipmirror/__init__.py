"""ipmirror: an IPFS-native mirror and cache for package registries.

Layers (imports only point down; checked by import-linter, see pyproject.toml)::

    cli/        thin: parse args, call the library, print, return an exit code
    node.py     composition: opens the repository, picks concrete backends
    cache/      pull-through caches of package registries (an I/O shell: aiohttp allowed)
    dag/        DAGs over a store: link walking, CAR export/import and block selection, GC, verify
    unixfs/     UnixFS importer, layouts, HAMT, exporter
    store/      Blockstore contract and capabilities; LMDB and memory backends; pins (only node.py
                picks a backend)
    codec/      pure formats: multiformats, CID, DAG-PB, UnixFS protobuf, DAG-CBOR, CAR
    errors.py   the one exception tree
"""

__version__ = "0.1.0"

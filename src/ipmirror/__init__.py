"""ipmirror: an IPFS-native mirror and cache for package registries.

Layers (imports only point down; checked by import-linter, see pyproject.toml)::

    cli/        thin: parse args, call the library, print, return an exit code
    node.py     composition: opens the repository, picks concrete backends
    car.py, unixfs/   CAR import/export over a store; UnixFS importer, layouts, HAMT, exporter
    store/      Blockstore contract; LMDB and memory backends; pins, GC, verify
    codec/      pure formats: multiformats, CID, DAG-PB, UnixFS protobuf, DAG-CBOR, CAR
    errors.py   the one exception tree
"""

__version__ = "0.1.0"

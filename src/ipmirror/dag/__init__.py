"""DAGs over the block store: link walking, CAR export/import and block selection, GC.

Knows links (dag-pb, dag-cbor, raw) and, for the trustless gateway's ``dag-scope=entity``, UnixFS
files and HAMT directories; stores nothing itself. Layer: above ``store/`` and ``unixfs/``, below
``mirror/`` and ``gateway/`` (import-linter's layers contract).

- ``walk``    links of a block by codec; depth-first walk of a DAG (each block once)
- ``select``  which blocks a CAR answer holds, in order (dag-scope, entity-bytes, dups)
- ``car_io``  CAR export and import over a block store (``ipmirror dag export/import``)
- ``gc``      mark-and-sweep garbage collection and verification of a block store
"""

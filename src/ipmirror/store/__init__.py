"""Block stores keyed by multihash: the contract and its capabilities (``base.py``), the LMDB and
memory backends, no-copy references (``filestore.py``). Knows no links (``dag/``) and no UnixFS;
only ``node.py`` picks a backend."""

"""Block stores keyed by multihash (LMDB, memory), pins, GC and verification. Knows no UnixFS."""

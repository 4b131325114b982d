"""Pure formats: bytes in, values out, no I/O (multiformats, CID, DAG-PB, UnixFS, DAG-CBOR, CAR)."""

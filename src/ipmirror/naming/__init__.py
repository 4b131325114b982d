"""Naming: keys on disk, local IPNS records and names, DNSLink values (record format: codec/ipns.py)."""

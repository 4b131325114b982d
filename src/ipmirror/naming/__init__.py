"""Naming: keys, IPNS records (format in naming.record, pure), local name state, DNSLink."""

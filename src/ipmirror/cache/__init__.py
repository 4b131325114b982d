"""Pull-through caches of package registries (an I/O shell, like gateway/): clients' requests go
to the cache, which answers from the block store or fetches from the upstream, verifies, stores and
streams at once.

    pypi_index.py  pure: PEP 503 HTML / PEP 691 JSON parsing, negotiation and rendering
    pipconf.py     pure: pip's configured index URL (the default upstream)
    db.py          the metadata database (SQLite in the repository): definitions, documents,
                   published files, artifacts, counters
    upstream.py    requests to an upstream: credentials, redirects, timeouts, size caps
    fill.py        coalesced downloads across processes (lock file + partial file + verdict)
    cas.py         artifacts as UnixFS files in the store; raw-leaf CID from a sha256
    core.py        the ecosystem-neutral machinery: settings, freshness, lookup, storing, eviction
    respond.py     HTTP answers every type shares: artifacts, documents, /by-hash/
    pypi.py        the PyPI routes
    app.py         the aiohttp app: /cache/<name>/… by type, /by-hash/…; errors; hostile paths
    export.py      a cache's content as a mirror version
"""

"""Operating a server: the status page, its JSON, health checks and Prometheus metrics.

Modules: ``collect.py`` gathers the facts (mirrors, store, server, plug-in sections) into one
JSON-able dict; ``sections.py`` is the registry of optional sections (caches, follows, peers);
``page.py`` renders the facts as HTML with inline SVG plots; ``meter.py`` counts requests per
worker and hands them to ``prometheus_client`` in batches; ``app.py`` is the aiohttp app serving
``/``, ``/-/status``, ``/-/status.json``, ``/-/healthy``, ``/-/ready``, ``/-/metrics`` and
``/-/mirrors/<name>/diff/<v1>..<v2>``.

Rules: read only (no route writes anything), and discreet: no tokens, credentials or local paths
(mirror source directories only with ``status.show_paths``).
"""

"""The server runtime: what ``ipmirror serve`` runs, and how commands reach it.

Layer rule: ``server/`` sits below the composition (``node.py``, ``serving.py``) and above the
apps and state it runs (``gateway/``, ``mirror/``, ``naming/``); it imports aiohttp directly (an
I/O shell). It never opens a repository itself: a :class:`plan.Plan` hands it a factory.

Modules: ``plan`` (the registration API: apps, services, commands, status providers),
``runtime`` (entry point), ``supervisor`` and ``procs`` (the process model), ``worker`` (an
HTTP worker), ``host`` (the service process), ``channel`` and ``control`` (the control channel),
``urlmap`` (the URL map), ``client`` (the outgoing HTTP client), ``republish`` and ``watch``
(the services of today).
"""

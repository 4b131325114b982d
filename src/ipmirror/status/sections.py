"""Optional sections of the status page: a subsystem that exists shows its section.

Usage::

    sections = default_sections()    # caches, follows, peers (services cache:…, follow:…, swarm)
    sections.append(Section("widgets", "Widgets", collect=lambda facts: ...))
    data = section.collect(facts)                  # None: the section is left out

A section collects JSON-able data from the facts gathered so far (``facts["services"]``: each
running service's own ``status()``, the runtime's provider hook), and optionally renders it; by
default ``page.py`` renders it as tables. ``metrics`` names numeric fields exported as gauges
(``ipmirror_<section>_<field>{name=…}``) for each row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Facts = dict[str, Any]


@dataclass(frozen=True)
class Section:
    key: str  # the JSON key and the HTML id
    title: str
    collect: Callable[[Facts], Any]  # None or an empty list: not shown
    render: Callable[[Any], str] | None = None  # HTML; None: generic tables
    metrics: Sequence[str] = ()  # numeric fields of each row exported as gauges


_HIDDEN = ("since", "writes")


def from_services(*prefixes: str) -> Callable[[Facts], Any]:
    """The status rows of the services named ``<prefix>:…`` (or ``prefix`` itself)."""
    def ours(name: str) -> bool:
        return any(name == p or name.startswith(p + ":") for p in prefixes)

    def collect(facts: Facts) -> list[dict[str, Any]] | None:
        rows = [{k: v for k, v in s.items() if k not in _HIDDEN} for s in facts.get("services", [])
                if ours(str(s.get("name", "")))]
        return rows or None
    return collect


def default_sections() -> list[Section]:
    """The sections of subsystems that come as services: shown once such a service runs."""
    return [
        Section("caches", "Caches", from_services("cache"),
                metrics=("hits", "misses", "stale", "upstream_errors", "bytes_served", "bytes_fetched")),
        Section("follows", "Follows", from_services("follow"), metrics=("lag_seconds", "lag_sequence")),
        Section("peers", "Peers", from_services("swarm", "peer"), metrics=("peers",)),  # the libp2p host
    ]

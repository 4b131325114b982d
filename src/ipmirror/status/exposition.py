"""``/-/metrics``: the Prometheus text of every worker's request counters (multiprocess mode)
plus gauges computed at the scrape from the status facts (mirrors, store, server, sections).

Usage::

    text, content_type = scrape(facts, sections)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from ipmirror.status.sections import Section


class _Facts:
    def __init__(self, facts: dict[str, Any], sections: Sequence[Section]) -> None:
        self.facts, self.sections = facts, sections

    def collect(self) -> Iterator[Metric]:
        f = self.facts

        def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"ipmirror_{name}", doc, labels=list(labels))

        last = gauge("mirror_last_version_timestamp_seconds", "When the latest version was made", ["mirror"])
        check = gauge("mirror_last_check_timestamp_seconds", "When the source was last checked", ["mirror"])
        dur = gauge("mirror_last_sync_duration_seconds", "How long the last sync took", ["mirror"])
        read = gauge("mirror_last_sync_read_bytes", "Bytes the last sync read", ["mirror"])
        files = gauge("mirror_files", "Files in the latest version", ["mirror"])
        size = gauge("mirror_bytes", "Bytes of file content in the latest version", ["mirror"])
        versions = gauge("mirror_versions", "Versions recorded", ["mirror"])
        stale = gauge("mirror_stale", "1 when the source changed since the last sync", ["mirror"])
        for m in f.get("mirrors", []):
            name = [m["name"]]
            versions.add_metric(name, m["versions"])
            if m.get("checked"):
                check.add_metric(name, m["checked"])
            if m.get("stale") is not None:
                stale.add_metric(name, 1 if m["stale"] else 0)
            v = m.get("latest")
            if v:
                last.add_metric(name, v["time"])
                dur.add_metric(name, v["duration"])
                read.add_metric(name, v["read_bytes"])
                files.add_metric(name, v["files"])
                size.add_metric(name, v["size"])
        yield from (last, check, dur, read, files, size, versions, stale)
        s = f.get("store", {})
        for key, doc in (("logical_bytes", "Bytes of the blocks held (logical size)"),
                         ("disk_bytes", "Bytes the block store takes on disk"),
                         ("blocks", "Blocks held"), ("disk_free_bytes", "Free space of the file system")):
            if key in s:
                g = gauge(f"store_{key}", doc)
                g.add_metric([], s[key])
                yield g
        srv = f.get("server", {})
        if srv.get("running"):
            g = gauge("server_start_time_seconds", "When the server started")
            g.add_metric([], srv["started"])
            yield g
            g = gauge("server_workers", "HTTP worker processes running")
            g.add_metric([], sum(1 for w in f.get("workers", []) if w.get("state") == "running"))
            yield g
        up = gauge("service_up", "1 when a background service is running", ["service"])
        for svc in f.get("services", []):
            up.add_metric([svc["name"]], 1 if svc.get("state") == "running" else 0)
        yield up
        for sec in self.sections:
            rows = f.get("sections", {}).get(sec.key)
            if not isinstance(rows, list):
                continue
            for field in sec.metrics:
                g = gauge(f"{sec.key}_{field}", f"{field} of each of {sec.title.lower()}", ["name"])
                for r in rows:
                    if isinstance(r.get(field), int | float):
                        g.add_metric([str(r.get("name", ""))], float(r[field]))
                yield g


def scrape(facts: dict[str, Any], sections: Sequence[Section] = ()) -> tuple[bytes, str]:
    registry = CollectorRegistry()
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and os.path.isdir(path):
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    registry.register(_Facts(facts, sections))
    return generate_latest(registry), CONTENT_TYPE_LATEST

"""The status page as HTML: server-rendered, no JavaScript, inline CSS and SVG, readable on a
phone (one column, tables that scroll sideways).

Usage::

    html = render(facts, sections)        # facts: collect.collect(); sections: their renderers
    svg = plot(values, "bytes", human)    # one line plot, a <circle class="pt"> per value
"""

from __future__ import annotations

import datetime
import html
import time
from collections.abc import Callable, Sequence
from typing import Any

from ipmirror.status.sections import Section

CSS = """
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:60em;padding:.5em 1em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:1.5em}
h3{font-size:1em;margin:1em 0 .3em}.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.3em 0}td,th{padding:.15em .6em;text-align:left;vertical-align:top}
th{font-weight:600;color:#555}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17692d}.warn{color:#a33;font-weight:600}.muted{color:#777}
.plots{display:flex;flex-wrap:wrap;gap:.8em}.plot{flex:1 1 15em;max-width:22em}
svg{width:100%;height:auto;background:#fafafa;border:1px solid #ddd}
svg .ln{fill:none;stroke:#2a6ebb;stroke-width:1.5}svg .pt{fill:#2a6ebb}svg text{font-size:10px;fill:#555}
code{font-size:.9em;word-break:break-all}
"""


def e(x: object) -> str:
    return html.escape(str(x), quote=True)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # not reached


def when(t: float | None) -> str:
    if not t:
        return "never"
    stamp = datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{stamp} ({ago(time.time() - t)} ago)"


def ago(s: float) -> str:
    s = max(0.0, s)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"


def plot(values: Sequence[float], title: str, fmt: Callable[[float], str], w: int = 300, h: int = 100) -> str:
    """A line plot with one marker per value (oldest left), its last value and range in text."""
    pad_l, pad_r, pad_t, pad_b = 4, 4, 14, 4
    n = len(values)
    lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
    span = (hi - lo) or 1.0
    xs = [pad_l + (w - pad_l - pad_r) * (i / (n - 1) if n > 1 else 0.5) for i in range(n)]
    ys = [h - pad_b - (h - pad_t - pad_b) * ((v - lo) / span) for v in values]
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    marks = "".join(f'<circle class="pt" cx="{x:.1f}" cy="{y:.1f}" r="2.2"><title>{e(fmt(v))}</title>'
                    "</circle>" for x, y, v in zip(xs, ys, values, strict=True))
    label = f"{title}: last {fmt(values[-1])}, {fmt(lo)}–{fmt(hi)}" if values else f"{title}: no data"
    return (f'<div class="plot"><svg viewBox="0 0 {w} {h}" role="img" aria-label="{e(label)}" '
            f'data-points="{n}" data-title="{e(title)}"><text x="4" y="10">{e(label)}</text>'
            f'<polyline class="ln" points="{pts}"/>{marks}</svg></div>')


def table(rows: Sequence[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


_TIMES = ("time", "since", "started", "checked", "last_check", "last_sync")


def cell(key: str, v: Any) -> str:
    """One value: times (by their key) as dates, numbers grouped, the rest as text."""
    if isinstance(v, bool) or v is None:
        return {True: "yes", False: "no", None: "–"}[v]
    if isinstance(v, int | float) and (key in _TIMES or key.endswith("_at")) and v > 1e9:
        return e(when(float(v)))
    if isinstance(v, int):
        return f"{v:,}"
    return generic(v)


def generic(data: Any) -> str:
    """Any JSON data as tables (sections without a renderer of their own)."""
    if isinstance(data, list):
        if data and all(isinstance(r, dict) for r in data):
            keys = list(dict.fromkeys(k for r in data for k in r))
            head = "".join(f"<th>{e(k)}</th>" for k in keys)
            body = "".join("<tr>" + "".join(f"<td>{cell(k, r.get(k))}</td>" for k in keys) + "</tr>"
                           for r in data)
            return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'
        return "<ul>" + "".join(f"<li>{generic(x)}</li>" for x in data) + "</ul>"
    if isinstance(data, dict):
        return table([(e(k), cell(k, v)) for k, v in data.items()])
    return e(data)


def mirror(m: dict[str, Any]) -> str:
    name = e(m["name"])
    v = m.get("latest")
    links = m.get("links", {})
    parts = [f'<section class="mirror" id="mirror-{name}"><h3>{name}</h3>']
    if m.get("stale"):
        why = e(m.get("stale_reason") or "source changed")
        fresh = f'<span class="warn">stale: {why} since the last sync</span>'
    elif m.get("stale") is None:
        fresh = f'<span class="muted">{e(m.get("stale_reason") or "unknown")}</span>'
    else:
        fresh = '<span class="ok">up to date</span>'
    checked = when(m.get("checked")) + ("" if m.get("checked_recorded") else
                                        ' <span class="muted">(time of the latest version)</span>')
    rows = [("state", fresh), ("source last checked", checked)]
    if m.get("refused"):
        rows.append(("last sync refused", f'<span class="warn">{e(m["refused"])}</span>'))
    if v:
        rows += [
            ("latest version", f'{v["number"]} of {m["versions"]}, made {when(v["time"])}'),
            ("content", f'{v["files"]:,} files, {human(v["size"])}'),
            ("last sync", f'{seconds(v["duration"])}; read {v["read_files"]:,} files '
                          f'({human(v["read_bytes"])}), {v["added"]:,} added, {v["changed"]:,} changed, '
                          f'{v["removed"]:,} removed'),
            ("root", f'<code>{e(v["root"])}</code>'),
        ]
    if "dir" in m:
        rows.append(("source", f'<code>{e(m["dir"])}</code>'))
    link_html = [f'<a href="{e(links["tree"])}">tree</a>'] if "tree" in links and v else []
    if "diff" in links:
        link_html.append(f'<a href="{e(links["diff"])}">last sync\'s changes</a>')
    if link_html:
        rows.append(("links", " · ".join(link_html)))
    parts.append(table(rows))
    hist = m.get("history", [])
    if hist:
        parts.append(f'<div class="plots" data-versions="{len(hist)}">'
                     + plot([float(h["size"]) for h in hist], "bytes", human)
                     + plot([float(h["changed"]) for h in hist], "files changed", lambda x: f"{x:,.0f}")
                     + plot([float(h["duration"]) for h in hist], "sync time", seconds) + "</div>")
    parts.append("</section>")
    return "".join(parts)


def store(s: dict[str, Any]) -> str:
    rows = [("blocks", f'{s["blocks"]:,} ({s.get("pins", 0):,} pins)'),
            ("logical size", human(s["logical_bytes"])), ("size on disk", human(s["disk_bytes"]))]
    if "disk_free_bytes" in s:
        free = f'{human(s["disk_free_bytes"])} of {human(s["disk_total_bytes"])}'
        if s.get("low_space"):
            free = f'<span class="warn">low disk space: {free} free</span>'
        rows.append(("free disk space", free))
    return table(rows)


def server(f: dict[str, Any]) -> str:
    srv = f["server"]
    if not srv.get("running"):
        return "<p>No server is running.</p>"
    rows = [("uptime", ago(srv["uptime"])),
            ("requests", f'{srv["requests"]:,} ({srv["rate"]:.1f}/s, last minute)'),
            ("workers", ", ".join(f'{w["index"]}: {e(w["state"])} ({w["requests"]:,} requests, '
                                  f'{w["restarts"]} restarts)' for w in f["workers"])),
            ("listeners", ", ".join(f'{e(lst["address"])} ({e(", ".join(lst["apps"]))})'
                                    for lst in srv["listeners"]))]
    if srv.get("read_only"):
        rows.append(("mode", "read-only"))
    out = table(rows)
    if f["services"]:
        out += "<h3>Services</h3>" + generic([{k: v for k, v in s.items() if k != "since"}
                                             for s in f["services"]])
    return out


def render(f: dict[str, Any], sections: Sequence[Section] = ()) -> str:
    body = [f"<h1>ipmirror status</h1><p class=\"muted\">as of {e(when(f['time']))}</p>"]
    mirrors = f.get("mirrors", [])
    body.append('<h2 id="mirrors">Mirrors</h2>')
    body.append("".join(mirror(m) for m in mirrors) if mirrors else "<p>No mirrors.</p>")
    by_key = {s.key: s for s in sections}
    for key, data in f.get("sections", {}).items():
        s = by_key.get(key)
        title = s.title if s else key
        body.append(f'<h2 id="{e(key)}">{e(title)}</h2>')
        body.append(s.render(data) if s is not None and s.render is not None else generic(data))
    body.append('<h2 id="store">Store</h2>' + store(f["store"]))
    body.append('<h2 id="server">Server</h2>' + server(f))
    body.append('<p class="muted"><a href="/-/status.json">JSON</a> · <a href="/-/metrics">metrics</a> · '
                '<a href="/-/healthy">healthy</a> · <a href="/-/ready">ready</a></p>')
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            "<link rel=\"icon\" href=\"data:,\"><title>ipmirror status</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")


def diff_page(name: str, v1: int, v2: int, changes: Sequence[tuple[str, str]], more: bool) -> str:
    kinds = {"A": "added", "D": "deleted", "M": "modified"}
    rows = "".join(f"<tr><td>{kinds.get(k, k)}</td><td><code>{e(p)}</code></td></tr>" for k, p in changes)
    note = "<p class=\"muted\">(only the first changes are listed)</p>" if more else ""
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<link rel=\"icon\" href=\"data:,\"><title>{e(name)}: {v1}..{v2}</title>"
            f"<style>{CSS}</style></head>"
            f"<body><h1>{e(name)}: changes from version {v1} to {v2}</h1><p>{len(changes):,} changes. "
            f"<a href=\"/#mirror-{e(name)}\">status</a></p>{note}<div class=\"scroll\"><table>{rows}"
            "</table></div></body></html>")

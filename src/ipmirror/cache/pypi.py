"""The PyPI side of the cache: ``/cache/<name>/simple/…`` (PEP 503 HTML / PEP 691 JSON) and
``/cache/<name>/files/<project>/<filename>`` (artifacts and their PEP 658 ``.metadata``).

Usage::

    return await handle(request, core, cs, rest)    # rest: the path after /cache/<name>/

Rules:

- ``simple/<project>/`` is fetched from ``<upstream>/<project>/`` (JSON preferred), parsed and
  stored in the cache's own form (pypi_index.py), and rendered in the format the client's
  ``Accept`` asks for (``Vary: Accept``; 406 when it accepts neither). A name that is not
  normalized is redirected to its normalized form.
- File URLs point to ``../../files/<project>/<filename>`` (relative: right behind any proxy or
  public URL); the published hashes stay in the page, so clients check them too.
- When the page is served without the upstream's word (offline, or stale because the upstream
  failed) only files the cache holds are listed, and core metadata is advertised only where it is
  held; otherwise metadata is advertised as the upstream published it (fetched on demand).
- A process keeps the last ``RENDERED_MAX`` parsed documents and rendered pages, keyed by the
  document's fetch time, so a cache hit does not parse and render again.
"""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import quote

from aiohttp import web

from ipmirror.cache import pypi_index as ix
from ipmirror.cache.core import CacheCore, DocResult
from ipmirror.cache.db import CacheSettings
from ipmirror.cache.respond import Want, doc_response, serve_artifact
from ipmirror.errors import InvalidInput, NotFound

K = TypeVar("K")
V = TypeVar("V")
RENDERED_MAX = 256  # projects' parsed documents and rendered pages kept per process
_PARSED: dict[tuple[str, str, float], ix.Project] = {}
_RENDERED: dict[tuple[str, str, str, float], bytes] = {}


def _root_convert(body: bytes, ctype: str, url: str) -> bytes:
    return "\n".join(ix.parse_root(body, ctype)).encode()


async def handle(request: web.Request, core: CacheCore, cs: CacheSettings, rest: str) -> web.StreamResponse:
    parts = rest.split("/")
    if parts[0] == "simple":
        if len(parts) == 2 and parts[1] == "":
            return await _root(request, core, cs)
        if len(parts) == 3 and parts[2] == "":
            return await _project_page(request, core, cs, parts[1])
        if len(parts) == 2:
            raise web.HTTPMovedPermanently(f"{parts[1]}/")
    if parts[0] == "files" and len(parts) == 3:
        return await _file(request, core, cs, parts[1], parts[2])
    raise NotFound(f"no such path in a PyPI cache: {rest[:200]}")


async def _root(request: web.Request, core: CacheCore, cs: CacheSettings) -> web.StreamResponse:
    fmt = ix.negotiate(request.headers.get("Accept"))
    doc = await core.get_doc(cs, "simple/", core.upstream(cs).url(""), ix.UPSTREAM_ACCEPT, _root_convert)
    names = [n for n in doc.body.decode().split("\n") if n]
    return doc_response(doc, ix.render_root(names, fmt), ix.content_type(fmt))


async def project_doc(core: CacheCore, cs: CacheSettings, project: str) -> tuple[DocResult, ix.Project]:
    def convert(body: bytes, ctype: str, url: str) -> bytes:
        p = ix.parse_project(body, ctype, url)
        p = ix.Project(project, p.files, p.versions)
        core.db.put_files(cs.name, project, ((f.filename, f.url, f.sha256, f.size,
                                              (f.metadata_sha256 or "") if f.core_metadata else None)
                                             for f in p.files))
        return ix.dump(p)

    doc = await core.get_doc(cs, f"simple/{project}", core.upstream(cs).url(f"{project}/"),
                             ix.UPSTREAM_ACCEPT, convert)
    key = (cs.name, project, doc.fetched_at)
    p = _PARSED.get(key)
    return doc, p if p is not None else _remember(_PARSED, key, ix.load(doc.body))


def _held(core: CacheCore, f: ix.IndexFile) -> bool:
    if f.sha256 is not None:
        return core.db.artifact(f.sha256) is not None
    return core.db.unverified(f.url) is not None


def _meta_held(core: CacheCore, f: ix.IndexFile) -> bool:
    h = f.metadata_sha256
    if h is not None:
        return core.db.artifact(h) is not None
    return core.db.unverified(f.url + ".metadata") is not None


async def _project_page(request: web.Request, core: CacheCore, cs: CacheSettings,
                        name: str) -> web.StreamResponse:
    if not ix.safe_name(name):
        raise InvalidInput(f"not a valid project name: {name[:100]!r}")
    project = ix.normalize(name)
    if project != name:
        raise web.HTTPMovedPermanently(f"../{project}/")
    fmt = ix.negotiate(request.headers.get("Accept"))
    doc, p = await project_doc(core, cs, project)
    key = (cs.name, project, fmt, doc.fetched_at)
    if not doc.stale and key in _RENDERED:
        return doc_response(doc, _RENDERED[key], ix.content_type(fmt))
    if doc.stale:  # list what can be served without the upstream
        p = ix.Project(p.name, tuple(f for f in p.files if _held(core, f)), p.versions)

        def metadata(f: ix.IndexFile) -> bool:
            return _meta_held(core, f)
    else:
        def metadata(f: ix.IndexFile) -> bool:
            return True

    def url_for(f: ix.IndexFile) -> str:
        return f"../../files/{project}/{quote(f.filename)}"

    render = ix.render_json if fmt == "json" else ix.render_html
    body = render(p, url_for, metadata)
    if not doc.stale:
        _remember(_RENDERED, key, body)
    return doc_response(doc, body, ix.content_type(fmt))


def _remember(cache: dict[K, V], key: K, value: V) -> V:
    if len(cache) >= RENDERED_MAX:
        cache.pop(next(iter(cache)))  # the oldest entry: a small FIFO is enough here
    cache[key] = value
    return value


async def _file(request: web.Request, core: CacheCore, cs: CacheSettings, project: str,
                filename: str) -> web.StreamResponse:
    if not ix.safe_name(project) or not ix.safe_filename(filename):
        raise InvalidInput(f"not a valid file name: {filename[:100]!r}")
    project = ix.normalize(project)
    meta = filename.endswith(".metadata")
    base = filename[: -len(".metadata")] if meta else filename
    row = core.db.file(cs.name, project, base)
    if row is None and not core.is_offline(cs):
        await project_doc(core, cs, project)  # a lockfile's URL before any index page was seen
        row = core.db.file(cs.name, project, base)
    if row is None and core.is_offline(cs):
        raise NotFound(f"{filename} is not in the cache (offline mode)")
    if row is None:
        raise NotFound(f"{filename} is not published for {project} (as far as the cache knows)")
    if meta:
        if row.meta_sha256 is None:
            raise NotFound(f"no core metadata is published for {base}")
        want = Want(row.url + ".metadata", row.meta_sha256 or None, None, filename, "text/plain")
    else:
        want = Want(row.url, row.sha256, row.size, filename)
    return await serve_artifact(request, core, cs, want)

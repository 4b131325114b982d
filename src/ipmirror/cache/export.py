"""``cache export``: what a cache holds, laid out as a static index in a directory that a mirror
syncs into a version (publishable under IPNS, servable and followable like any mirror).

Usage::

    n = materialize(db, store, "pypi", repo / "caches" / "export" / "pypi")   # files written
    # then the caller registers (once) and syncs the mirror ``cache-pypi`` of that directory

Layout (PyPI): ``simple/index.html``, ``simple/<project>/index.html`` listing only the files the
cache holds (hashes, requires-python, yanked and core metadata kept as published; metadata
advertised only where held) and ``files/<project>/<filename>`` (and ``.metadata``). The pages are
regenerated on every export; the directory is rebuilt from the store, so it holds nothing else.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import quote

from ipmirror.cache import cas
from ipmirror.cache import pypi_index as ix
from ipmirror.cache.db import CacheDB
from ipmirror.codec.cid import CID
from ipmirror.errors import InvalidInput
from ipmirror.store.base import Store


def _write(store: Store, cid: str, path: Path) -> None:
    c = CID.parse(cid)
    with open(path, "wb") as f:
        for chunk in cas.read(store, c, 0, cas.size_of(store, c)):
            f.write(chunk)


def materialize(db: CacheDB, store: Store, name: str, out: Path) -> int:
    """Rebuild ``out`` from the cache; how many artifacts it holds."""
    cs = db.cache(name)
    if cs is None:
        raise InvalidInput(f"no cache named {name!r}")
    if cs.type != "pypi":
        raise InvalidInput(f"export of {cs.type} caches is not implemented")
    tmp = out.with_name(out.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "simple").mkdir(parents=True)
    projects, count = [], 0
    for key in db.doc_keys(name, "simple/"):
        project = key[len("simple/"):]
        doc = db.doc(name, key)
        if not project or doc is None or not ix.safe_name(project):
            continue
        p = ix.load(doc.body)
        held, metas = [], set()
        for f in p.files:
            art = db.artifact(f.sha256) if f.sha256 else None
            if art is None and f.sha256 is None:
                h = db.unverified(f.url)
                art = db.artifact(h) if h else None
            if art is None:
                continue
            d = tmp / "files" / project
            d.mkdir(parents=True, exist_ok=True)
            _write(store, art.cid, d / f.filename)
            held.append(f)
            count += 1
            m = db.artifact(f.metadata_sha256) if f.metadata_sha256 else None
            if m is not None:
                _write(store, m.cid, d / (f.filename + ".metadata"))
                metas.add(f.filename)
        if not held:
            continue
        page = ix.render_html(ix.Project(project, tuple(held), p.versions),
                              lambda f, pr=project: f"../../files/{pr}/{quote(f.filename)}",  # type: ignore[misc]
                              lambda f, ms=metas: f.filename in ms)  # type: ignore[misc]
        (tmp / "simple" / project).mkdir()
        (tmp / "simple" / project / "index.html").write_bytes(page)
        projects.append(project)
    (tmp / "simple" / "index.html").write_bytes(ix.render_root(projects, "html"))
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, out)
    return count

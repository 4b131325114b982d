"""PyPI simple index pages, pure (sans-IO): PEP 503 HTML and PEP 691 JSON in, one model, either
format out with file URLs rewritten to go through the cache.

Usage::

    project = parse_project(body, content_type, page_url)   # -> Project (absolute upstream URLs)
    text = render_json(project, lambda f: f"../../files/{project.name}/{quote(f.filename)}",
                       metadata=lambda f: True)
    kind = negotiate(request_accept_header)                  # "json" | "html"; Unacceptable (406)

Rules:

1. What clients use is kept: hashes, ``size``, ``upload-time``, ``requires-python``, ``yanked``
   (with its reason) and PEP 658/714 core metadata (``core-metadata`` and its older spelling
   ``dist-info-metadata``, both written out).
2. Core metadata is advertised only where the caller's ``metadata`` predicate says it can be
   served (pip otherwise fetches it, fails and downloads the whole file too).
3. Anything malformed is an :class:`~ipmirror.errors.DecodeError` for the document, or the entry
   is skipped (a file without a usable name or URL); file names are checked by
   :func:`safe_filename`. Only ``http``/``https`` file URLs are kept.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal
from urllib.parse import urldefrag, urljoin, urlsplit

from ipmirror.errors import DecodeError, InvalidInput

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
JSON_LATEST = "application/vnd.pypi.simple.latest+json"
HTML_LATEST = "application/vnd.pypi.simple.latest+html"
UPSTREAM_ACCEPT = f"{JSON_V1}, {HTML_V1};q=0.2, text/html;q=0.01"
API_VERSION = "1.1"

_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!~-]*")
_HEX = re.compile(r"[0-9a-f]+")


class Unacceptable(InvalidInput):
    """No format the client accepts (HTTP 406)."""


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def safe_name(name: str) -> bool:
    return len(name) <= 200 and _NAME.fullmatch(name) is not None and ".." not in name


def safe_filename(name: str) -> bool:
    return len(name) <= 255 and _FILENAME.fullmatch(name) is not None and ".." not in name


@dataclass(frozen=True, slots=True)
class IndexFile:
    filename: str
    url: str  # absolute upstream URL without fragment
    hashes: dict[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    yanked: bool | str = False
    core_metadata: bool | dict[str, str] = False
    size: int | None = None
    upload_time: str | None = None

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")

    @property
    def metadata_sha256(self) -> str | None:
        return self.core_metadata.get("sha256") if isinstance(self.core_metadata, dict) else None


@dataclass(frozen=True, slots=True)
class Project:
    name: str
    files: tuple[IndexFile, ...]
    versions: tuple[str, ...] | None = None


# -- negotiation ------------------------------------------------------------------------------------

def negotiate(accept: str | None) -> Literal["json", "html"]:
    """PEP 691 content negotiation: the best acceptable format (HTML without a preference)."""
    if not accept or not accept.strip():
        return "html"
    best: tuple[float, int, str] | None = None
    offers = {JSON_V1: "json", JSON_LATEST: "json", HTML_V1: "html", HTML_LATEST: "html",
              "text/html": "html", "*/*": "html", "text/*": "html", "application/*": "json"}
    for part in accept.split(","):
        mtype, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            k, _, v = p.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        fmt = offers.get(mtype.lower())
        if fmt is None or q <= 0:
            continue
        specific = 0 if "*" in mtype else 1
        cand = (q, specific, fmt)
        if best is None or cand[:2] > best[:2]:
            best = cand
    if best is None:
        raise Unacceptable(f"none of the accepted types is served here: {accept[:200]}")
    return "json" if best[2] == "json" else "html"


def content_type(fmt: Literal["json", "html"]) -> str:
    return JSON_V1 if fmt == "json" else "text/html"


# -- parsing ----------------------------------------------------------------------------------------

def parse_project(body: bytes, ctype: str, page_url: str) -> Project:
    """A project page (JSON if ``ctype`` says so, else HTML); URLs made absolute against ``page_url``."""
    if "json" in ctype.lower():
        return _project_json(_load_json(body), page_url)
    return _project_html(body, page_url)


def parse_root(body: bytes, ctype: str) -> list[str]:
    """The project names of a root page."""
    if "json" in ctype.lower():
        doc = _load_json(body)
        projects = doc.get("projects")
        if not isinstance(projects, list):
            raise DecodeError("index root: no 'projects' list")
        return [p["name"] for p in projects
                if isinstance(p, dict) and isinstance(p.get("name"), str) and safe_name(p["name"])]
    p = _Anchors()
    _feed(p, body)
    return [text.strip() for _a, text in p.anchors if safe_name(text.strip())]


def _load_json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise DecodeError(f"index page is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise DecodeError("index page: JSON is not an object")
    meta = doc.get("meta")
    if not isinstance(meta, dict) or not str(meta.get("api-version", "")).startswith("1."):
        raise DecodeError("index page: missing or unsupported meta.api-version")
    return doc


def _hashes(v: object) -> dict[str, str]:
    if not isinstance(v, dict):
        return {}
    return {k.lower(): h.lower() for k, h in v.items()
            if isinstance(k, str) and isinstance(h, str) and len(k) < 20 and _HEX.fullmatch(h.lower())}


def _file_url(page_url: str, href: str) -> tuple[str, str]:
    url, frag = urldefrag(urljoin(page_url, href))
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("not an http(s) URL")
    return url, frag


def _project_json(doc: dict[str, Any], page_url: str) -> Project:
    name = doc.get("name")
    files = doc.get("files")
    if not isinstance(name, str) or not isinstance(files, list):
        raise DecodeError("index page: 'name' or 'files' missing")
    out: list[IndexFile] = []
    for f in files:
        if not isinstance(f, dict):
            continue
        fn, href = f.get("filename"), f.get("url")
        if not isinstance(fn, str) or not isinstance(href, str) or not safe_filename(fn):
            continue
        try:
            url, _ = _file_url(page_url, href)
        except ValueError:
            continue
        meta = f.get("core-metadata", f.get("dist-info-metadata", False))
        cm: bool | dict[str, str] = _hashes(meta) or True if isinstance(meta, dict) else meta is True
        yanked = f.get("yanked", False)
        rp = f.get("requires-python")
        size = f.get("size")
        ut = f.get("upload-time")
        out.append(IndexFile(
            fn, url, _hashes(f.get("hashes")), rp if isinstance(rp, str) else None,
            yanked if isinstance(yanked, str) and yanked else yanked is True or bool(yanked == ""),
            cm, size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
            ut if isinstance(ut, str) else None))
    vs = doc.get("versions")
    versions = tuple(v for v in vs if isinstance(v, str)) if isinstance(vs, list) else None
    return Project(normalize(name), tuple(out), versions)


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._cur: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._cur, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._cur is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._cur is not None:
            self.anchors.append((self._cur, "".join(self._text)))
            self._cur = None


def _feed(p: HTMLParser, body: bytes) -> None:
    try:
        p.feed(body.decode("utf-8"))
        p.close()
    except (UnicodeDecodeError, AssertionError) as e:
        raise DecodeError(f"index page is not valid HTML: {e}") from None


def _hash_attr(v: str | None) -> bool | dict[str, str]:
    if v is None:
        return False
    algo, eq, digest = v.partition("=")
    if eq and _HEX.fullmatch(digest.lower()):
        return {algo.lower(): digest.lower()}
    return True


def _project_html(body: bytes, page_url: str) -> Project:
    p = _Anchors()
    _feed(p, body)
    out: list[IndexFile] = []
    for attrs, text in p.anchors:
        href, fn = attrs.get("href"), text.strip()
        if not href or not safe_filename(fn):
            continue
        try:
            url, frag = _file_url(page_url, href)
        except ValueError:
            continue
        algo, _, digest = frag.partition("=")
        hashes = {algo.lower(): digest.lower()} if digest and _HEX.fullmatch(digest.lower()) else {}
        meta = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        yanked: bool | str = False
        if "data-yanked" in attrs:
            yanked = attrs["data-yanked"] or True
        out.append(IndexFile(fn, url, hashes, attrs.get("data-requires-python"), yanked,
                             _hash_attr(meta)))
    path = urlsplit(page_url).path.rstrip("/")
    return Project(normalize(path.rsplit("/", 1)[-1]), tuple(out))


# -- the model as stored (our own JSON, absolute upstream URLs) --------------------------------------

def dump(p: Project) -> bytes:
    files = [[f.filename, f.url, f.hashes, f.requires_python, f.yanked, f.core_metadata, f.size,
              f.upload_time] for f in p.files]
    return json.dumps({"name": p.name, "files": files, "versions": p.versions},
                      separators=(",", ":")).encode()


def load(data: bytes) -> Project:
    d = json.loads(data)
    return Project(d["name"], tuple(IndexFile(*f) for f in d["files"]),
                   tuple(d["versions"]) if d.get("versions") is not None else None)


# -- rendering --------------------------------------------------------------------------------------

UrlFor = Callable[[IndexFile], str]
Can = Callable[[IndexFile], bool]


def render_json(p: Project, url_for: UrlFor, metadata: Can) -> bytes:
    files = []
    for f in p.files:
        d: dict[str, object] = {"filename": f.filename, "url": url_for(f), "hashes": f.hashes}
        if f.requires_python is not None:
            d["requires-python"] = f.requires_python
        if f.yanked:
            d["yanked"] = f.yanked
        if f.core_metadata and metadata(f):
            d["core-metadata"] = d["dist-info-metadata"] = f.core_metadata
        if f.size is not None:
            d["size"] = f.size
        if f.upload_time is not None:
            d["upload-time"] = f.upload_time
        files.append(d)
    doc: dict[str, object] = {"meta": {"api-version": API_VERSION}, "name": p.name, "files": files}
    if p.versions is not None:
        doc["versions"] = list(p.versions)
    return json.dumps(doc, separators=(",", ":")).encode()


def _meta_attr(v: bool | dict[str, str]) -> str:
    if isinstance(v, dict):
        algo, digest = next(iter(sorted(v.items())))
        return f"{algo}={digest}"
    return "true"


def render_html(p: Project, url_for: UrlFor, metadata: Can) -> bytes:
    lines = ["<!DOCTYPE html>", "<html>", "<head>", '<meta name="pypi:repository-version" '
             f'content="{API_VERSION}">', f"<title>Links for {html.escape(p.name)}</title>", "</head>",
             "<body>", f"<h1>Links for {html.escape(p.name)}</h1>"]
    for f in p.files:
        href = url_for(f)
        if "sha256" in f.hashes:
            href += f"#sha256={f.hashes['sha256']}"
        elif f.hashes:
            algo, digest = next(iter(sorted(f.hashes.items())))
            href += f"#{algo}={digest}"
        attrs = [f'href="{html.escape(href)}"']
        if f.requires_python is not None:
            attrs.append(f'data-requires-python="{html.escape(f.requires_python)}"')
        if f.yanked:
            attrs.append(f'data-yanked="{html.escape(f.yanked) if isinstance(f.yanked, str) else ""}"')
        if f.core_metadata and metadata(f):
            v = html.escape(_meta_attr(f.core_metadata))
            attrs.append(f'data-core-metadata="{v}" data-dist-info-metadata="{v}"')
        lines.append(f"<a {' '.join(attrs)}>{html.escape(f.filename)}</a><br>")
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines).encode()


def render_root(names: list[str], fmt: Literal["json", "html"]) -> bytes:
    if fmt == "json":
        doc = {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in names]}
        return json.dumps(doc, separators=(",", ":")).encode()
    body = "\n".join(f'<a href="{html.escape(normalize(n))}/">{html.escape(n)}</a><br>' for n in names)
    return (f'<!DOCTYPE html>\n<html>\n<head><meta name="pypi:repository-version" content="{API_VERSION}">'
            f"<title>Simple index</title></head>\n<body>\n{body}\n</body>\n</html>\n").encode()

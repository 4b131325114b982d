"""pip's configured index URL, the default upstream of a PyPI cache (pure: the caller passes the
environment and reads nothing else for it but the files named here).

Usage::

    url = pip_index_url(os.environ, Path.home())   # None when pip has none configured
    check_upstream(url)                            # InvalidInput if it points at an ipmirror cache
    redact(url)                                    # for logs and listings: no password

Where pip looks, lowest precedence first (pip's documented order): ``/etc/xdg/pip/pip.conf``,
``/etc/pip.conf``, ``~/.pip/pip.conf``, ``$XDG_CONFIG_HOME/pip/pip.conf`` (``~/.config``),
``$VIRTUAL_ENV/pip.conf``, then ``$PIP_CONFIG_FILE`` (``os.devnull``: no file at all), then the
``PIP_INDEX_URL`` variable. The key is ``index-url`` in ``[global]`` (``[install]`` overrides it).
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ipmirror.errors import InvalidInput

_CACHE_PATH = re.compile(r"/cache/[^/]+/simple(/|$)")


def config_files(env: Mapping[str, str], home: Path) -> list[Path]:
    cf = env.get("PIP_CONFIG_FILE")
    if cf == os.devnull:
        return []
    xdg = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    files = [Path("/etc/xdg/pip/pip.conf"), Path("/etc/pip.conf"), home / ".pip" / "pip.conf",
             xdg / "pip" / "pip.conf"]
    if env.get("VIRTUAL_ENV"):
        files.append(Path(env["VIRTUAL_ENV"]) / "pip.conf")
    if cf:
        files.append(Path(cf))
    return files


def pip_index_url(env: Mapping[str, str], home: Path) -> str | None:
    if env.get("PIP_INDEX_URL"):
        return env["PIP_INDEX_URL"].strip()
    url: str | None = None
    for f in config_files(env, home):
        cp = configparser.ConfigParser(interpolation=None)
        try:
            cp.read(f)
        except (OSError, configparser.Error):
            continue
        for section in ("global", "install"):
            for key in ("index-url", "index_url"):
                if cp.has_option(section, key):
                    url = cp.get(section, key).strip()
    return url or None


def check_upstream(url: str) -> str:
    """An upstream URL fit for a cache: http(s), and not an ipmirror cache's own index."""
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise InvalidInput(f"upstream must be an http(s) URL, not {url!r}")
    if _CACHE_PATH.search(u.path):
        raise InvalidInput(f"upstream {u.scheme}://{u.hostname}{u.path} is an ipmirror cache itself "
                           "(pip is configured to use the cache); give --upstream")
    return url if url.endswith("/") else url + "/"


def redact(url: str) -> str:
    """The URL fit for logs and listings: a password replaced by ``***``."""
    u = urlsplit(url)
    if u.password is None:
        return url
    netloc = u.netloc.rsplit("@", 1)[1]
    return urlunsplit((u.scheme, f"{u.username}:***@{netloc}", u.path, u.query, u.fragment))

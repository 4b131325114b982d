"""The repository's configuration as one frozen, typed value (``config.json``, JSON as Kubo's).

Usage::

    cfg = parse(json.loads(text))          # a Config; unknown keys and wrong types: ConfigError
    cfg.server.workers, cfg.republish.interval
    get(cfg, "republish.interval")         # 3600.0 (plain JSON values: dicts, lists, numbers)
    raw = with_value(raw, "server.workers", "2")   # the file's dict with one key set, checked
    redacted(cfg)                          # for ``config show``: secrets replaced by "***"

Rules:

1. Read once, at the edge (``node.py`` reads the file; ``serve`` re-reads it on a reload):
   nothing below takes settings from anywhere but a ``Config`` handed to it.
2. A file written by an older version (``{"version": 1, "profile": …[, "batch_bytes": N]}``)
   loads unchanged: every section and key has a default, and a file keeps only the keys someone
   set (``with_value`` edits the file's own dict, so keys it does not know are not dropped
   by a ``config set`` — but ``parse`` refuses them, so a typo is reported, not ignored).
3. Keys are ``section.key`` in snake_case, as in the file. Fields marked ``secret`` are shown
   as ``"***"`` by ``config show``; a URL's ``user:password@`` part is a secret too.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from ipmirror.errors import InvalidInput
from ipmirror.unixfs.profile import DEFAULT_PROFILE, PRESETS

VERSION = 1
ACCESS_LOG = ("text", "json", "off")


class ConfigError(InvalidInput):
    """A config file or a ``config set`` value that does not fit the schema."""


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening address and the HTTP apps it serves (by name; see ``server/urlmap.py``)."""
    address: str = "127.0.0.1:8080"
    apps: tuple[str, ...] = ("gateway", "cache", "status")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    listeners: tuple[Listener, ...] = (Listener(),)
    workers: int = 0  # 0: one per usable CPU, at most 4
    public_url: str = ""
    access_log: Literal["text", "json", "off"] = "text"
    control_socket: str = ""  # default: control.sock in the repository; relative: to it
    header_timeout: float = 10.0  # seconds a client has to send a request's headers (0: no limit)


@dataclass(frozen=True, slots=True)
class RepublishConfig:
    enabled: bool = True
    interval: float = 3600.0  # seconds between checks
    within: float = 24.0  # hours: re-sign records that expire within this
    lifetime: float = 48.0  # hours: validity of a re-signed record


@dataclass(frozen=True, slots=True)
class WatchConfig:
    mirrors: tuple[str, ...] = ()  # mirrors that ``serve`` keeps synced as their directory changes
    debounce: float = 5.0
    max_wait: float = 300.0


@dataclass(frozen=True, slots=True)
class StatusConfig:
    """The status page, health checks and metrics (``status/``)."""
    metrics: bool = True  # count requests for /-/metrics (per worker, handed over in batches)
    show_paths: bool = False  # show mirrors' source directories on the status page
    low_disk: float = 0.05  # warn when the free share of the repository's file system is below


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The outgoing HTTP client (``server/client.py``)."""
    timeout: float = 300.0
    connect_timeout: float = 10.0
    limit: int = 64
    limit_per_host: int = 8
    proxy: str = field(default="", metadata={"secret": "url"})


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """What every pull-through cache shares (``cache/``; each cache's own settings are rows of
    ``caches/cache.db``, set with ``ipmirror cache add/set``)."""
    offline: bool = False  # serve only what is cached, for every cache (``serve --offline``)
    read_timeout: float = 30.0  # seconds without a byte from an upstream before it failed
    max_doc_bytes: int = 64 << 20  # an index page larger than this is refused
    upkeep_interval: float = 0.0  # seconds between rounds of the upkeep service (0: no such service)


@dataclass(frozen=True, slots=True)
class SwarmConfig:
    listen: tuple[str, ...] = ()  # libp2p listen multiaddrs (/ip4/…/tcp/PORT); empty: no libp2p host
    max_peers: int = 256
    max_streams_per_peer: int = 256


@dataclass(frozen=True, slots=True)
class Config:
    version: int = VERSION
    profile: str = DEFAULT_PROFILE
    batch_bytes: int | None = None
    hash_on_read: bool = True  # check every block a reader gets against its hash (store/verified.py)
    server: ServerConfig = ServerConfig()
    republish: RepublishConfig = RepublishConfig()
    watch: WatchConfig = WatchConfig()
    http: HttpConfig = HttpConfig()
    cache: CacheConfig = CacheConfig()
    swarm: SwarmConfig = SwarmConfig()
    status: StatusConfig = StatusConfig()


def parse(raw: object) -> Config:
    """The typed value of a config file's JSON; :class:`ConfigError` names the first bad key."""
    cfg: Config = _build(Config, raw, "")
    if cfg.version != VERSION:
        raise ConfigError(f"not an ipmirror repository config of version {VERSION}")
    _check(cfg)
    return cfg


def _check(cfg: Config) -> None:
    if cfg.profile not in PRESETS:
        raise ConfigError(f"profile: unknown profile {cfg.profile!r} (known: {', '.join(PRESETS)})")
    if cfg.batch_bytes is not None and cfg.batch_bytes <= 0:
        raise ConfigError("batch_bytes: must be positive")
    s = cfg.server
    if s.workers < 0:
        raise ConfigError("server.workers: must be 0 (automatic) or more")
    if s.header_timeout < 0:
        raise ConfigError("server.header_timeout: must be 0 (no limit) or more")
    if s.access_log not in ACCESS_LOG:
        raise ConfigError(f"server.access_log: one of {', '.join(ACCESS_LOG)}")
    if not s.listeners:
        raise ConfigError("server.listeners: at least one listener")
    for n in ("interval", "within", "lifetime"):
        if getattr(cfg.republish, n) <= 0:
            raise ConfigError(f"republish.{n}: must be positive")
    for n in ("debounce", "max_wait"):
        if getattr(cfg.watch, n) < 0:
            raise ConfigError(f"watch.{n}: must not be negative")
    if cfg.swarm.max_peers < 1 or cfg.swarm.max_streams_per_peer < 1:
        raise ConfigError("swarm: max_peers and max_streams_per_peer must be at least 1")
    if not 0 <= cfg.status.low_disk < 1:
        raise ConfigError("status.low_disk: a fraction from 0 to 1")
    h = cfg.http
    if h.timeout <= 0 or h.connect_timeout <= 0 or h.limit < 1 or h.limit_per_host < 0:
        raise ConfigError("http: timeouts must be positive, limit at least 1")
    c = cfg.cache
    if c.read_timeout <= 0 or c.max_doc_bytes <= 0 or c.upkeep_interval < 0:
        raise ConfigError("cache: read_timeout and max_doc_bytes must be positive, "
                          "upkeep_interval not negative")


def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(tp: Any, value: object, key: str) -> Any:
    where = key or "config"
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object")
        hints = _hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        for k in value:
            if k not in names:
                raise ConfigError(f"{_join(key, k)}: unknown key (known: {', '.join(sorted(names))})")
        return tp(**{k: _build(hints[k], v, _join(key, k)) for k, v in value.items()})
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        (inner,) = [a for a in get_args(tp) if a is not type(None)]
        return _build(inner, value, key)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list")
        item = get_args(tp)[0]
        return tuple(_build(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{where}: one of {', '.join(map(str, get_args(tp)))}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string")
        return value
    raise TypeError(f"config schema type {tp!r} at {where}")  # a schema bug, not user input


def _join(key: str, k: str) -> str:
    return f"{key}.{k}" if key else k


def to_json(value: object) -> Any:
    """A config value (or the whole config) as plain JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [to_json(v) for v in value]
    return value


def get(cfg: Config, key: str) -> Any:
    """The JSON value at ``section.key`` (a section: an object)."""
    value: object = cfg
    for part in key.split("."):
        if not (dataclasses.is_dataclass(value) and part in {f.name for f in dataclasses.fields(value)}):
            raise ConfigError(f"unknown config key {key!r} (see 'ipmirror config show')")
        value = getattr(value, part)
    return to_json(value)


def _field_type(key: str) -> Any:
    tp: Any = Config
    for part in key.split("."):
        if not (dataclasses.is_dataclass(tp) and part in {f.name for f in dataclasses.fields(tp)}):
            raise ConfigError(f"unknown config key {key!r} (see 'ipmirror config show')")
        tp = _hints(tp)[part]
    return tp


def value_of(key: str, text: str) -> object:
    """``text`` given for ``key`` on the command line, as JSON data of the key's type: JSON when
    it parses as such (``8``, ``true``, ``["a"]``), else the plain string; a comma-separated
    list for list keys (``watch.mirrors a,b``)."""
    tp = _field_type(key)
    try:
        value: object = json.loads(text)
    except ValueError:
        value = text
    if get_origin(tp) is tuple and isinstance(value, str):
        value = [v for v in value.split(",") if v] if value else []
    if tp is str or (get_origin(tp) is Literal and isinstance(value, str | int | float)):
        value = text
    return value


def with_value(raw: dict[str, Any], key: str, text: str) -> dict[str, Any]:
    """A copy of the file's dict with ``key`` set to ``text`` (see :func:`value_of`), checked
    by parsing the result: other keys stay as the file has them."""
    value = value_of(key, text)
    out = json.loads(json.dumps(raw))
    parts = key.split(".")
    node = out
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{part}: expected an object in the file")
    node[parts[-1]] = value
    parse(out)
    return out  # type: ignore[no-any-return]


def redacted(cfg: Config) -> Any:
    """``to_json(cfg)`` with secret fields hidden (``config show``)."""
    return _redact(cfg)


def _redact(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            kind = f.metadata.get("secret")
            if kind and v:
                out[f.name] = _hide_url(v) if kind == "url" else "***"
            else:
                out[f.name] = _redact(v)
        return out
    if isinstance(value, tuple):
        return [_redact(v) for v in value]
    return value


def _hide_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***"
    _auth, at, host = rest.rpartition("@")
    return f"{scheme}://***@{host}" if at else url

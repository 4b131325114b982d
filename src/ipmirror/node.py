"""Composition: opens a repository and hands out the pieces the commands need.

Usage::

    with Repo.open(path) as repo:          # $IPMIRROR_PATH or ~/.ipmirror, created on first use
        repo.store.get(cid)
        repo.profile                       # the repo's default import profile

Layout of a repository::

    config.json      {"version": 1, "profile": "unixfs-v1-2025"[, "batch_bytes": N]}, extended
                     by the typed sections of ``config.py`` (server, republish, watch, http)
    blocks/          the LMDB block store (data.mdb, lock.mdb, sessions/)
    mirrors/         mirror definitions, versions and the per-file index (LMDB)
    keys/            private keys (0600), Kubo's libp2p protobuf format
    names/           IPNS records we hold, and the last sequence number per key

Configuration is read here, once; nothing below this layer reads the environment or files.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from types import TracebackType

from ipmirror import config as config_mod
from ipmirror.codec import ipns
from ipmirror.codec.cid import CID
from ipmirror.codec.libp2p_key import PeerID
from ipmirror.errors import (
    Conflict,
    InvalidInput,
    InvalidRecord,
    IpmirrorError,
    NotFound,
    StoreError,
    UnsupportedFormat,
)
from ipmirror.gateway.backend import Resolved
from ipmirror.mirror.db import Mirror, MirrorDB
from ipmirror.mirror.manager import Mirrors, check_name
from ipmirror.naming.keystore import Keystore
from ipmirror.naming.names import Names
from ipmirror.store.lmdb_store import LmdbStore
from ipmirror.unixfs.profile import DEFAULT_PROFILE, PRESETS, Profile

REPO_VERSION = 1


def default_path(env: dict[str, str] | None = None) -> Path:
    e = os.environ if env is None else env
    p = e.get("IPMIRROR_PATH")
    return Path(p).expanduser() if p else Path("~/.ipmirror").expanduser()


class Repo:
    def __init__(self, path: Path, config: dict[str, object], store: LmdbStore) -> None:
        self.path = path
        self.config = config
        self.settings = load_settings(config, path / "config.json")  # typed, read once
        self.store = store
        self._mirror_db: MirrorDB | None = None

    @staticmethod
    def init(path: Path, profile: str = DEFAULT_PROFILE) -> dict[str, object]:
        if profile not in PRESETS:
            raise InvalidInput(f"unknown profile {profile!r} (known: {', '.join(PRESETS)})")
        cfg_path = path / "config.json"
        try:
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o700)
            if cfg_path.exists():
                return _read_config(cfg_path)
            cfg: dict[str, object] = {"version": REPO_VERSION, "profile": profile}
            tmp = cfg_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(cfg, indent=2) + "\n")
            os.replace(tmp, cfg_path)
            return cfg
        except OSError as e:
            raise StoreError(f"cannot create repository at {path}: {e.strerror}") from None

    @classmethod
    def open(cls, path: Path | None = None, *, create: bool = True) -> Repo:
        p = path or default_path()
        cfg_path = p / "config.json"
        try:
            exists = cfg_path.exists()
        except OSError as e:
            raise StoreError(f"cannot use repository at {p}: {e.strerror}") from None
        if not exists:
            if not create:
                raise StoreError(f"no ipmirror repository at {p} (run 'ipmirror init')")
            cfg = cls.init(p)
        else:
            cfg = _read_config(cfg_path)
        return cls(p, cfg, LmdbStore.open(p / "blocks"))

    @property
    def profile(self) -> Profile:
        return PRESETS[self.settings.profile]

    @property
    def batch_bytes(self) -> int | None:
        """Bytes per durable write batch (config ``batch_bytes``; default: the store's)."""
        return self.settings.batch_bytes

    # -- mirrors ----------------------------------------------------------------------------------
    @property
    def mirror_db(self) -> MirrorDB:
        if self._mirror_db is None:
            self._mirror_db = MirrorDB.open(self.path / "mirrors")
        return self._mirror_db

    def mirrors(self) -> Mirrors:
        return Mirrors(self.mirror_db, self.store, publish=self._publish_mirror,
                       batch_bytes=self.batch_bytes)

    def mirror_add(self, name: str, directory: str, *, profile: str, hidden: bool = False,
                   exclude: list[str] | None = None, nocopy: bool = False, key: str = "",
                   keep: int = 0) -> Mirror:
        """Register a mirror and give it a key: a new one named after the mirror, or the existing
        key named with ``key`` (a key of the mirror's name that exists already is an error unless
        named explicitly, so two mirrors never publish under one name by accident)."""
        check_name(name)
        mirrors = self.mirrors()
        if self.mirror_db.get_mirror(name) is not None:
            raise Conflict(f"a mirror named {name!r} exists already")
        created = False
        if key:
            try:
                self.keystore.info(key)
            except NotFound:
                self.keystore.gen(key)
                created = True
        else:
            if name in self.keystore.names():
                raise Conflict(f"a key named {name!r} exists already; pass --key {name} to publish "
                               "this mirror under it")
            self.keystore.gen(name)
            created = True
        try:
            return mirrors.add(name, directory, profile=profile, hidden=hidden, exclude=exclude,
                               nocopy=nocopy, key=key or name, keep=keep)
        except BaseException:
            if created:
                self.keystore.rm(key or name)
            raise

    def _publish_mirror(self, mirror: Mirror, root: object) -> None:
        """Publish a completed version under the mirror's key."""
        self.names.publish(mirror.key, f"/ipfs/{root}")

    def mirror_lookup(self, name: str) -> str | None:
        """``/ipfs/<root>`` of a mirror's latest version (for ``name resolve``), or None."""
        m = self.mirror_db.get_mirror(name)
        if m is None:
            return None
        vs = self.mirror_db.versions(m.id)
        return f"/ipfs/{vs[-1].root}" if vs else None

    # -- serving ----------------------------------------------------------------------------------
    def gateway_backend(self) -> NodeBackend:
        """The gateway's view of this node; makes the node key (``self``) on first use."""
        backend = NodeBackend(self)
        backend.peer_id()
        return backend

    # -- naming -----------------------------------------------------------------------------------
    @property
    def keystore(self) -> Keystore:
        return Keystore(self.path / "keys")

    @property
    def names(self) -> Names:
        return Names(self.path / "names", self.keystore, clock=time.time_ns)

    def close(self) -> None:
        if self._mirror_db is not None:
            self._mirror_db.close()
        self.store.close()

    def __enter__(self) -> Repo:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def load_settings(raw: dict[str, object], where: Path) -> config_mod.Config:
    """The typed configuration of a config file's JSON (``StoreError`` naming the file)."""
    try:
        return config_mod.parse(raw)
    except config_mod.ConfigError as e:
        raise StoreError(f"{where}: {e}") from None


def read_settings(path: Path) -> tuple[dict[str, object], config_mod.Config]:
    """The config file of the repository at ``path``, as in the file and typed, without opening
    the store (``serve``'s supervisor, ``config``, ``status``)."""
    cfg_path = path / "config.json"
    try:
        exists = cfg_path.exists()
    except OSError as e:
        raise StoreError(f"cannot use repository at {path}: {e.strerror}") from None
    if not exists:
        raise StoreError(f"no ipmirror repository at {path} (run 'ipmirror init')")
    raw = _read_config(cfg_path)
    return raw, load_settings(raw, cfg_path)


def write_config(path: Path, raw: dict[str, object]) -> None:
    """Replace the config file of the repository at ``path`` (atomically), checked first."""
    cfg_path = path / "config.json"
    load_settings(raw, cfg_path)
    try:
        tmp = cfg_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(raw, indent=2) + "\n")
        os.replace(tmp, cfg_path)
    except OSError as e:
        raise StoreError(f"cannot write {cfg_path}: {e.strerror}") from None


def _read_config(p: Path) -> dict[str, object]:
    try:
        cfg = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise StoreError(f"cannot read {p}: {e}") from None
    if not isinstance(cfg, dict) or cfg.get("version") != REPO_VERSION:
        raise StoreError(f"{p}: not an ipmirror repository config of version {REPO_VERSION}")
    return cfg


class NodeBackend:
    """The gateway's view of the node (gateway.backend.Backend): blocks, names, records, identity.

    Every name lookup reads the current record or version, so versions published by another
    process (a ``mirror sync`` from cron) are served at once.
    """

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self._peer_id: PeerID | None = None
        self._names = repo.names  # one for the backend's life: it remembers verified records
        self._resolved: dict[tuple[str, str, int], Resolved] = {}  # (name, path, ttl) -> parsed

    def get(self, cid: CID) -> bytes:
        return self.repo.store.get(cid)

    def get_stored(self, cid: CID) -> bytes | None:
        return self.repo.store.get_stored(cid)

    def has(self, cid: CID) -> bool:
        return self.repo.store.has(cid)

    def resolve_name(self, name: str) -> Resolved:
        names = self._names
        path = names.resolve(name, lookup=self.repo.mirror_lookup)
        ttl_ns = 60 * 1_000_000_000
        with contextlib.suppress(IpmirrorError):
            ttl_ns = names.record(name).ttl_ns
        key = (name, path, ttl_ns)
        hit = self._resolved.get(key)
        if hit is not None:
            return hit
        if not path.startswith("/ipfs/"):
            raise NotFound(f"/ipns/{name} points at {path}, which is not an /ipfs/ path", name)
        head, *rest = [p for p in path[len("/ipfs/"):].split("/") if p]
        res = Resolved(CID.parse(head), rest, max(0, ttl_ns // 1_000_000_000), None)
        if len(self._resolved) >= 1024:
            self._resolved.clear()
        self._resolved[key] = res
        return res

    def ipns_name(self, name: str) -> PeerID:
        with contextlib.suppress(InvalidInput, UnsupportedFormat):
            return PeerID.parse(name)
        keys = self.repo.keystore
        with contextlib.suppress(NotFound, InvalidInput):
            return keys.info(name).id
        mirror = self.repo.mirror_db.get_mirror(name)
        if mirror is not None:
            return keys.info(mirror.key).id
        raise InvalidInput(f"{name!r} is not an IPNS name (k51…), a local key or a mirror")

    def ipns_record(self, name: PeerID) -> bytes:
        try:
            return self.repo.names.record(name).raw
        except InvalidRecord as e:  # expired (or damaged): nothing a client could use
            raise NotFound(f"no valid record for {name}: {e}", name) from None

    def put_ipns_record(self, name: PeerID, raw: bytes) -> None:
        names = self.repo.names
        with contextlib.suppress(NotFound):
            if names.get_record(name) == raw:
                ipns.validate(raw, name, names.clock())  # the same record, if still valid: a no-op
                return
        names.put_record(raw, name)

    def peer_id(self) -> PeerID:
        if self._peer_id is None:
            self._peer_id = self.repo.keystore.identity().id
        return self._peer_id

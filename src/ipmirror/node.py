"""Composition root: opens a repository, picks the concrete backends and hands out the pieces
the commands need (use cases live in their layers: e.g. mirror/register.py, gateway/node_backend.py).

Usage::

    with Repo.open(path) as repo:          # $IPMIRROR_PATH or ~/.ipmirror (create=False: must exist;
                                           # readonly=True: a reader of another user's repository)
        repo.blocks.get(cid)               # what readers use: every block checked against its hash
        repo.store                         # the store itself: writers, GC, verify
        repo.profile                       # the repo's default import profile
        repo.names, repo.keystore          # one of each per Repo (they remember what they verified)
        repo.gateway_backend()             # the gateway's narrow view of the node

Layout of a repository::

    config.json      {"version": 1, "profile": "unixfs-v1-2025"[, "batch_bytes": N]
                      [, "hash_on_read": false]}, extended by the typed sections of ``config.py``
                      (server, republish, watch, http)
    blocks/          the LMDB block store (data.mdb, lock.mdb, sessions/)
    mirrors/         mirror definitions, versions and the per-file index (LMDB)
    keys/            private keys (0600), Kubo's libp2p protobuf format
    names/           IPNS records we hold, and the last sequence number per key
    caches/          pull-through caches: cache.db (SQLite: definitions, documents, artifacts),
                     fills/ (downloads in progress; see cache/fill.py)

Configuration is read here, once; nothing below this layer reads the environment or files. This
is the one place that picks the block store backend (LMDB); everything else sees the
``store.base.Store`` protocol (an import-linter contract in pyproject.toml keeps it so).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import lmdb

from ipmirror import config as config_mod
from ipmirror.cache.db import CacheDB
from ipmirror.codec.cid import verify_multihash
from ipmirror.dag.gc import iter_missing
from ipmirror.errors import Conflict, InvalidInput, StoreError, UnsupportedFormat
from ipmirror.gateway.node_backend import NodeBackend
from ipmirror.mirror.db import Mirror, MirrorDB
from ipmirror.mirror.manager import Mirrors
from ipmirror.naming.keystore import Keystore
from ipmirror.naming.names import Names
from ipmirror.store.base import Store
from ipmirror.store.lmdb_store import LmdbStore
from ipmirror.store.salvage import salvage_env
from ipmirror.store.verified import VerifiedBlocks
from ipmirror.unixfs.profile import DEFAULT_PROFILE, PRESETS, Profile

REPO_VERSION = 1


def default_path(env: dict[str, str] | None = None) -> Path:
    e = os.environ if env is None else env
    p = e.get("IPMIRROR_PATH")
    return Path(p).expanduser() if p else Path("~/.ipmirror").expanduser()


class Repo:
    def __init__(self, path: Path, config: dict[str, object], store: Store) -> None:
        self.path = path
        self.config = config
        self.settings = load_settings(config, path / "config.json")  # typed, read once
        self.store = store
        self._mirror_db: MirrorDB | None = None
        self._keystore: Keystore | None = None
        self._names: Names | None = None
        self.readonly = False
        self._blocks: VerifiedBlocks | None = None
        self._cache_db: CacheDB | None = None

    @staticmethod
    def init(path: Path, profile: str = DEFAULT_PROFILE) -> dict[str, object]:
        if profile not in PRESETS:
            raise InvalidInput(f"unknown profile {profile!r} (known: {', '.join(PRESETS)})")
        cfg_path = path / "config.json"
        try:
            if not cfg_path.exists():  # a new repository is private; sharing one is the owner's choice
                path.mkdir(parents=True, exist_ok=True)
                os.chmod(path, 0o700)
            if cfg_path.exists():
                cfg = _read_config(cfg_path)
            else:
                cfg = {"version": REPO_VERSION, "profile": profile}
                tmp = cfg_path.with_suffix(".tmp")
                tmp.write_text(json.dumps(cfg, indent=2) + "\n")
                os.replace(tmp, cfg_path)
        except OSError as e:
            raise StoreError(f"cannot create repository at {path}: {e.strerror}") from None
        Keystore(path / "keys").identity()  # the node key, as Kubo's init makes an identity
        return cfg

    @classmethod
    def open(cls, path: Path | None = None, *, create: bool = True, readonly: bool = False) -> Repo:
        """The repository at ``path``; made first when missing if ``create``. ``readonly``: open
        the databases read-only (writes fail), for a user who may only read the repository
        (README, "Serving a repository another user writes")."""
        p = path or default_path()
        if not _config_exists(p):
            if not create or readonly:
                raise no_repository(p)
            cfg = cls.init(p)
        else:
            cfg = _read_config(p / "config.json")
        if readonly:
            _check_reader(p)
        repo = cls(p, cfg, LmdbStore.open(p / "blocks", readonly=readonly))
        repo.readonly = readonly
        return repo

    @property
    def profile(self) -> Profile:
        return PRESETS[self.settings.profile]

    @property
    def batch_bytes(self) -> int | None:
        """Bytes per durable write batch (config ``batch_bytes``; default: the store's)."""
        return self.settings.batch_bytes

    @property
    def hash_on_read(self) -> bool:
        """Check every block handed to a reader against its hash (config ``hash_on_read``,
        default true; Kubo's ``Datastore.HashOnRead``)."""
        return self.settings.hash_on_read

    @property
    def blocks(self) -> VerifiedBlocks:
        """The blocks as every reader gets them (cat, get, ls, dag export, block get, the
        gateway): checked against their hash unless ``hash_on_read`` is false (store/verified.py).
        One object per Repo: it counts the damaged reads a status page shows."""
        if self._blocks is None:
            self._blocks = VerifiedBlocks(self.store, verify=self.hash_on_read)
        return self._blocks

    # -- mirrors ----------------------------------------------------------------------------------
    @property
    def mirror_db(self) -> MirrorDB:
        if self._mirror_db is None:
            self._mirror_db = _mirror_db_readonly(self.path / "mirrors") if self.readonly \
                else MirrorDB.open(self.path / "mirrors")
        return self._mirror_db

    def mirrors(self) -> Mirrors:
        return Mirrors(self.mirror_db, self.store, publish=self._publish_mirror,
                       batch_bytes=self.batch_bytes)

    def _publish_mirror(self, mirror: Mirror, root: object) -> None:
        """Publish a completed version under the mirror's key."""
        self.names.publish(mirror.key, f"/ipfs/{root}")

    def mirror_lookup(self, name: str) -> str | None:
        """``/ipfs/<root>`` of a mirror's latest version (for ``name resolve``), or None."""
        if not self._has_mirrors():
            return None
        m = self.mirror_db.get_mirror(name)
        if m is None:
            return None
        vs = self.mirror_db.versions(m.id)
        return f"/ipfs/{vs[-1].root}" if vs else None

    def _mirror_key(self, name: str) -> str | None:
        """The name of the key a mirror publishes under, or None if there is no such mirror."""
        if not self._has_mirrors():
            return None
        m = self.mirror_db.get_mirror(name)
        return m.key if m is not None else None

    # -- caches ---------------------------------------------------------------------------------
    @property
    def cache_db(self) -> CacheDB:
        """The caches' metadata database (cache/db.py); its artifacts live in ``self.store``."""
        if self._cache_db is None:
            self._cache_db = CacheDB.open(self.path / "caches")
        return self._cache_db

    def _has_mirrors(self) -> bool:
        """False for a read-only repository whose mirror database was never made."""
        return not self.readonly or self._mirror_db is not None \
            or (self.path / "mirrors" / "data.mdb").exists()

    # -- serving ----------------------------------------------------------------------------------
    def gateway_backend(self) -> NodeBackend:
        """The gateway's view of this node; makes the node key (``self``) of a repository made
        before ``init`` did, unless read-only."""
        backend = NodeBackend(self.blocks, self.names, self.keystore, mirror_path=self.mirror_lookup,
                              mirror_key=self._mirror_key)
        if not self.readonly:
            backend.peer_id()
        return backend

    # -- naming -----------------------------------------------------------------------------------
    @property
    def keystore(self) -> Keystore:
        """The repository's keys: one object for the repository's life (it remembers derived key
        IDs per version of each key file, see naming/keystore.py)."""
        if self._keystore is None:
            self._keystore = Keystore(self.path / "keys")
        return self._keystore

    @property
    def names(self) -> Names:
        """The repository's IPNS names: one object for the repository's life, so the records it
        verified are remembered across requests (naming/names.py, rule 3)."""
        if self._names is None:
            self._names = Names(self.path / "names", self.keystore, clock=time.time_ns)
        return self._names

    def close(self) -> None:
        if self._cache_db is not None:
            self._cache_db.close()
        if self._mirror_db is not None:
            self._mirror_db.close()
        self.store.close()

    def __enter__(self) -> Repo:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _check_reader(path: Path) -> None:
    """A user opening the repository read-only must still write the block store's lock file (LMDB
    records its readers there, so the writer never reuses pages they read)."""
    lock = path / "blocks" / "lock.mdb"
    if lock.exists() and not os.access(lock, os.R_OK | os.W_OK):
        raise StoreError(f"cannot read the repository at {path}: {lock}: Permission denied (a reader "
                         "needs write access to the lock files; see README, \"Serving a repository "
                         "another user writes\")")


def _mirror_db_readonly(path: Path) -> MirrorDB:
    """The mirror database opened read-only."""
    try:
        env = lmdb.open(str(path), readonly=True, max_dbs=4, max_readers=256, readahead=False,
                        map_size=1 << 36)
    except lmdb.Error as e:
        raise StoreError(f"cannot open mirror state at {path}: {e}") from None
    return MirrorDB(env)


def no_repository(path: Path) -> StoreError:
    """The error of a command run where there is no repository."""
    return StoreError(f"no repository at {path} (run `ipmirror init`)")


def _config_exists(path: Path) -> bool:
    try:
        return (path / "config.json").exists()
    except OSError as e:
        raise StoreError(f"cannot use repository at {path}: {e.strerror}") from None


@dataclass
class RecoverReport:
    """What ``recover`` saved and what it could not."""

    copied: dict[str, int] = field(default_factory=dict)  # "blocks", "pins", "keys", … -> how many
    lost: list[str] = field(default_factory=list)  # one line per thing not saved


def recover(src: Path, dst: Path) -> RecoverReport:
    """Copy every readable block, pin, no-copy reference, key, IPNS record and mirror record of
    the repository at ``src`` (its databases possibly damaged) into a new repository at ``dst``.
    Blocks whose bytes do not match their hash are not copied; pins whose DAG is then incomplete
    are kept (``repo verify`` lists what they miss) and reported. Run it with no other process
    using ``src``."""
    if not (src / "config.json").exists() and not (src / "blocks").is_dir():
        raise StoreError(f"no ipmirror repository at {src}")
    if dst.exists() and any(dst.iterdir()):
        raise Conflict(f"{dst} exists and is not empty; recover into a new path")
    rep = RecoverReport()
    try:
        cfg = _read_config(src / "config.json")
    except StoreError as e:
        cfg = {"version": REPO_VERSION, "profile": DEFAULT_PROFILE}
        rep.lost.append(f"config: {e} (a default config was written)")
    Repo.init(dst, str(cfg.get("profile", DEFAULT_PROFILE)))
    tmp = dst / "config.tmp"
    tmp.write_text(json.dumps(cfg, indent=2) + "\n")
    os.replace(tmp, dst / "config.json")

    def whole(mh: bytes, data: bytes) -> bool:
        try:
            return verify_multihash(mh, data)
        except UnsupportedFormat:
            return True

    store = LmdbStore.open(dst / "blocks")
    try:
        if (src / "blocks" / "data.mdb").exists():
            br = salvage_env(src / "blocks", store.env, [b"blocks", b"pins", b"refs"],
                             check={b"blocks": whole})
            rep.copied.update(br.copied)
            rep.lost += [f"blocks: {n} damaged block(s) not copied" for n in br.dropped.values()]
            rep.lost += [f"block store: {u}" for u in br.unreadable]
            store.recount()
            for root, _kind in store.pins():
                missing = sum(1 for _ in iter_missing(store, root))
                if missing:
                    rep.lost.append(f"pin {root}: {missing} block(s) of its DAG could not be saved "
                                    "(add, import or sync the data again)")
    finally:
        store.close()
    if (src / "mirrors" / "data.mdb").exists():
        mdb = MirrorDB.open(dst / "mirrors")
        try:
            mr = salvage_env(src / "mirrors", mdb.env, [b"mirrors", b"versions", b"index"])
        finally:
            mdb.close()
        rep.copied.update({f"mirror {k}": v for k, v in mr.copied.items()})
        rep.lost += [f"mirror state: {u}" for u in mr.unreadable]
    for sub in ("keys", "names"):
        n = 0
        for f in sorted((src / sub).rglob("*")) if (src / sub).is_dir() else []:
            if not f.is_file():
                continue
            target = dst / sub / f.relative_to(src / sub)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, target)
                n += 1
            except OSError as e:
                rep.lost.append(f"{sub}: {f.relative_to(src)}: {e.strerror}")
        rep.copied[sub] = n
    return rep


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
    if not _config_exists(path):
        raise no_repository(path)
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

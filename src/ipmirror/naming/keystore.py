"""Private keys on disk: ``$REPO/keys/``, one file per key, in Kubo's export format.

Usage::

    ks = Keystore(repo_path / "keys")
    info = ks.gen("mirror-pypi")             # Ed25519; info.id prints as 'k51…'
    raw = ks.export("mirror-pypi")           # libp2p protobuf PrivateKey bytes, as `ipfs key export`
    ks.import_("copy", raw)                  # refused: the same key under two names is allowed, but
                                             # a name that exists already is never replaced

Rules kept here:

- A key file holds exactly the protobuf ``PrivateKey`` bytes (Kubo's
  ``libp2p-protobuf-cleartext``), so ``export`` is a plain copy. Files are 0600, the directory
  0700; both are created that way, never widened later.
- File names are ``key_`` + lower-case unpadded base32 of the key name, as Kubo's keystore does,
  so names that differ only in case stay apart on case-insensitive file systems.
- Key names are 1..100 characters of ``A-Z a-z 0-9 - _ .`` not starting with ``.``; ``self``
  is reserved for the node's own identity key.
- Every write is atomic (temporary file, fsync, link/rename, fsync of the directory). New keys are
  *linked* into place, which fails if the name exists, so two concurrent ``gen`` calls for one
  name cannot both succeed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric import rsa

from ipmirror.codec.libp2p_key import KeyType, PrivateKey
from ipmirror.codec.peerid import PeerID
from ipmirror.errors import Conflict, DecodeError, InvalidInput, NotFound, StoreError, UnsupportedFormat

SELF: Final = "self"
_NAME_RE: Final = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,99}")
_PREFIX: Final = "key_"
RECHECK_S: Final = 1.0  # info() reads a key file again after this, even if it looks unchanged
KEY_TYPES: Final = ("ed25519", "rsa")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    name: str
    id: PeerID
    type: KeyType


def check_key_name(name: str) -> str:
    """Return ``name`` if it is a valid name for a new key, else raise InvalidInput.

    Rule: 1-100 of ``A-Z a-z 0-9 - _ .``, not starting with ``.`` (names are file names here,
    base32-encoded, so the rule is about what users can type, not about the file system), and not
    ``self`` (Kubo's name for the node's own key). Mirror names follow a stricter rule
    (``mirror.manager.check_mirror_name``) so that every mirror name is also a valid key name."""
    if name == SELF:
        raise InvalidInput("the key name 'self' is reserved for the node's own key")
    if not _NAME_RE.fullmatch(name):
        raise InvalidInput(f"invalid key name {name!r}: use 1-100 letters, digits, '-', '_' or '.', "
                           "not starting with '.'")
    return name


@functools.lru_cache(maxsize=1024)
def _file_name(name: str) -> str:
    return _PREFIX + base64.b32encode(name.encode()).decode("ascii").rstrip("=").lower()


def _name_of_file(file_name: str) -> str | None:
    if not file_name.startswith(_PREFIX):
        return None
    body = file_name[len(_PREFIX):].upper()
    try:
        name = base64.b32decode(body + "=" * (-len(body) % 8)).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return name if _NAME_RE.fullmatch(name) and _file_name(name) == file_name else None


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, replace: bool = True, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically and durably, with permission ``mode``.

    With ``replace=False`` an existing ``path`` raises :class:`Conflict` and is left alone.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise Conflict(f"{path} exists already") from None
            except OSError:  # no hard links here (some network/FUSE file systems): check, then rename
                if os.path.lexists(path):
                    raise Conflict(f"{path} exists already") from None
                os.rename(tmp, path)
            else:
                os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


class Keystore:
    """The keys of one repository (see the module rules)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._infos: dict[str, tuple[tuple[int, ...], float, KeyInfo]] = {}  # see info()

    # -- helpers ----------------------------------------------------------------------------------
    def _dir(self) -> Path:
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the keystore {self.path}: {e.strerror}") from None
        return self.path

    def _file(self, name: str) -> Path:
        return self.path / _file_name(name)

    def _store(self, name: str, key: PrivateKey, *, replace: bool = False) -> KeyInfo:
        check_key_name(name)
        self._infos.pop(name, None)
        try:
            atomic_write(self._dir() / _file_name(name), key.to_bytes(), replace=replace)
        except Conflict:
            raise Conflict(f"a key named {name!r} exists already") from None
        except OSError as e:
            raise StoreError(f"cannot write key {name!r}: {e.strerror}") from None
        return KeyInfo(name, PeerID.from_public_key(key.public_key()), key.type)

    # -- API --------------------------------------------------------------------------------------
    def gen(self, name: str, key_type: str = "ed25519", size: int | None = None) -> KeyInfo:
        """Create a key: Ed25519 (the default; ``size`` must be unset) or RSA (``size`` bits,
        default 2048)."""
        check_key_name(name)
        if key_type == "ed25519":
            if size is not None:
                raise InvalidInput("Ed25519 keys have a fixed size; do not pass a size")
            key = PrivateKey.from_ed25519_seed(secrets.token_bytes(32))
        elif key_type == "rsa":
            bits = 2048 if size is None else size
            if not 2048 <= bits <= 8192:
                raise InvalidInput(f"RSA key size must be 2048..8192 bits, not {bits}")
            key = PrivateKey.from_crypto(rsa.generate_private_key(public_exponent=65537, key_size=bits))
        else:
            raise UnsupportedFormat(f"unknown key type {key_type!r} (use one of: {', '.join(KEY_TYPES)})")
        if self._file(name).exists():  # fail before the work in the common case; _store decides
            raise Conflict(f"a key named {name!r} exists already")
        return self._store(name, key)

    def identity(self) -> KeyInfo:
        """The node's own key, ``self``: created (Ed25519) on first use, by ``ipmirror init`` (or by
        ``ipmirror serve`` in a repository made before ``init`` did).

        ``gen`` and ``import_`` refuse the name, so this is the only way the key comes to be; two
        processes racing here end up with the same key (the file is linked into place, once)."""
        with contextlib.suppress(NotFound):
            return self.info(SELF)
        key = PrivateKey.from_ed25519_seed(secrets.token_bytes(32))
        try:
            atomic_write(self._dir() / _file_name(SELF), key.to_bytes(), replace=False)
        except Conflict:  # another process made it first
            return self.info(SELF)
        except OSError as e:
            raise StoreError(f"cannot write the node key: {e.strerror}") from None
        return KeyInfo(SELF, PeerID.from_public_key(key.public_key()), key.type)

    def get(self, name: str) -> PrivateKey:
        """The private key stored under ``name``."""
        try:
            raw = self._file(name).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no key named {name!r}", name) from None
        except OSError as e:
            raise StoreError(f"cannot read key {name!r}: {e.strerror}") from None
        try:
            return PrivateKey.from_bytes(raw)
        except (DecodeError, UnsupportedFormat) as e:
            raise StoreError(f"key file of {name!r} is unreadable: {e}") from None

    def info(self, name: str) -> KeyInfo:
        """The key's name, ID and type. Remembered per version of its file (inode, size, mtime,
        ctime; key files are written by rename) for up to ``RECHECK_S``, so a server resolving a
        key's name per request mostly does a ``stat``, not a read and a public-key derivation."""
        try:
            st = os.stat(self._file(name))
            ident: tuple[int, ...] = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except (OSError, ValueError):
            ident = ()  # get says why
        hit = self._infos.get(name)
        now = time.monotonic()
        if ident and hit is not None and hit[0] == ident and now - hit[1] < RECHECK_S:
            return hit[2]
        key = self.get(name)
        info = KeyInfo(name, PeerID.from_public_key(key.public_key()), key.type)
        if ident:
            if len(self._infos) >= 1024:
                self._infos.clear()
            self._infos[name] = (ident, now, info)
        return info

    def names(self) -> list[str]:
        """Key names, sorted."""
        try:
            entries = os.listdir(self.path)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise StoreError(f"cannot list the keystore {self.path}: {e.strerror}") from None
        return sorted(n for n in map(_name_of_file, entries) if n is not None)

    def list(self) -> list[KeyInfo]:
        """Every key, sorted by name."""
        return [self.info(n) for n in self.names()]

    def find(self, name_or_id: str) -> tuple[str, PrivateKey]:
        """A key by name, or by its peer ID / IPNS name (``k51…``, ``12D3KooW…``)."""
        if _NAME_RE.fullmatch(name_or_id) and self._file(name_or_id).exists():
            return name_or_id, self.get(name_or_id)
        try:
            pid = PeerID.parse(name_or_id)
        except (InvalidInput, UnsupportedFormat):
            pid = None
        if pid is not None:
            for info in self.list():
                if info.id == pid:
                    return info.name, self.get(info.name)
        if name_or_id == SELF:
            raise NotFound("no key named 'self': the node identity key is made by 'ipmirror init' (or "
                           "'ipmirror serve'); or use a key of your own (see 'ipmirror key gen')", name_or_id)
        raise NotFound(f"no key named {name_or_id!r}", name_or_id)

    def rm(self, name: str) -> PeerID | None:
        """Delete a key; returns its ID (``None`` if the file was unreadable)."""
        try:
            pid: PeerID | None = self.info(name).id
        except StoreError:
            pid = None
        self._infos.pop(name, None)
        try:
            os.unlink(self._file(name))
            fsync_dir(self.path)
        except FileNotFoundError:
            raise NotFound(f"no key named {name!r}", name) from None
        except OSError as e:
            raise StoreError(f"cannot remove key {name!r}: {e.strerror}") from None
        return pid

    def rename(self, old: str, new: str, *, force: bool = False) -> KeyInfo:
        """Give a key another name; an existing ``new`` is replaced only with ``force``."""
        check_key_name(new)
        if old == new:
            return self.info(old)
        key = self.get(old)
        info = self._store(new, key, replace=force)
        self._infos.pop(old, None)
        try:
            os.unlink(self._file(old))
            fsync_dir(self.path)
        except OSError as e:
            raise StoreError(f"renamed, but cannot remove the old name {old!r}: {e.strerror}") from None
        return info

    def export(self, name: str) -> bytes:
        """The key in Kubo's ``ipfs key export`` format (protobuf ``PrivateKey``)."""
        return self.get(name).to_bytes()

    def import_(self, name: str, data: bytes, *, pem: bool = False, allow_any_type: bool = False) -> KeyInfo:
        """Store a key exported by Kubo (protobuf ``PrivateKey``; PEM PKCS#8 with ``pem=True``).

        Like Kubo, only Ed25519 and RSA keys are taken unless ``allow_any_type``.
        """
        check_key_name(name)
        try:
            key = PrivateKey.from_pkcs8_pem(data) if pem else PrivateKey.from_bytes(data)
        except DecodeError as e:
            raise DecodeError(f"cannot import key {name!r}: {e}") from None
        if key.type not in (KeyType.ED25519, KeyType.RSA) and not allow_any_type:
            raise UnsupportedFormat(f"{key.type.label} keys are not imported without allow_any_type "
                                    "(peers may not resolve names signed with them)")
        return self._store(name, key)

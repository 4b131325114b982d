"""Local IPNS: publish records with our keys, keep the newest record per name, resolve names.

Usage::

    names = Names(repo_path / "names", Keystore(repo_path / "keys"), clock=time.time_ns)
    pub = names.publish("mirror-pypi", "/ipfs/bafy…")          # pub.name prints as 'k51…'
    names.path_of("k51…")                                     # -> '/ipfs/bafy…' (verified now)
    names.path_of("mirror-pypi", lookup=mirror_roots.get)     # key names, then the caller's names
    names.put_record(raw)                                     # only if valid and newer

Layout under ``$REPO/names/``::

    sequence.json                 {"version": 1, "sequences": {"k51…": 7, …}}: the last sequence
                                  number this repository signed for each name
    records/<k51…>.ipns-record    the newest valid record we hold for the name (protobuf bytes)
    lock                          flock()ed while publishing or storing

Rules kept here:

- Rule 1, sequences only grow: a new record's sequence is one more than the larger of the last
  one signed here (``sequence.json``) and the stored record's. ``sequence.json`` is written
  durably (fsync, rename, fsync of the directory) *before* the record is stored or returned, so a
  crash at any point can only skip a number, never reuse one. A ``sequence.json`` that cannot be
  read is an error, never a reset to zero.
- Rule 2, stored records are valid and only move forward: ``put_record`` verifies the record for
  its name at ``clock()`` and takes it only if it is newer than the stored one (higher sequence,
  or the same sequence and a later validity).
- Rule 3, resolution verifies: a stored record is checked at ``clock()`` on every resolve, so an
  expired record is an error (``InvalidRecord``, reason ``expired``), not a stale answer. Its
  signature is verified once per version of the file: a ``Names`` remembers the records it
  verified with the file's identity (inode, size, mtime, ctime; records are replaced by rename)
  for up to ``RECHECK_NS`` (1 s, a bound on the rare identity that repeats under coarse
  timestamps), so a server resolving a name per request mostly does one ``stat``.
- The clock is passed in (nanoseconds since the epoch); nothing here reads the environment.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ipmirror.codec import ipns, rfc3339
from ipmirror.codec.cid import CID
from ipmirror.codec.peerid import PeerID
from ipmirror.errors import InvalidInput, InvalidRecord, NotFound, StaleRecord, StoreError, UnsupportedFormat
from ipmirror.naming.keystore import Keystore, atomic_write

Clock = Callable[[], int]
"""Returns the current time in nanoseconds since the Unix epoch (``time.time_ns``)."""
RECHECK_NS: Final = 1_000_000_000  # Rule 3: a remembered record is read and verified again after this
Lookup = Callable[[str], str | None]
"""Maps a name that is neither an IPNS name nor a local key (e.g. a mirror) to a content path."""

MAX_DEPTH: Final = 32  # like Kubo's resolver depth limit
STATE_VERSION: Final = 1
_DNS_LABEL: Final = re.compile(r"(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
                               r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?")


@dataclass(frozen=True, slots=True)
class Published:
    name: PeerID
    value: str
    sequence: int
    validity: str
    record: bytes


def content_path(text: str) -> str:
    """Check a value to publish: ``/ipfs/CID[/…]``, ``/ipld/CID[/…]``, ``/ipns/NAME[/…]`` or a
    bare CID (taken as ``/ipfs/CID``)."""
    t = text.strip()
    if not t.startswith("/"):
        CID.parse(t)
        return "/ipfs/" + t
    parts = t.split("/")
    if len(parts) < 3 or not parts[2]:
        raise InvalidInput(f"invalid content path {text!r}")
    if parts[1] in ("ipfs", "ipld"):
        CID.parse(parts[2])
    elif parts[1] == "ipns":
        if not _is_peer_id(parts[2]) and not _DNS_LABEL.fullmatch(parts[2]):
            raise InvalidInput(f"{parts[2]!r} is neither an IPNS name nor a DNS name")
    else:
        raise InvalidInput(f"invalid content path {text!r}: it must start with /ipfs/, /ipns/ or /ipld/")
    return t


def _is_peer_id(text: str) -> bool:
    try:
        PeerID.parse(text)
    except (InvalidInput, UnsupportedFormat):
        return False
    return True


def _split_ipns(path: str) -> tuple[str, str]:
    """``/ipns/NAME/rest`` -> ``("NAME", "/rest")``."""
    body = path[len("/ipns/"):]
    head, sep, rest = body.partition("/")
    return head, sep + rest


def _join(value: str, rest: str) -> str:
    return value.rstrip("/") + rest if rest.strip("/") else value


@functools.lru_cache(maxsize=1024)
def _as_peer_id(text: str) -> PeerID | None:
    """``PeerID.parse`` or None, memoized (a server parses the same few names on every request)."""
    try:
        return PeerID.parse(text)
    except (InvalidInput, UnsupportedFormat):
        return None


@functools.lru_cache(maxsize=1024)
def _record_file_name(name: PeerID) -> str:
    return f"{name}.ipns-record"


class Names:
    """Local IPNS state of one repository (see the module rules)."""

    def __init__(self, path: Path, keys: Keystore, *, clock: Clock = time.time_ns) -> None:
        self.path = path
        self.keys = keys
        self.clock = clock
        self._verified: dict[PeerID, tuple[tuple[int, ...], int, ipns.Record]] = {}  # Rule 3

    # -- files ------------------------------------------------------------------------------------
    def _records(self) -> Path:
        return self.path / "records"

    def _record_file(self, name: PeerID) -> Path:
        return self._records() / _record_file_name(name)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._records().mkdir(mode=0o700, exist_ok=True)
            fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StoreError(f"cannot use {self.path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _load_sequences(self) -> dict[str, int]:
        p = self.path / "sequence.json"
        try:
            doc = json.loads(p.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise StoreError(f"cannot read {p}: {e}; refusing to publish (sequence numbers could go "
                             "backwards)") from None
        seqs = doc.get("sequences") if isinstance(doc, dict) and doc.get("version") == STATE_VERSION else None
        if not isinstance(seqs, dict) or not all(isinstance(v, int) for v in seqs.values()):
            raise StoreError(f"{p} is not a sequence file of version {STATE_VERSION}")
        return seqs

    def _save_sequences(self, seqs: dict[str, int]) -> None:
        doc = {"version": STATE_VERSION, "sequences": dict(sorted(seqs.items()))}
        try:
            atomic_write(self.path / "sequence.json", (json.dumps(doc, indent=1) + "\n").encode())
        except OSError as e:
            raise StoreError(f"cannot write {self.path / 'sequence.json'}: {e.strerror}") from None

    def _write_record(self, name: PeerID, raw: bytes) -> None:
        self._verified.pop(name, None)
        try:
            shared = self._records().stat().st_mode & 0o040  # a group may read records (README)
            atomic_write(self._record_file(name), raw, mode=0o640 if shared else 0o600)
        except OSError as e:
            raise StoreError(f"cannot store the record of {name}: {e.strerror}") from None

    def _stored_data(self, name: PeerID) -> ipns.RecordData | None:
        """The signed data of the stored record (not re-verified), or None if none or unreadable."""
        try:
            entry = ipns.decode(self._record_file(name).read_bytes())
            return ipns.RecordData.decode(entry.data or b"")
        except (OSError, InvalidInput):
            return None

    # -- names ------------------------------------------------------------------------------------
    def name_of(self, name_or_key: str) -> PeerID:
        """An IPNS name (``k51…``, ``12D3KooW…``, ``/ipns/…``) or the name of a local key."""
        text = name_or_key.removeprefix("/ipns/").rstrip("/")
        pid = _as_peer_id(text)
        if pid is not None:
            return pid
        try:
            return self.keys.info(text).id
        except NotFound:
            raise NotFound(f"{name_or_key!r} is neither an IPNS name nor a local key", name_or_key) from None

    def dnslink(self, name_or_key: str) -> str:
        """The DNSLink TXT value (for ``_dnslink.<domain>``) that points at this IPNS name."""
        return f"dnslink=/ipns/{self.name_of(name_or_key)}"

    # -- publishing -------------------------------------------------------------------------------
    def publish(self, key: str, value: str, *, lifetime_ns: int = ipns.DEFAULT_LIFETIME_NS,
                ttl_ns: int = ipns.DEFAULT_TTL_NS, v1_compatible: bool = True) -> Published:
        """Sign ``value`` with ``key`` (a key name or its ID), store the record and return it.

        The record is valid for ``lifetime_ns`` from ``clock()``; ``ttl_ns`` is the caching hint.
        """
        if lifetime_ns <= 0:
            raise InvalidInput("the record lifetime must be positive")
        if ttl_ns < 0:
            raise InvalidInput("the TTL must not be negative")
        path = content_path(value)
        _, sk = self.keys.find(key)
        name = PeerID.from_public_key(sk.public_key())
        with self._locked():
            seqs = self._load_sequences()
            stored = self._stored_data(name)
            known = [n for n in (seqs.get(str(name)), stored.sequence if stored else None) if n is not None]
            seq = max(known) + 1 if known else 0
            raw = ipns.create(sk, path, sequence=seq, eol_ns=self.clock() + lifetime_ns, ttl_ns=ttl_ns,
                              v1_compatible=v1_compatible)
            seqs[str(name)] = seq
            self._save_sequences(seqs)      # Rule 1: durable before the record exists anywhere
            self._write_record(name, raw)
        data = ipns.RecordData.decode(ipns.decode(raw).data or b"")
        return Published(name, path, seq, data.validity.decode("ascii"), raw)

    def put_record(self, raw: bytes, name: PeerID | str | None = None) -> ipns.Record:
        """Store a record made elsewhere if it is valid for its name now and newer than ours.

        ``name`` may be omitted when the record carries its public key (``pubKey``).
        """
        if name is None:
            pid = ipns.embedded_name(ipns.decode(raw))
            if pid is None:
                raise InvalidInput("the record does not carry its public key; say which name it is for")
        else:
            pid = name if isinstance(name, PeerID) else self.name_of(name)
        rec = ipns.validate(raw, pid, self.clock())
        with self._locked():
            old = self._stored_data(pid)
            if old is not None:
                try:
                    old_eol = old.eol_ns
                except InvalidRecord:
                    old_eol = None
                if old_eol is not None and (rec.sequence, rec.eol_ns) <= (old.sequence, old_eol):
                    raise StaleRecord(f"the record (sequence {rec.sequence}, valid until {rec.validity}) is "
                                      f"not newer than the stored one (sequence {old.sequence}, valid "
                                      f"until {old.validity.decode('ascii', 'replace')})")
            self._write_record(pid, rec.raw)
        return rec

    def drop_record(self, name: PeerID) -> bool:
        """Forget the record held for ``name`` (its key is being deleted); False if there was none.
        The last sequence number signed here stays in ``sequence.json`` (Rule 1)."""
        with self._locked():
            self._verified.pop(name, None)
            try:
                os.unlink(self._record_file(name))
            except FileNotFoundError:
                return False
            except OSError as e:
                raise StoreError(f"cannot remove the record of {name}: {e.strerror}") from None
        return True

    # -- reading ----------------------------------------------------------------------------------
    def get_record(self, name_or_key: str | PeerID) -> bytes:
        """The stored record's bytes, as they are (verify with :meth:`record`)."""
        pid = name_or_key if isinstance(name_or_key, PeerID) else self.name_of(name_or_key)
        try:
            return self._record_file(pid).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no record for {pid} in this repository", pid) from None
        except OSError as e:
            raise StoreError(f"cannot read the record of {pid}: {e.strerror}") from None

    def record(self, name_or_key: str | PeerID) -> ipns.Record:
        """The stored record, verified at ``clock()`` (the signature once per file version)."""
        pid = name_or_key if isinstance(name_or_key, PeerID) else self.name_of(name_or_key)
        now = self.clock()
        try:
            st = os.stat(self._record_file(pid))
            ident: tuple[int, ...] = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except OSError:
            ident = ()  # get_record says why
        hit = self._verified.get(pid)
        fresh = hit is not None and 0 <= now - hit[1] < RECHECK_NS and now < hit[2].eol_ns
        if hit is not None and fresh and ident and hit[0] == ident:
            return hit[2]
        raw = self.get_record(pid)  # stat before read: a file replaced in between is read again next time
        try:
            rec = ipns.validate(raw, pid, now)
        except InvalidRecord as e:
            hint = "; publish it again" if e.reason == "expired" else ""
            raise InvalidRecord(f"the record for {pid} is not valid: {e}{hint}", e.reason) from None
        if ident:
            if len(self._verified) >= 1024:
                self._verified.clear()
            self._verified[pid] = (ident, now, rec)
        return rec

    def names(self) -> list[PeerID]:
        """Names that have a stored record."""
        try:
            files = os.listdir(self._records())
        except FileNotFoundError:
            return []
        out = []
        for f in sorted(files):
            if f.endswith(".ipns-record") and not f.startswith("."):
                with contextlib.suppress(InvalidInput, UnsupportedFormat):
                    out.append(PeerID.parse(f.removesuffix(".ipns-record")))
        return out

    def republish(self, *, within_ns: int, lifetime_ns: int = ipns.DEFAULT_LIFETIME_NS) -> list[Published]:
        """Re-sign, with a higher sequence number, every record of a local key that expires within
        ``within_ns`` (or has expired), keeping its value and TTL. Returns what was published."""
        out: list[Published] = []
        now = self.clock()
        for info in self.keys.list():
            raw = None
            with contextlib.suppress(NotFound):
                raw = self.get_record(info.id)
            if raw is None:
                continue
            data = ipns.RecordData.decode(ipns.decode(raw).data or b"")
            if rfc3339.parse_rfc3339(data.validity) - now > within_ns:
                continue
            out.append(self.publish(info.name, data.value.decode("utf-8"), lifetime_ns=lifetime_ns,
                                    ttl_ns=data.ttl))
        return out

    def path_of(self, name: str, *, recursive: bool = True, lookup: Lookup | None = None) -> str:
        """The content path ``name`` points at (``ipmirror name resolve``).

        ``name`` is an IPNS name or ``/ipns/`` path (``k51…``, ``12D3KooW…``, with an optional
        ``/sub/path``), or the name of a local key. Other names go to ``lookup`` (the caller's own
        names, e.g. mirrors), which returns a content path or ``None``. With ``recursive``, values
        that are ``/ipns/`` paths are resolved again, up to 32 steps. No network or DNS lookups.
        """
        path = name if name.startswith("/ipns/") else "/ipns/" + name
        for depth in range(MAX_DEPTH):
            head, rest = _split_ipns(path)
            path = _join(self._step(head, first=depth == 0, lookup=lookup), rest)
            if not recursive or not path.startswith("/ipns/"):
                return path
        raise InvalidInput(f"{name} did not resolve within {MAX_DEPTH} steps (a cycle?)")

    def _step(self, head: str, *, first: bool, lookup: Lookup | None) -> str:
        pid = _as_peer_id(head)
        if pid is None and first:
            # StoreError: a key this user may not read (a read-only server of another user's
            # repository); a mirror's name is then found through ``lookup``
            with contextlib.suppress(NotFound, InvalidInput, StoreError):
                pid = self.keys.info(head).id
        if pid is not None:
            return self.record(pid).path
        if lookup is not None:
            found = lookup(head)
            if found is not None:
                return found
        what = "a local key, " if first else ""
        raise NotFound(f"cannot resolve /ipns/{head}: it is not an IPNS name, {what}or a known name "
                       "(DNSLink names are not looked up)", head)


MAX_RECORD_FILE: Final = 1 << 20


def load_record_file(path: Path) -> bytes:
    """Read a record file; files over 1 MiB are refused unread (records are at most 10 KiB)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_RECORD_FILE + 1)
    except OSError as e:
        raise InvalidInput(f"{path}: {e.strerror}") from None
    if len(raw) > MAX_RECORD_FILE:
        raise InvalidRecord(f"{path} is over 1 MiB; IPNS records are at most {ipns.MAX_RECORD_SIZE} bytes",
                            "size")
    return raw


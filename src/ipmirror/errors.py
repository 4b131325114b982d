"""The one exception tree of ipmirror.

Every error the library raises on purpose derives from :class:`IpmirrorError`, and also from the
builtin it most resembles, so callers may catch either::

    IpmirrorError
    ├── InvalidInput (ValueError)           bad bytes or arguments from the outside world
    │   ├── InvalidCID                      a CID string or byte form that does not parse
    │   ├── DecodeError                     a block, CAR or protobuf that is malformed/non-canonical
    │   ├── UnsupportedFormat               a codec/hash/profile we do not implement
    │   │   └── UnsupportedCodec            a block whose codec the operation does not read (HTTP 501)
    │   └── InvalidRecord                   a signed (IPNS) record that fails verification; ``.reason``
    ├── NotFound (KeyError)                 something is not in the store; ``.cid`` says what
    │   └── BlockNotFound                   a block is missing (``.cid`` names it)
    ├── PathNotFound (LookupError)          a path under a root does not exist
    ├── Corrupt (RuntimeError)              stored bytes do not hash to their key
    ├── StoreError (OSError)                the repository cannot be opened/used (locked, permissions)
    ├── SourceError (OSError)               a file being added/synced cannot be read (unreadable,
    │                                       vanished, kept changing while read)
    ├── Conflict (FileExistsError)          an output or name exists already and may not be replaced
    └── UpstreamError (ConnectionError)     a cache's upstream failed or answered wrongly (bad status,
                                            hash mismatch, oversized or malformed); ``.status``

The CLI maps every ``IpmirrorError`` (``InvalidInput``, ``NotFound``, ``PathNotFound``, ``Corrupt``,
``StoreError``, ``SourceError``, ``Conflict``, ``UpstreamError``) to a one-line message and exit
status 1; anything else is a bug (one line plus a hint, or a traceback with ``--debug``).
"""

from __future__ import annotations


class IpmirrorError(Exception):
    """Base of every error ipmirror raises on purpose."""


class InvalidInput(IpmirrorError, ValueError):
    """Bad bytes or arguments from the outside world."""


class InvalidCID(InvalidInput):
    """A CID that does not parse."""


class DecodeError(InvalidInput):
    """Malformed or non-canonical encoded data."""


class UnsupportedFormat(InvalidInput):
    """A codec, hash function or format variant that ipmirror does not implement."""


class UnsupportedCodec(UnsupportedFormat):
    """A valid block of a codec the operation does not read: a non-UnixFS block where a file or
    directory is needed, or a path that ends inside a DAG-CBOR block instead of at a link. The
    gateway answers 501 (Not Implemented) for it, 400 for other unsupported formats."""


class NotFound(IpmirrorError, KeyError):
    """Something is not in the store."""

    def __init__(self, message: str, cid: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.cid = cid

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class BlockNotFound(NotFound):
    """A block is not in the store."""

    def __init__(self, cid: object) -> None:
        super().__init__(f"block {cid} is not in the store", cid)


class PathNotFound(IpmirrorError, LookupError):
    """A path below a root does not exist."""


class Corrupt(IpmirrorError, RuntimeError):
    """Stored bytes do not hash to the key they are stored under."""


class StoreError(IpmirrorError, OSError):
    """The repository cannot be opened or used."""


class SourceError(IpmirrorError, OSError):
    """A file or directory being imported cannot be read: unreadable, vanished, or it kept
    changing while it was read."""


class Conflict(IpmirrorError, FileExistsError):
    """A target exists already and may not be replaced."""


class UpstreamError(IpmirrorError, ConnectionError):
    """A cache's upstream failed: unreachable, timed out, a bad status, a redirect to another host,
    an oversized or malformed document, bytes that do not match the published hash. ``.status`` is
    the HTTP status to answer with (404 when the upstream has no such thing, else 502)."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class InvalidRecord(InvalidInput):
    """A signed record (IPNS) that fails verification; ``.reason`` says which rule it broke:
    ``size``, ``malformed``, ``signature``, ``public-key``, ``v1-mismatch``, ``validity``,
    ``expired`` or ``value``."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason

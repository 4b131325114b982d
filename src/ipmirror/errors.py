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
    │   └── StaleRecord                     an IPNS record not newer than the one held      [exit 4]
    ├── Refused                             a safety check refused to publish (a mirror's source
    │                                       looks broken: missing, empty, another file system,
    │                                       too many files removed; ``--force`` overrides)  [exit 4]
    ├── Busy (BlockingIOError)              the resource is in use by another process (a sync of
    │                                       the mirror runs) and the caller would not wait  [exit 5]
    └── PeerError (ConnectionError)         a libp2p peer cannot be reached, or the host is not running

**Exit codes** (one table for every command; README "Exit codes"). Each error carries its
``exit_code``; the CLI (``cli/main.py``) prints the error in one line and exits with it. A command
that succeeds in part returns :data:`EXIT_PARTIAL` itself (no exception: the work is done).

====  ===================  ==========================================================================
code  name                 meaning
====  ===================  ==========================================================================
0     ``EXIT_OK``          success
1     ``EXIT_FAILURE``     failure: bad input, missing data, corrupt store (``repo verify``: damaged
                           or missing blocks), internal error
2     ``EXIT_USAGE``       usage error (argparse)
3     ``EXIT_PARTIAL``     done in part: a sync that left out unreadable files; ``repo verify`` that
                           found only stale no-copy references; ``repo recover`` that could not
                           save everything
4     ``EXIT_REFUSED``     refused on purpose: a source check (:class:`Refused`), an IPNS record
                           older than the one held (:class:`StaleRecord`)
5     ``EXIT_BUSY``        busy: another process holds what is needed (:class:`Busy`)
====  ===================  ==========================================================================

Anything that is not an ``IpmirrorError`` is a bug (one line plus a hint, or a traceback with
``--debug``; exit 1).
"""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_PARTIAL: Final = 3
EXIT_REFUSED: Final = 4
EXIT_BUSY: Final = 5
EXIT_INTERRUPTED: Final = 130  # Ctrl-C (128 + SIGINT), as shells report it


class IpmirrorError(Exception):
    """Base of every error ipmirror raises on purpose; ``exit_code`` is the CLI's exit status."""

    exit_code: int = EXIT_FAILURE


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


class PeerError(IpmirrorError, ConnectionError):
    """A libp2p peer cannot be dialled, identified or pinged, or the host is not running."""


class InvalidRecord(InvalidInput):
    """A signed record (IPNS) that fails verification; ``.reason`` says which rule it broke:
    ``size``, ``malformed``, ``signature``, ``public-key``, ``v1-mismatch``, ``validity``,
    ``expired`` or ``value``."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class StaleRecord(Conflict):
    """An IPNS record that is not newer than the one held for its name (lower sequence, or the same
    sequence and no later validity): refused, so a name never moves backwards."""

    exit_code = EXIT_REFUSED


class Refused(IpmirrorError):
    """A safety check refused the operation; nothing was published or changed for good. The
    message says which check and how to override it (``--force``)."""

    exit_code = EXIT_REFUSED


class Busy(IpmirrorError, BlockingIOError):
    """Another process holds what the operation needs (a mirror's sync lock) and the caller asked
    not to wait."""

    exit_code = EXIT_BUSY

"""Shared helpers for tests that read the spec fixtures in ``../shared/fixtures``.

The fixtures are read-only and may be absent; tests that need them call :func:`shared_fixtures`
(or :func:`require_fixtures`) and skip when it returns ``None``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from ipmirror.codec import varint
from ipmirror.codec.cid import CID

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def shared_fixtures() -> pathlib.Path | None:
    """The ``../shared/fixtures`` directory beside the repository root, or ``None`` if absent."""
    path = REPO_ROOT.parent / "shared" / "fixtures"
    return path if path.is_dir() else None


def require_fixtures(*parts: str) -> pathlib.Path:
    """``shared_fixtures() / parts``; skip the calling test when it does not exist."""
    root = shared_fixtures()
    if root is None:
        pytest.skip("shared fixtures (../shared/fixtures) are not present on this machine")
    path = root.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"fixture {'/'.join(parts)} is not present")
    return path


def car_header(path: pathlib.Path) -> bytes:
    """The raw DAG-CBOR header block of a CARv1 file."""
    buf = path.read_bytes()
    length, pos = varint.decode(buf, 0)
    return buf[pos:pos + length]


def car_blocks(path: pathlib.Path) -> Iterator[tuple[CID, bytes]]:
    """Yield ``(cid, data)`` for each block of a CARv1 file (minimal reader, for tests only).

    Layout: varint header length + DAG-CBOR header, then frames of varint length + binary CID + data.
    """
    buf = path.read_bytes()
    length, pos = varint.decode(buf, 0)
    pos += length
    if pos > len(buf):
        raise ValueError(f"{path}: truncated CAR header")
    while pos < len(buf):
        length, pos = varint.decode(buf, pos)
        end = pos + length
        if end > len(buf):
            raise ValueError(f"{path}: truncated CAR frame at {pos}")
        cid, data_start = CID.read(buf, pos)
        yield cid, buf[data_start:end]
        pos = end


def car_block_map(path: pathlib.Path) -> dict[CID, bytes]:
    """All blocks of a CARv1 file keyed by CID (first occurrence wins)."""
    out: dict[CID, bytes] = {}
    for cid, data in car_blocks(path):
        out.setdefault(cid, data)
    return out

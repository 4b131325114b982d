"""Multibase text encodings: base58btc (``z``), base32 lower (``b``), base36 lower (``k``) (pure).

Only the bases IPFS tooling prints are implemented; others raise :class:`UnsupportedFormat`.
"""

from __future__ import annotations

import base64
import binascii

from ipmirror.errors import DecodeError, UnsupportedFormat

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}
B36_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _int_encode(data: bytes, alphabet: str) -> str:
    base = len(alphabet)
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, base)
        out.append(alphabet[r])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return alphabet[0] * zeros + "".join(reversed(out))


def _int_decode(text: str, alphabet: str, index: dict[str, int]) -> bytes:
    base = len(alphabet)
    n = 0
    for ch in text:
        try:
            n = n * base + index[ch]
        except KeyError:
            raise DecodeError(f"invalid character {ch!r} for base{base}") from None
    zeros = len(text) - len(text.lstrip(alphabet[0]))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


def b58encode(data: bytes) -> str:
    return _int_encode(data, B58_ALPHABET)


def b58decode(text: str) -> bytes:
    return _int_decode(text, B58_ALPHABET, _B58_INDEX)


_B36_INDEX = {c: i for i, c in enumerate(B36_ALPHABET)}


def b36encode(data: bytes) -> str:
    return _int_encode(data, B36_ALPHABET)


def b36decode(text: str) -> bytes:
    return _int_decode(text.lower(), B36_ALPHABET, _B36_INDEX)


def b32encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def b32decode(text: str) -> bytes:
    if text != text.lower() and text != text.upper():
        raise DecodeError("mixed-case base32")
    pad = (-len(text)) % 8
    try:
        return base64.b32decode(text.upper() + "=" * pad)
    except (binascii.Error, ValueError) as e:
        raise DecodeError(f"invalid base32: {e}") from None


def encode(base: str, data: bytes) -> str:
    """Encode with a multibase prefix: ``base`` is one of ``z``, ``b``, ``k``."""
    if base == "z":
        return "z" + b58encode(data)
    if base == "b":
        return "b" + b32encode(data)
    if base == "k":
        return "k" + b36encode(data)
    raise UnsupportedFormat(f"multibase {base!r} is not supported")


def decode(text: str) -> bytes:
    """Decode a multibase string (prefix included)."""
    if not text:
        raise DecodeError("empty multibase string")
    prefix, body = text[0], text[1:]
    if prefix == "z":
        return b58decode(body)
    if prefix in "bB":
        return b32decode(body)
    if prefix in "kK":
        return b36decode(body)
    raise UnsupportedFormat(f"multibase prefix {prefix!r} is not supported")

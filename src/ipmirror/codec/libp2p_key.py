"""libp2p keys (pure): the ``PublicKey``/``PrivateKey`` protobufs and signing.

Usage::

    sk = PrivateKey.from_ed25519_seed(seed32)           # or PrivateKey.from_bytes(kubo_export)
    pk = sk.public_key()
    sig = sk.sign(b"message"); pk.verify(b"message", sig)
    PeerID.from_public_key(pk)                          # peer IDs: codec/peerid.py

Rules kept here (libp2p ``peer-ids/peer-ids.md``):

- Both messages are ``{1: KeyType Type (varint), 2: bytes Data}``. We always *write* the
  deterministic form (Type then Data, minimal varints, both fields, nothing else); we *read* as
  protobuf does (any order, last value wins, unknown fields skipped, both required fields present).
- ``Data`` is canonicalised on decode, as go-libp2p re-marshals a parsed key: Ed25519 public keys
  are the 32 raw bytes; RSA and ECDSA public keys are DER SubjectPublicKeyInfo; secp256k1 public
  keys are the 33-byte compressed point. Private keys: Ed25519 is ``seed || public`` (64 bytes;
  the legacy 96-byte ``seed || public || public`` is read when both copies agree, and the public
  half must belong to the seed); RSA is PKCS#1 DER; secp256k1 the 32-byte scalar; ECDSA SEC 1 DER.
- RSA keys must have 2048..8192 bits, like go-libp2p.
- Signatures: Ed25519 per RFC 8032; RSA is RSASSA-PKCS1-v1_5 with SHA-256; ECDSA and secp256k1 are
  DER ECDSA signatures over SHA-256 (secp256k1 signatures are written low-S, as btcec does).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ipmirror.codec.protowire import WIRE_LEN, WIRE_VARINT, pb_bytes_field, pb_fields, pb_varint_field
from ipmirror.errors import DecodeError, InvalidInput, UnsupportedFormat

MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 8192
_SECP256K1_ORDER: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class KeyType(IntEnum):
    """The libp2p ``KeyType`` enum."""

    RSA = 0
    ED25519 = 1
    SECP256K1 = 2
    ECDSA = 3

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS: Final = {KeyType.RSA: "rsa", KeyType.ED25519: "ed25519", KeyType.SECP256K1: "secp256k1",
                  KeyType.ECDSA: "ecdsa"}


def _encode_key(key_type: KeyType, data: bytes) -> bytes:
    return pb_varint_field(1, int(key_type)) + pb_bytes_field(2, data)


def _decode_key(raw: bytes, what: str) -> tuple[KeyType, bytes]:
    key_type: int | None = None
    data: bytes | None = None
    try:
        for field, wire, value in pb_fields(bytes(raw)):
            if field == 1:
                if wire != WIRE_VARINT or not isinstance(value, int):
                    raise DecodeError(f"{what}.Type has the wrong wire type")
                key_type = value
            elif field == 2:
                if wire != WIRE_LEN or not isinstance(value, bytes):
                    raise DecodeError(f"{what}.Data has the wrong wire type")
                data = value
    except DecodeError as e:
        raise DecodeError(f"invalid libp2p {what}: {e}") from None
    if key_type is None or data is None:
        raise DecodeError(f"invalid libp2p {what}: the Type and Data fields are required")
    try:
        return KeyType(key_type), data
    except ValueError:
        raise UnsupportedFormat(f"unknown libp2p key type {key_type}") from None


# -- public keys ----------------------------------------------------------------------------------

_PublicImpl = ed25519.Ed25519PublicKey | rsa.RSAPublicKey | ec.EllipticCurvePublicKey
_PrivateImpl = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _check_rsa_size(bits: int) -> None:
    if bits < MIN_RSA_BITS:
        raise UnsupportedFormat(f"RSA key of {bits} bits is too small (minimum {MIN_RSA_BITS})")
    if bits > MAX_RSA_BITS:
        raise UnsupportedFormat(f"RSA key of {bits} bits is too large (maximum {MAX_RSA_BITS})")


def _spki(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _load_public(key_type: KeyType, data: bytes) -> tuple[_PublicImpl, bytes]:
    """Parse ``Data`` of a PublicKey; return the key and its canonical ``Data`` bytes."""
    try:
        if key_type is KeyType.ED25519:
            if len(data) != 32:
                raise DecodeError(f"Ed25519 public key must be 32 bytes, not {len(data)}")
            return ed25519.Ed25519PublicKey.from_public_bytes(data), bytes(data)
        if key_type is KeyType.SECP256K1:
            k = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), data)
            return k, k.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
        loaded = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise DecodeError(f"invalid {key_type.label} public key: {e}") from None
    if key_type is KeyType.RSA:
        if not isinstance(loaded, rsa.RSAPublicKey):
            raise DecodeError("RSA public key data is not an RSA SubjectPublicKeyInfo")
        _check_rsa_size(loaded.key_size)
        return loaded, _spki(loaded)
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise DecodeError("ECDSA public key data is not an EC SubjectPublicKeyInfo")
    return loaded, _spki(loaded)


class PublicKey:
    """A libp2p public key. Immutable; equal keys compare equal (by type and canonical data)."""

    __slots__ = ("_impl", "data", "type")

    type: KeyType
    data: bytes
    _impl: _PublicImpl

    def __init__(self, key_type: KeyType, data: bytes) -> None:
        impl, canonical = _load_public(key_type, data)
        object.__setattr__(self, "type", key_type)
        object.__setattr__(self, "data", canonical)
        object.__setattr__(self, "_impl", impl)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("PublicKey is immutable")

    @classmethod
    def from_bytes(cls, raw: bytes) -> PublicKey:
        """Decode a protobuf ``PublicKey``."""
        key_type, data = _decode_key(raw, "PublicKey")
        return cls(key_type, data)

    def to_bytes(self) -> bytes:
        """The deterministic protobuf ``PublicKey`` encoding."""
        return _encode_key(self.type, self.data)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if ``signature`` is this key's signature of ``message`` (see module rules)."""
        k = self._impl
        try:
            if isinstance(k, ed25519.Ed25519PublicKey):
                k.verify(signature, message)
            elif isinstance(k, rsa.RSAPublicKey):
                k.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            else:
                k.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and (self.type, self.data) == (other.type, other.data)

    def __hash__(self) -> int:
        return hash((self.type, self.data))

    def __repr__(self) -> str:
        from ipmirror.codec.peerid import PeerID  # peerid imports this module

        return f"PublicKey({self.type.label}, {PeerID.from_public_key(self)})"


# -- private keys ---------------------------------------------------------------------------------

def _load_private(key_type: KeyType, data: bytes) -> tuple[_PrivateImpl, bytes]:
    """Parse ``Data`` of a PrivateKey; return the key and its canonical ``Data`` bytes."""
    try:
        if key_type is KeyType.ED25519:
            if len(data) == 96:
                if data[32:64] != data[64:96]:
                    raise DecodeError("legacy 96-byte Ed25519 private key has two different public keys")
                data = data[:64]
            if len(data) != 64:
                raise DecodeError(f"Ed25519 private key must be 64 bytes, not {len(data)}")
            ed = ed25519.Ed25519PrivateKey.from_private_bytes(data[:32])
            if ed.public_key().public_bytes_raw() != data[32:]:
                raise DecodeError("Ed25519 private key: the public half does not belong to the seed")
            return ed, bytes(data)
        if key_type is KeyType.SECP256K1:
            if len(data) != 32:
                raise DecodeError(f"secp256k1 private key must be 32 bytes, not {len(data)}")
            scalar = int.from_bytes(data, "big")
            if not 0 < scalar < _SECP256K1_ORDER:
                raise DecodeError("secp256k1 private key is out of range")
            return ec.derive_private_key(scalar, ec.SECP256K1()), bytes(data)
        loaded = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise DecodeError(f"invalid {key_type.label} private key: {e}") from None
    trad = serialization.PrivateFormat.TraditionalOpenSSL  # PKCS#1 for RSA, SEC 1 for EC
    if key_type is KeyType.RSA:
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise DecodeError("RSA private key data is not PKCS#1 DER")
        _check_rsa_size(loaded.key_size)
        return loaded, loaded.private_bytes(serialization.Encoding.DER, trad, serialization.NoEncryption())
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise DecodeError("ECDSA private key data is not SEC 1 DER")
    return loaded, loaded.private_bytes(serialization.Encoding.DER, trad, serialization.NoEncryption())


@dataclass(frozen=True, slots=True, eq=False)
class PrivateKey:
    """A libp2p private key. ``repr`` never shows the secret."""

    type: KeyType
    data: bytes
    _impl: _PrivateImpl

    @classmethod
    def load(cls, key_type: KeyType, data: bytes) -> PrivateKey:
        impl, canonical = _load_private(key_type, data)
        return cls(key_type, canonical, impl)

    @classmethod
    def from_bytes(cls, raw: bytes) -> PrivateKey:
        """Decode a protobuf ``PrivateKey`` (the format of Kubo's ``ipfs key export``)."""
        key_type, data = _decode_key(raw, "PrivateKey")
        return cls.load(key_type, data)

    @classmethod
    def from_ed25519_seed(cls, seed: bytes) -> PrivateKey:
        """The Ed25519 key of a 32-byte seed (RFC 8032 private key)."""
        if len(seed) != 32:
            raise InvalidInput(f"an Ed25519 seed is 32 bytes, not {len(seed)}")
        ed = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        return cls(KeyType.ED25519, bytes(seed) + ed.public_key().public_bytes_raw(), ed)

    @classmethod
    def from_crypto(cls, key: _PrivateImpl) -> PrivateKey:
        """Wrap a ``cryptography`` key object (Ed25519, RSA, or EC on secp256k1 or a NIST curve)."""
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return cls.from_ed25519_seed(key.private_bytes_raw())
        if isinstance(key, rsa.RSAPrivateKey):
            return cls.load(KeyType.RSA, key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption()))
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if isinstance(key.curve, ec.SECP256K1):
                return cls.load(KeyType.SECP256K1, key.private_numbers().private_value.to_bytes(32, "big"))
            return cls.load(KeyType.ECDSA, key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption()))
        raise UnsupportedFormat(f"{type(key).__name__} keys are not supported")

    @classmethod
    def from_pkcs8_pem(cls, pem: bytes) -> PrivateKey:
        """Read an unencrypted PEM ``PRIVATE KEY`` (PKCS#8), as ``--format=pem-pkcs8-cleartext``."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise DecodeError(f"invalid PEM private key: {e}") from None
        if not isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise UnsupportedFormat(f"{type(key).__name__} keys are not supported")
        return cls.from_crypto(key)

    def to_bytes(self) -> bytes:
        """The protobuf ``PrivateKey`` encoding (Kubo's ``libp2p-protobuf-cleartext``)."""
        return _encode_key(self.type, self.data)

    def to_pkcs8_pem(self) -> bytes:
        return self._impl.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())

    def public_key(self) -> PublicKey:
        k = self._impl
        if isinstance(k, ed25519.Ed25519PrivateKey):
            return PublicKey(KeyType.ED25519, k.public_key().public_bytes_raw())
        if isinstance(k, rsa.RSAPrivateKey):
            return PublicKey(KeyType.RSA, _spki(k.public_key()))
        if self.type is KeyType.SECP256K1:
            return PublicKey(KeyType.SECP256K1, k.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint))
        return PublicKey(KeyType.ECDSA, _spki(k.public_key()))

    def sign(self, message: bytes) -> bytes:
        k = self._impl
        if isinstance(k, ed25519.Ed25519PrivateKey):
            return k.sign(message)
        if isinstance(k, rsa.RSAPrivateKey):
            return k.sign(message, padding.PKCS1v15(), hashes.SHA256())
        sig = k.sign(message, ec.ECDSA(hashes.SHA256()))
        if self.type is KeyType.SECP256K1:
            r, s = decode_dss_signature(sig)
            if s > _SECP256K1_ORDER // 2:
                sig = encode_dss_signature(r, _SECP256K1_ORDER - s)
        return sig

    def __repr__(self) -> str:
        from ipmirror.codec.peerid import PeerID  # peerid imports this module

        return f"PrivateKey({self.type.label}, {PeerID.from_public_key(self.public_key())})"

"""Peer IDs (pure): the multihash of an encoded libp2p public key, and its text forms.

Usage::

    pid = PeerID.from_public_key(pk)
    str(pid)                # 'k51qzi5uqu5d…' (CIDv1, libp2p-key, base36: how IPNS names print)
    pid.to_base58()         # '12D3KooW…' (legacy form; 'Qm…' for hashed keys)
    PeerID.parse("12D3KooW…") == PeerID.parse("k51qzi5uqu5d…")

Rules kept here (libp2p ``peer-ids/peer-ids.md``; ipfs/specs ``ipns/ipns-record.md``):

- A peer ID is the multihash of the encoded ``PublicKey``: identity when it is at most 42 bytes
  (Ed25519, secp256k1), sha2-256 otherwise (RSA, ECDSA). Text forms parsed: bare base58btc
  multihashes starting ``1`` or ``Qm``, and multibase CIDv1 whose codec is libp2p-key (0x72).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ipmirror.codec import multibase
from ipmirror.codec.cid import (
    CID,
    IDENTITY,
    LIBP2P_KEY,
    SHA2_256,
    decode_multihash,
    multihash_identity,
    multihash_sha256,
)
from ipmirror.codec.libp2p_key import PublicKey
from ipmirror.errors import DecodeError, InvalidCID, InvalidInput, UnsupportedFormat

MAX_INLINE_KEY_LENGTH: Final = 42  # encoded public keys up to this size are inlined in the peer ID


@dataclass(frozen=True, slots=True)
class PeerID:
    """A peer ID: the multihash of an encoded public key (identity or sha2-256).

    ``str()`` gives the IPNS name form (CIDv1, libp2p-key, base36 ``k…``).
    """

    multihash: bytes

    def __post_init__(self) -> None:
        try:
            code, digest = decode_multihash(self.multihash)
        except (DecodeError, InvalidCID) as e:
            raise InvalidInput(f"invalid peer ID multihash: {e}") from None
        if code == SHA2_256 and len(digest) != 32:
            raise InvalidInput("invalid peer ID: a sha2-256 digest is 32 bytes")
        if code not in (IDENTITY, SHA2_256):
            raise UnsupportedFormat(f"peer IDs hashed with 0x{code:x} are not supported")

    @classmethod
    def from_public_key(cls, key: PublicKey) -> PeerID:
        raw = key.to_bytes()
        if len(raw) <= MAX_INLINE_KEY_LENGTH:
            return cls(multihash_identity(raw))
        return cls(multihash_sha256(raw))

    @classmethod
    def from_cid(cls, cid: CID) -> PeerID:
        if cid.version != 1 or cid.codec != LIBP2P_KEY:
            raise InvalidInput(f"CID {cid} is not a libp2p-key CID, so it is not a peer ID")
        return cls(cid.multihash)

    @classmethod
    def parse(cls, text: str) -> PeerID:
        """Parse a peer ID or IPNS name: ``12D3KooW…``/``Qm…`` (base58btc multihash) or a
        multibase libp2p-key CIDv1 (``k51…``, ``bafz…``)."""
        text = text.strip()
        if text.startswith(("1", "Qm")):
            try:
                return cls(multibase.b58decode(text))
            except DecodeError as e:
                raise InvalidInput(f"invalid peer ID {_short(text)}: {e}") from None
        try:
            cid = CID.parse(text)
        except InvalidCID as e:
            raise InvalidInput(f"invalid peer ID or IPNS name {_short(text)}: {e}") from None
        return cls.from_cid(cid)

    @property
    def is_identity(self) -> bool:
        return self.multihash[0] == IDENTITY

    def public_key(self) -> PublicKey | None:
        """The public key inlined in an identity peer ID, or ``None`` for a hashed one."""
        code, digest = decode_multihash(self.multihash)
        if code != IDENTITY:
            return None
        return PublicKey.from_bytes(digest)

    def matches(self, key: PublicKey) -> bool:
        """True if this is the peer ID of ``key``."""
        return PeerID.from_public_key(key) == self

    @property
    def cid(self) -> CID:
        return CID(1, LIBP2P_KEY, self.multihash)

    def to_base58(self) -> str:
        """Legacy text form: the bare multihash in base58btc (``12D3KooW…`` or ``Qm…``)."""
        return multibase.b58encode(self.multihash)

    def to_base36(self) -> str:
        return self.cid.encode("k")

    def to_base32(self) -> str:
        return self.cid.encode("b")

    def __str__(self) -> str:
        return self.to_base36()

    def __repr__(self) -> str:
        return f"PeerID({self.to_base36()!r})"


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")

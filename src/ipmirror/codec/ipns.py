"""IPNS records (pure): the ``IpnsEntry`` protobuf, its DAG-CBOR ``data``, signing and verification.

Usage::

    raw = create(key, b"/ipfs/bafy…", sequence=0, eol_ns=now + 48 * HOUR, ttl_ns=5 * MINUTE)
    rec = validate(raw, PeerID.parse("k51…"), now_ns=time.time_ns())   # raises InvalidRecord
    rec.path, rec.sequence, rec.validity, rec.ttl_ns

Rules kept here (ipfs/specs ``ipns/ipns-record.md``; boxo ``ipns`` where the spec is silent):

- Verification follows the spec's order and stops at the first failure: (1) at most 10 KiB
  *before* parsing; (2) ``signatureV2`` and ``data`` present and non-empty (V1-only records are
  invalid); (3) the public key is ``pubKey`` when present, and its peer ID must equal the name;
  otherwise the name must be an identity multihash with the key inlined; (4) ``data`` decodes as
  strict DAG-CBOR into a map with ``Value`` (bytes), ``Validity`` (bytes), ``ValidityType``,
  ``Sequence`` and ``TTL`` (unsigned ints) — the five fields the spec says creators MUST write;
  (5, 6) ``signatureV2`` verifies over ``b"ipns-signature:" + data``; (7) if ``signatureV1`` or
  ``value`` is non-empty, every V1 field (absent = protobuf default) must equal its ``data`` twin;
  (8) ``ValidityType`` is 0 (EOL) and ``Validity``, an RFC 3339 time with up to nanosecond
  precision, is strictly later than ``now``.
- ``signatureV1`` is never used to decide validity. Records we create carry it (V1 compatibility,
  as boxo does by default): it signs ``value + validity + b"EOL"`` — the validity type as Go's
  ``fmt`` prints the protobuf enum, i.e. its *name*.
- Times are integers: nanoseconds since the Unix epoch (``eol_ns``) and nanosecond durations
  (``ttl_ns``); ``Validity`` is written like Go's ``time.RFC3339Nano`` in UTC (trailing zeros of
  the fraction dropped, ``Z``; see ``codec/rfc3339.py``).
- Unknown protobuf fields are skipped and unknown ``data`` keys are kept but ignored, so newer
  records still verify. Newer-than: higher ``Sequence``, then later ``Validity``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from ipmirror.codec import dagcbor, rfc3339
from ipmirror.codec.cid import CID
from ipmirror.codec.libp2p_key import PrivateKey, PublicKey
from ipmirror.codec.peerid import PeerID
from ipmirror.codec.protowire import WIRE_LEN, WIRE_VARINT, pb_bytes_field, pb_fields, pb_varint_field
from ipmirror.codec.rfc3339 import format_rfc3339, parse_rfc3339
from ipmirror.errors import DecodeError, InvalidCID, InvalidInput, InvalidRecord, UnsupportedFormat

MAX_RECORD_SIZE: Final = 10 * 1024
SIGNATURE_V2_PREFIX: Final = b"ipns-signature:"
VALIDITY_EOL: Final = 0
SECOND: Final = rfc3339.SECOND  # durations are nanoseconds
MINUTE: Final = 60 * SECOND
HOUR: Final = 60 * MINUTE
DEFAULT_LIFETIME_NS: Final = 48 * HOUR  # boxo DefaultRecordLifetime
DEFAULT_TTL_NS: Final = 5 * MINUTE      # the spec's suggested default
NOOP_VALUE: Final = "/ipfs/bafkqaaa"     # what an empty Value means (boxo): the empty identity CID
RESERVED_KEYS: Final = frozenset({"Value", "Validity", "ValidityType", "Sequence", "TTL"})
_U64: Final = 1 << 64


# -- the IpnsEntry protobuf -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class IpnsEntry:
    """The ``IpnsEntry`` protobuf, field for field; ``None`` means absent."""

    value: bytes | None = None          # 1  (V1 copy of data[Value])
    signature_v1: bytes | None = None   # 2
    validity_type: int | None = None    # 3  (V1 copy of data[ValidityType])
    validity: bytes | None = None       # 4  (V1 copy of data[Validity])
    sequence: int | None = None         # 5  (V1 copy of data[Sequence])
    ttl: int | None = None              # 6  (V1 copy of data[TTL])
    pub_key: bytes | None = None        # 7
    signature_v2: bytes | None = None   # 8
    data: bytes | None = None           # 9  (DAG-CBOR)

    def encode(self) -> bytes:
        """Fields in number order, each one that is present (what Go's proto.Marshal writes)."""
        out = []
        for num, name in _FIELD_NAMES.items():
            value = getattr(self, name)
            if value is None:
                continue
            out.append(pb_varint_field(num, value) if num in _INT_FIELDS else pb_bytes_field(num, value))
        return b"".join(out)

    @classmethod
    def decode(cls, raw: bytes) -> IpnsEntry:
        """Parse the protobuf (no size limit, no verification: see :func:`validate`)."""
        found: dict[int, int | bytes] = {}
        for num, wire, value in pb_fields(bytes(raw)):
            if num in _INT_FIELDS:
                if wire != WIRE_VARINT:
                    raise DecodeError(f"IpnsEntry field {num} must be a varint")
            elif num in _BYTES_FIELDS:
                if wire != WIRE_LEN:
                    raise DecodeError(f"IpnsEntry field {num} must be length-delimited")
            else:
                continue  # unknown field: skipped, as protobuf does
            found[num] = value  # a repeated scalar field: the last one wins
        return cls(**{name: found[num] for num, name in _FIELD_NAMES.items() if num in found})  # type: ignore[arg-type]

    @property
    def has_v1_fields(self) -> bool:
        """True if the V1 consistency rule applies (``signatureV1`` or ``value`` non-empty)."""
        return bool(self.signature_v1) or bool(self.value)


_FIELD_NAMES: Final = {1: "value", 2: "signature_v1", 3: "validity_type", 4: "validity", 5: "sequence",
                       6: "ttl", 7: "pub_key", 8: "signature_v2", 9: "data"}
_INT_FIELDS: Final = frozenset({3, 5, 6})
_BYTES_FIELDS: Final = frozenset({1, 2, 4, 7, 8, 9})


# -- the DAG-CBOR data document -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RecordData:
    """``IpnsEntry.data``: the signed fields, plus any extra (ignored) keys in ``extra``."""

    value: bytes
    validity: bytes
    validity_type: int
    sequence: int
    ttl: int
    extra: tuple[tuple[str, object], ...] = ()

    def encode(self) -> bytes:
        doc: dict[str, object] = dict(self.extra)
        doc.update({"Value": self.value, "Validity": self.validity, "ValidityType": self.validity_type,
                    "Sequence": self.sequence, "TTL": self.ttl})
        return dagcbor.encode(doc)

    @classmethod
    def decode(cls, raw: bytes) -> RecordData:
        try:
            doc = dagcbor.decode(raw)
        except (DecodeError, InvalidCID) as e:
            raise InvalidRecord(f"record data is not valid DAG-CBOR: {e}", "malformed") from None
        if not isinstance(doc, dict):
            raise InvalidRecord("record data is not a DAG-CBOR map", "malformed")
        for key, want in (("Value", bytes), ("Validity", bytes), ("ValidityType", int),
                          ("Sequence", int), ("TTL", int)):
            if key not in doc:
                raise InvalidRecord(f"record data has no {key}", "malformed")
            v = doc[key]
            if not isinstance(v, want) or isinstance(v, bool):
                raise InvalidRecord(f"record data {key} must be {'bytes' if want is bytes else 'an integer'}",
                                    "malformed")
            if want is int and not 0 <= v < _U64:  # type: ignore[operator]
                raise InvalidRecord(f"record data {key} must be an unsigned 64-bit integer", "malformed")
        extra = tuple((k, v) for k, v in doc.items() if k not in RESERVED_KEYS)
        return cls(doc["Value"], doc["Validity"], doc["ValidityType"], doc["Sequence"], doc["TTL"], extra)

    @property
    def eol_ns(self) -> int:
        """``Validity`` as nanoseconds since the epoch (EOL validity type only)."""
        if self.validity_type != VALIDITY_EOL:
            raise InvalidRecord(f"record validity type {self.validity_type} is not supported (only 0, EOL)",
                                "validity")
        try:
            return parse_rfc3339(self.validity)
        except InvalidInput as e:
            raise InvalidRecord(f"record validity is invalid: {e}", "validity") from None

    @property
    def path(self) -> str:
        return value_path(self.value)


# -- values ---------------------------------------------------------------------------------------

def value_path(value: bytes) -> str:
    """The content path a record's ``Value`` names: the text itself when it starts with ``/``, a
    binary CID as ``/ipfs/<cid>`` (legacy records), and the empty value as ``/ipfs/bafkqaaa``."""
    if not value:
        return NOOP_VALUE
    if value[:1] == b"/":
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRecord("record value is not UTF-8 text", "value") from None
    try:
        return f"/ipfs/{CID.from_bytes(value)}"
    except InvalidCID:
        raise InvalidRecord("record value is neither a content path nor a binary CID", "value") from None


# -- creation -------------------------------------------------------------------------------------

def signature_v1_payload(entry: IpnsEntry) -> bytes:
    """What ``signatureV1`` signs: ``value + validity + validity type name`` (``b"EOL"`` for 0)."""
    vt = entry.validity_type or 0
    name = b"EOL" if vt == VALIDITY_EOL else str(vt).encode()
    return (entry.value or b"") + (entry.validity or b"") + name


def create(key: PrivateKey, value: bytes | str, *, sequence: int, eol_ns: int, ttl_ns: int,
           v1_compatible: bool = True, embed_public_key: bool | None = None,
           extra: Mapping[str, object] | None = None) -> bytes:
    """Create and sign a record; returns its protobuf bytes.

    ``embed_public_key`` defaults to "only when the name cannot carry the key" (RSA, ECDSA).
    ``extra`` adds custom keys to the signed ``data`` (prefix them with ``_``; reserved names and
    the empty key are refused).
    """
    value_b = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if not 0 <= sequence < _U64:
        raise InvalidInput(f"sequence {sequence} is not an unsigned 64-bit integer")
    if not 0 <= ttl_ns < 1 << 63:
        raise InvalidInput(f"TTL {ttl_ns} ns must be between 0 and 2^63-1 nanoseconds")
    for k in extra or {}:
        if not k or k in RESERVED_KEYS:
            raise InvalidInput(f"extra record data key {k!r} is empty or reserved")
    validity = format_rfc3339(eol_ns).encode("ascii")
    data = RecordData(value_b, validity, VALIDITY_EOL, sequence, ttl_ns, tuple((extra or {}).items()))
    data_bytes = data.encode()
    entry = IpnsEntry()
    if v1_compatible:
        entry = IpnsEntry(value=value_b, validity_type=VALIDITY_EOL, validity=validity, sequence=sequence,
                          ttl=ttl_ns)
        entry = replace(entry, signature_v1=key.sign(signature_v1_payload(entry)))
    pk = key.public_key()
    if embed_public_key is None:
        embed_public_key = not PeerID.from_public_key(pk).is_identity
    entry = replace(entry, pub_key=pk.to_bytes() if embed_public_key else None,
                    signature_v2=key.sign(SIGNATURE_V2_PREFIX + data_bytes), data=data_bytes)
    raw = entry.encode()
    if len(raw) > MAX_RECORD_SIZE:
        raise InvalidInput(f"the record would be {len(raw)} bytes; IPNS records are at most "
                           f"{MAX_RECORD_SIZE} bytes (is the value too long?)")
    return raw


# -- verification ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Record:
    """A record that passed :func:`validate` for ``name`` (at the time given then)."""

    raw: bytes
    entry: IpnsEntry
    data: RecordData
    name: PeerID
    public_key: PublicKey

    @property
    def value(self) -> bytes:
        return self.data.value

    @property
    def path(self) -> str:
        return self.data.path

    @property
    def sequence(self) -> int:
        return self.data.sequence

    @property
    def ttl_ns(self) -> int:
        return self.data.ttl

    @property
    def validity(self) -> str:
        return self.data.validity.decode("ascii")

    @property
    def eol_ns(self) -> int:
        return self.data.eol_ns


def decode(raw: bytes) -> IpnsEntry:
    """Parse a record's protobuf, refusing records over the size limit; no verification."""
    if len(raw) > MAX_RECORD_SIZE:
        raise InvalidRecord(f"record is {len(raw)} bytes; the limit is {MAX_RECORD_SIZE}", "size")
    try:
        return IpnsEntry.decode(raw)
    except DecodeError as e:
        raise InvalidRecord(f"record is not a valid IpnsEntry protobuf: {e}", "malformed") from None


def embedded_name(entry: IpnsEntry) -> PeerID | None:
    """The name of the key in ``pubKey``, if the record carries one."""
    if not entry.pub_key:
        return None
    return PeerID.from_public_key(_public_key_field(entry.pub_key))


def _public_key_field(raw: bytes) -> PublicKey:
    try:
        return PublicKey.from_bytes(raw)
    except (DecodeError, UnsupportedFormat) as e:
        raise InvalidRecord(f"record pubKey is invalid: {e}", "public-key") from None


def public_key_for(entry: IpnsEntry, name: PeerID) -> PublicKey:
    """Step 3: the key that must have signed a record for ``name``."""
    if entry.pub_key:
        pk = _public_key_field(entry.pub_key)
        if not name.matches(pk):
            raise InvalidRecord(f"record pubKey belongs to {PeerID.from_public_key(pk)}, not {name}",
                                "public-key")
        return pk
    if not name.is_identity:
        raise InvalidRecord(f"record has no pubKey and {name} does not inline its public key",
                            "public-key")
    try:
        inlined = name.public_key()
    except (DecodeError, UnsupportedFormat) as e:
        raise InvalidRecord(f"the public key inlined in {name} is invalid: {e}", "public-key") from None
    assert inlined is not None
    return inlined


def check_v1_fields(entry: IpnsEntry, data: RecordData) -> None:
    """Step 7: the legacy V1 fields must equal their ``data`` twins."""
    pairs = (("value", entry.value or b"", data.value), ("validity", entry.validity or b"", data.validity),
             ("validityType", entry.validity_type or 0, data.validity_type),
             ("sequence", entry.sequence or 0, data.sequence), ("ttl", entry.ttl or 0, data.ttl))
    for field, v1, v2 in pairs:
        if v1 != v2:
            raise InvalidRecord(f"record V1 field {field} does not match the signed data", "v1-mismatch")


def validate(raw: bytes, name: PeerID, now_ns: int) -> Record:
    """Verify a record for ``name`` at time ``now_ns`` (ns since the epoch); raise InvalidRecord."""
    entry = decode(raw)                                                               # 1
    if not entry.signature_v2:                                                        # 2
        raise InvalidRecord("record has no signatureV2 (V1-only records are not valid)", "signature")
    if not entry.data:
        raise InvalidRecord("record has no data field", "malformed")
    pk = public_key_for(entry, name)                                                  # 3
    data = RecordData.decode(entry.data)                                              # 4
    if not pk.verify(SIGNATURE_V2_PREFIX + entry.data, entry.signature_v2):            # 5, 6
        raise InvalidRecord(f"record signatureV2 is not a valid signature by {name}", "signature")
    if entry.has_v1_fields:                                                           # 7
        check_v1_fields(entry, data)
    eol = data.eol_ns                                                                 # 8
    if eol <= now_ns:
        raise InvalidRecord(f"record expired at {data.validity.decode('ascii')}", "expired")
    return Record(bytes(raw), entry, data, name, pk)


def signature_v1_valid(entry: IpnsEntry, key: PublicKey) -> bool | None:
    """Whether ``signatureV1`` verifies (``None`` when absent). Informational only: never use it
    to accept a record."""
    if not entry.signature_v1:
        return None
    return key.verify(signature_v1_payload(entry), entry.signature_v1)


def compare(a: Record, b: Record) -> int:
    """1 if ``a`` is newer than ``b``, -1 if older, 0 if neither (same sequence and validity)."""
    ka = (a.sequence, a.eol_ns)
    kb = (b.sequence, b.eol_ns)
    return (ka > kb) - (ka < kb)


@dataclass(frozen=True, slots=True)
class Inspection:
    """What :func:`inspect` found: the fields as they are, and the verdict when a name is known."""

    entry: IpnsEntry
    data: RecordData | None          # None when data is absent or does not decode
    data_error: str | None
    name: PeerID | None              # the name checked against (given, or from pubKey)
    valid: bool | None               # None: not checked (no name)
    reason: str | None               # the first rule broken, as InvalidRecord.reason
    error: str | None
    signature_v1_valid: bool | None  # informational; None when absent or no key is known

    @property
    def signature_types(self) -> tuple[str, ...]:
        return tuple(t for t, sig in (("V1", self.entry.signature_v1), ("V2", self.entry.signature_v2))
                     if sig)


def inspect(raw: bytes, name: PeerID | None, now_ns: int) -> Inspection:
    """Decode a record for display and, if ``name`` is given or ``pubKey`` names one, verify it.

    Raises InvalidRecord only when the bytes are not an ``IpnsEntry`` at all (or over the limit).
    """
    entry = decode(raw)
    data: RecordData | None = None
    data_error: str | None = None
    if entry.data:
        try:
            data = RecordData.decode(entry.data)
        except InvalidRecord as e:
            data_error = str(e)
    else:
        data_error = "no data field (V1-only record)"
    if name is None:
        try:
            name = embedded_name(entry)
        except InvalidRecord as e:
            return Inspection(entry, data, data_error, None, False, e.reason, str(e), None)
    if name is None:
        return Inspection(entry, data, data_error, None, None, None, None, None)
    v1_ok: bool | None = None
    with contextlib.suppress(InvalidRecord):
        v1_ok = signature_v1_valid(entry, public_key_for(entry, name))
    try:
        validate(raw, name, now_ns)
    except InvalidRecord as e:
        return Inspection(entry, data, data_error, name, False, e.reason, str(e), v1_ok)
    return Inspection(entry, data, data_error, name, True, None, None, v1_ok)

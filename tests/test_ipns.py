"""IPNS records: the spec's six vectors, creation and verification rules, and local name state.

Verdicts come from ipfs/specs ``ipns/ipns-record.md`` ("Test Vectors"), copied with the record
files in ``../shared/fixtures/ipns-vectors.md``.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from _fixtures import require_fixtures
from ipmirror.codec import dagcbor, ipns, rfc3339
from ipmirror.codec.ipns import HOUR, MINUTE, SECOND, IpnsEntry, RecordData
from ipmirror.codec.libp2p_key import PrivateKey
from ipmirror.codec.peerid import PeerID
from ipmirror.codec.protowire import pb_bytes_field
from ipmirror.errors import Conflict, InvalidInput, InvalidRecord, NotFound, StoreError
from ipmirror.naming import names as names_mod
from ipmirror.naming.keystore import Keystore
from ipmirror.naming.names import Names

T0 = 1_700_000_000 * SECOND  # a fixed "now" for deterministic tests
VECTOR_VALIDITY = "2123-08-14T12:17:03.694052Z"


def key(n: int) -> PrivateKey:
    return PrivateKey.from_ed25519_seed(bytes([n]) * 32)


def name_of(k: PrivateKey) -> PeerID:
    return PeerID.from_public_key(k.public_key())


# -- the spec's test vectors ------------------------------------------------------------------------

# (file suffix, valid?, reason if invalid, V2 value, V1 value, protobuf fields present)
SPEC_VECTORS = [
    ("k51qzi5uqu5dm4tm0wt8srkg9h9suud4wuiwjimndrkydqm81cqtlb5ak6p7ku_v1", False, "signature",
     None, "/ipfs/bafkqadtwgeww63tmpeqhezldn5zgi", {1, 2, 3, 4, 5, 6}),
    ("k51qzi5uqu5dlkw8pxuw9qmqayfdeh4kfebhmreauqdc6a7c3y7d5i9fi8mk9w_v1-v2", True, None,
     "/ipfs/bafkqaddwgevxmmraojswg33smq", "/ipfs/bafkqaddwgevxmmraojswg33smq", {1, 2, 3, 4, 5, 6, 8, 9}),
    ("k51qzi5uqu5dlmit2tuwdvnx4sbnyqgmvbxftl0eo3f33wwtb9gr7yozae9kpw_v1-v2-broken-v1-value", False,
     "v1-mismatch", "/ipfs/bafkqahtwgevxmmraojswg33smqqho2lunaqge4tpnnsw4idwmfwhkzi",
     "/ipfs/bafkqaglumvzxi2lom4qgeyleebuxa3ttebzgky3pojshgcq", {1, 2, 3, 4, 5, 6, 8, 9}),
    ("k51qzi5uqu5diamp7qnnvs1p1gzmku3eijkeijs3418j23j077zrkok63xdm8c_v1-v2-broken-signature-v2", False,
     "signature", "/ipfs/bafkqahtwgevxmmrao5uxi2bamjzg623fnyqhg2lhnzqxi5lsmuqhmmq",
     "/ipfs/bafkqahtwgevxmmrao5uxi2bamjzg623fnyqhg2lhnzqxi5lsmuqhmmq", {1, 2, 3, 4, 5, 6, 8, 9}),
    ("k51qzi5uqu5dilgf7gorsh9vcqqq4myo6jd4zmqkuy9pxyxi5fua3uf7axph4y_v1-v2-broken-signature-v1", True, None,
     "/ipfs/bafkqahtwgevxmmrao5uxi2bamjzg623fnyqhg2lhnzqxi5lsmuqhmmi",
     "/ipfs/bafkqahtwgevxmmrao5uxi2bamjzg623fnyqhg2lhnzqxi5lsmuqhmmi", {1, 2, 3, 4, 5, 6, 8, 9}),
    ("k51qzi5uqu5dit2ku9mutlfgwyz8u730on38kd10m97m36bjt66my99hb6103f_v2", True, None,
     "/ipfs/bafkqadtwgiww63tmpeqhezldn5zgi", None, {8, 9}),
]


def _present(entry: IpnsEntry) -> set[int]:
    names = ("value", "signature_v1", "validity_type", "validity", "sequence", "ttl", "pub_key",
             "signature_v2", "data")
    return {i for i, n in enumerate(names, 1) if getattr(entry, n) is not None}


@pytest.mark.parametrize(("stem", "valid", "reason", "v2_value", "v1_value", "fields"), SPEC_VECTORS,
                         ids=[v[0].split("_", 1)[1] for v in SPEC_VECTORS])
def test_spec_vectors(stem: str, valid: bool, reason: str | None, v2_value: str | None,
                      v1_value: str | None, fields: set[int]) -> None:
    raw = require_fixtures("gateway-conformance", "ipns_records", stem + ".ipns-record").read_bytes()
    name = PeerID.parse(stem.split("_")[0])
    assert name.is_identity and name.public_key() is not None  # Ed25519, key inlined, no pubKey
    entry = ipns.decode(raw)
    assert _present(entry) == fields
    assert entry.encode() == raw  # our encoder writes the same bytes as boxo's
    assert (entry.value.decode() if entry.value else None) == v1_value
    if v2_value is not None:
        data = RecordData.decode(entry.data or b"")
        assert (data.path, data.sequence, data.validity.decode(), data.validity_type) == \
            (v2_value, 0, VECTOR_VALIDITY, 0)
        assert data.ttl == 30 * MINUTE
    now = time.time_ns()
    if valid:
        rec = ipns.validate(raw, name, now)
        assert rec.path == v2_value and rec.sequence == 0 and rec.validity == VECTOR_VALIDITY
    else:
        with pytest.raises(InvalidRecord) as exc:
            ipns.validate(raw, name, now)
        assert exc.value.reason == reason
    ins = ipns.inspect(raw, name, now)
    assert (ins.valid, ins.reason) == (valid, reason)


def test_spec_vectors_signature_v1_is_informational() -> None:
    """Vector 4 has only a valid V1 signature (invalid), vector 5 only a valid V2 one (valid): V1
    never decides. Vector 2's V1 signature verifies over value+validity+"EOL", which checks our
    V1 payload against boxo's."""
    d = "gateway-conformance", "ipns_records"
    got = {}
    for stem, *_ in SPEC_VECTORS[1:5]:
        raw = require_fixtures(*d, stem + ".ipns-record").read_bytes()
        name = PeerID.parse(stem.split("_")[0])
        got[stem.split("_", 1)[1]] = ipns.inspect(raw, name, T0).signature_v1_valid
    assert got["v1-v2"] is True
    assert got["v1-v2-broken-signature-v2"] is True
    assert got["v1-v2-broken-signature-v1"] is False
    # The spec calls both signatures of vector 3 "valid"; its V1 signature was made over the CBOR
    # value, not the protobuf value it carries, so it does not verify over the V1 fields.
    assert got["v1-v2-broken-v1-value"] is False


GATEWAY_RECORDS = [
    ("gateway-cache", "k51qzi5uqu5dlxdsdu5fpuu7h69wu4ohp32iwm9pdt9nq3y5rpn3ln9j12zfhe",
     "/ipfs/bafybeib3ffl2teiqdncv3mkz4r23b5ctrwkzrrhctdbne6iboayxuxk5ui"),
    ("gateway-cache", "k51qzi5uqu5djokp3m1keo36hoxtd6u3a1d2rg1camf6al7p3huy63dojlm57c",
     "/ipfs/bafybeib3ffl2teiqdncv3mkz4r23b5ctrwkzrrhctdbne6iboayxuxk5ui/root2"),
    ("subdomain_gateway", "12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d",
     "/ipfs/bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"),
    ("subdomain_gateway", "QmVujd5Vb7moysJj8itnGufN7MEtPRCNHkKpNuA4onsRa3",  # RSA, pubKey embedded
     "/ipfs/bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"),
]


@pytest.mark.parametrize(("folder", "stem", "value"), GATEWAY_RECORDS,
                         ids=[g[1][:12] for g in GATEWAY_RECORDS])
def test_gateway_conformance_records(folder: str, stem: str, value: str) -> None:
    raw = require_fixtures("gateway-conformance", folder, stem + ".ipns-record").read_bytes()
    name = PeerID.parse(stem)
    rec = ipns.validate(raw, name, time.time_ns())
    assert rec.path == value
    if stem.startswith("Qm"):
        assert not name.is_identity and rec.public_key.type.label == "rsa"
        assert ipns.embedded_name(rec.entry) == name
        # The RSA record carries its key, so it names itself; any other name is refused.
        with pytest.raises(InvalidRecord) as exc:
            ipns.validate(raw, name_of(key(1)), time.time_ns())
        assert exc.value.reason == "public-key"


# -- creation and verification --------------------------------------------------------------------

def test_round_trip() -> None:
    k = key(1)
    raw = ipns.create(k, "/ipfs/bafkqaaa/a b", sequence=7, eol_ns=T0 + HOUR, ttl_ns=5 * MINUTE)
    entry = ipns.decode(raw)
    assert entry.encode() == raw
    assert entry.pub_key is None  # Ed25519: the name carries the key
    assert (entry.value, entry.validity_type, entry.sequence, entry.ttl) == (b"/ipfs/bafkqaaa/a b", 0, 7,
                                                                             5 * MINUTE)
    data = RecordData.decode(entry.data or b"")
    assert data.encode() == entry.data
    # The spec's key order: length first, then bytes.
    assert list(dagcbor.decode(entry.data or b"")) == ["TTL", "Value", "Sequence", "Validity", "ValidityType"]
    rec = ipns.validate(raw, name_of(k), T0)
    assert (rec.path, rec.sequence, rec.ttl_ns) == ("/ipfs/bafkqaaa/a b", 7, 5 * MINUTE)
    assert rec.eol_ns == T0 + HOUR
    assert rec.validity == "2023-11-14T23:13:20Z"
    assert ipns.signature_v1_valid(entry, k.public_key()) is True

    v2 = ipns.create(k, "/ipfs/bafkqaaa", sequence=0, eol_ns=T0 + 1, ttl_ns=0, v1_compatible=False)
    assert _present(ipns.decode(v2)) == {8, 9}
    assert ipns.validate(v2, name_of(k), T0).validity == "2023-11-14T22:13:20.000000001Z"


def test_rsa_records_embed_the_public_key() -> None:
    rsa_key = PrivateKey.from_crypto(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    name = name_of(rsa_key)
    assert not name.is_identity
    raw = ipns.create(rsa_key, "/ipfs/bafkqaaa", sequence=1, eol_ns=T0 + HOUR, ttl_ns=0)
    assert ipns.decode(raw).pub_key == rsa_key.public_key().to_bytes()
    assert ipns.validate(raw, name, T0).path == "/ipfs/bafkqaaa"
    bare = ipns.create(rsa_key, "/ipfs/bafkqaaa", sequence=1, eol_ns=T0 + HOUR, ttl_ns=0,
                       embed_public_key=False)
    with pytest.raises(InvalidRecord, match="does not inline its public key"):
        ipns.validate(bare, name, T0)


def test_record_signed_by_another_key_is_rejected() -> None:
    raw = ipns.create(key(2), "/ipfs/bafkqaaa", sequence=0, eol_ns=T0 + HOUR, ttl_ns=0)
    with pytest.raises(InvalidRecord) as exc:
        ipns.validate(raw, name_of(key(1)), T0)
    assert exc.value.reason == "signature"
    # Carrying the other key in pubKey does not help: it must belong to the name.
    with_key = ipns.create(key(2), "/ipfs/bafkqaaa", sequence=0, eol_ns=T0 + HOUR, ttl_ns=0,
                           embed_public_key=True)
    with pytest.raises(InvalidRecord) as exc:
        ipns.validate(with_key, name_of(key(1)), T0)
    assert exc.value.reason == "public-key"
    assert ipns.validate(with_key, name_of(key(2)), T0)  # an embedded key of the right name is fine


def test_expiry_is_strict() -> None:
    k = key(1)
    raw = ipns.create(k, "/ipfs/bafkqaaa", sequence=0, eol_ns=T0, ttl_ns=0)
    assert ipns.validate(raw, name_of(k), T0 - 1)
    for now in (T0, T0 + 1, T0 + 100 * HOUR):
        with pytest.raises(InvalidRecord, match="expired at 2023-11-14T22:13:20Z") as exc:
            ipns.validate(raw, name_of(k), now)
        assert exc.value.reason == "expired"


def _pad_to(raw: bytes, size: int) -> bytes:
    """Append an unknown protobuf field (number 99) so the record is exactly ``size`` bytes."""
    for n in range(size - len(raw), 0, -1):
        padded = raw + pb_bytes_field(99, b"x" * n)
        if len(padded) == size:
            return padded
    raise AssertionError("cannot pad")


def test_size_limit() -> None:
    k = key(1)
    raw = ipns.create(k, "/ipfs/bafkqaaa", sequence=0, eol_ns=T0 + HOUR, ttl_ns=0)
    at_limit = _pad_to(raw, 10 * 1024)
    assert ipns.validate(at_limit, name_of(k), T0)  # unknown fields are skipped; 10 KiB is allowed
    with pytest.raises(InvalidRecord) as exc:
        ipns.validate(_pad_to(raw, 10 * 1024 + 1), name_of(k), T0)
    assert exc.value.reason == "size"
    with pytest.raises(InvalidInput, match="at most 10240 bytes"):
        ipns.create(k, "/ipfs/bafkqaaa/" + "a" * 5000, sequence=0, eol_ns=T0 + HOUR, ttl_ns=0)


def _resign(k: PrivateKey, entry: IpnsEntry, data: RecordData) -> bytes:
    """A record with these fields and a *valid* V2 signature over ``data``."""
    cbor = data.encode()
    e = IpnsEntry(entry.value, entry.signature_v1, entry.validity_type, entry.validity, entry.sequence,
                  entry.ttl, entry.pub_key, k.sign(ipns.SIGNATURE_V2_PREFIX + cbor), cbor)
    return e.encode()


@pytest.mark.parametrize("field", ["value", "validity", "validity_type", "sequence", "ttl"])
def test_v1_fields_must_match_data(field: str) -> None:
    k = key(1)
    raw = ipns.create(k, "/ipfs/bafkqaaa", sequence=3, eol_ns=T0 + HOUR, ttl_ns=SECOND)
    entry = ipns.decode(raw)
    data = RecordData.decode(entry.data or b"")
    assert ipns.validate(_resign(k, entry, data), name_of(k), T0)
    changed = {"value": b"/ipfs/other", "validity": b"2099-01-01T00:00:00Z", "validity_type": 1,
               "sequence": 4, "ttl": 2 * SECOND}[field]
    bad = IpnsEntry(**{**{n: getattr(entry, n) for n in entry.__slots__}, field: changed})  # type: ignore[arg-type]
    with pytest.raises(InvalidRecord) as exc:
        ipns.validate(_resign(k, bad, data), name_of(k), T0)
    assert exc.value.reason == "v1-mismatch"


def test_v1_rule_applies_only_when_signature_v1_or_value_present() -> None:
    k = key(1)
    data = RecordData(b"/ipfs/bafkqaaa", b"2099-01-01T00:00:00Z", 0, 5, 0)
    # Stray V1 copies without value/signatureV1 are ignored (boxo does the same).
    raw = _resign(k, IpnsEntry(sequence=99, ttl=1), data)
    assert ipns.validate(raw, name_of(k), T0).sequence == 5
    # A signatureV1 alone turns the rule on: the absent value counts as empty and mismatches.
    with pytest.raises(InvalidRecord, match="value"):
        ipns.validate(_resign(k, IpnsEntry(signature_v1=b"x"), data), name_of(k), T0)


@pytest.mark.parametrize(("doc", "match"), [
    ({"Value": b"/ipfs/bafkqaaa", "Validity": b"2099-01-01T00:00:00Z", "ValidityType": 0, "Sequence": 0},
     "no TTL"),
    ({"Value": "/ipfs/bafkqaaa", "Validity": b"2099-01-01T00:00:00Z", "ValidityType": 0, "Sequence": 0,
      "TTL": 0}, "Value must be bytes"),
    ({"Value": b"/ipfs/bafkqaaa", "Validity": b"2099-01-01T00:00:00Z", "ValidityType": 0, "Sequence": -1,
      "TTL": 0}, "unsigned"),
    ({"Value": b"/ipfs/bafkqaaa", "Validity": b"2099-01-01T00:00:00Z", "ValidityType": 1, "Sequence": 0,
      "TTL": 0}, "validity type 1"),
    ({"Value": b"/ipfs/bafkqaaa", "Validity": b"2099-01-01 00:00:00Z", "ValidityType": 0, "Sequence": 0,
      "TTL": 0}, "not an RFC 3339 time"),
    ([1, 2], "not a DAG-CBOR map"),
])
def test_bad_data_documents(doc: object, match: str) -> None:
    k = key(1)
    cbor = dagcbor.encode(doc)
    raw = IpnsEntry(signature_v2=k.sign(ipns.SIGNATURE_V2_PREFIX + cbor), data=cbor).encode()
    with pytest.raises(InvalidRecord, match=match):
        ipns.validate(raw, name_of(k), T0)


def test_malformed_and_empty_records() -> None:
    name = name_of(key(1))
    for raw, reason in ((b"\xff", "malformed"), (b"", "signature"), (b"\x42\x01x", "malformed"),
                        (IpnsEntry(signature_v2=b"x").encode(), "malformed")):
        with pytest.raises(InvalidRecord) as exc:
            ipns.validate(raw, name, T0)
        assert exc.value.reason == reason, raw


def test_extra_data_is_signed_and_ignored() -> None:
    k = key(1)
    raw = ipns.create(k, "/ipfs/bafkqaaa", sequence=0, eol_ns=T0 + HOUR, ttl_ns=0,
                      extra={"_meta": {"float": 1.5, "list": [1, "a", None, True]}})
    rec = ipns.validate(raw, name_of(k), T0)
    assert dict(rec.data.extra) == {"_meta": {"float": 1.5, "list": [1, "a", None, True]}}
    with pytest.raises(InvalidInput, match="reserved"):
        ipns.create(k, "/x", sequence=0, eol_ns=T0, ttl_ns=0, extra={"Value": b""})


def test_values() -> None:
    assert ipns.value_path(b"") == "/ipfs/bafkqaaa"
    assert ipns.value_path(b"/ipns/example.com/a") == "/ipns/example.com/a"
    from ipmirror.codec.cid import CID
    cid = CID.parse("bafkqaaa")
    assert ipns.value_path(bytes(cid)) == "/ipfs/bafkqaaa"  # legacy binary-CID values
    with pytest.raises(InvalidRecord):
        ipns.value_path(b"garbage")


def test_compare() -> None:
    k = key(1)

    def rec(seq: int, eol: int) -> ipns.Record:
        return ipns.validate(ipns.create(k, "/ipfs/bafkqaaa", sequence=seq, eol_ns=eol, ttl_ns=0),
                             name_of(k), T0)

    assert ipns.compare(rec(2, T0 + 1), rec(1, T0 + HOUR)) == 1
    assert ipns.compare(rec(1, T0 + 1), rec(1, T0 + 2)) == -1
    assert ipns.compare(rec(1, T0 + 1), rec(1, T0 + 1)) == 0


# -- RFC 3339 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "ns"), [
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01T00:00:00.000000001Z", 1),            # the spec's example
    ("1970-01-01T00:00:00.1234567891Z", 123456789),   # digits beyond ns are truncated, like Go
    ("1970-01-01T01:00:00+01:00", 0),
    ("1969-12-31T23:00:00-01:00", 0),
    ("2000-02-29T12:00:00.5Z", 951825600 * SECOND + SECOND // 2),
    ("0000-01-01T00:00:00Z", -62167219200 * SECOND),
])
def test_parse_rfc3339(text: str, ns: int) -> None:
    assert rfc3339.parse_rfc3339(text) == ns


@pytest.mark.parametrize("text", ["1970-01-01 00:00:00Z", "1970-01-01T00:00:00", "1970-01-01t00:00:00z",
                                  "2001-02-29T00:00:00Z", "1970-01-01T24:00:00Z", "1970-01-01T00:00:60Z",
                                  "1970-01-01T00:00:00.Z", "1970-1-01T00:00:00Z", "1970-01-01T00:00:00+1:00",
                                  "١٩٧٠-01-01T00:00:00Z"])
def test_parse_rfc3339_rejects(text: str) -> None:
    with pytest.raises(InvalidInput):
        rfc3339.parse_rfc3339(text)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-62167219200 * SECOND, max_value=253402300800 * SECOND - 1))
def test_rfc3339_round_trip(ns: int) -> None:
    text = rfc3339.format_rfc3339(ns)
    assert rfc3339.parse_rfc3339(text) == ns
    assert text.endswith("Z")
    if "." in text:
        assert not text.endswith("0Z")  # Go's RFC3339Nano drops trailing zeros


def test_format_rfc3339_like_go() -> None:
    assert rfc3339.format_rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339.format_rfc3339(1_500_000_000) == "1970-01-01T00:00:01.5Z"
    assert rfc3339.format_rfc3339(-1) == "1969-12-31T23:59:59.999999999Z"
    with pytest.raises(InvalidInput):
        rfc3339.format_rfc3339(253402300800 * SECOND)


# -- local names: publish, sequence, put, resolve ---------------------------------------------------

class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "repo"


def open_names(repo: Path, clock: Clock | None = None) -> Names:
    return Names(repo / "names", Keystore(repo / "keys"), clock=clock or Clock())


def test_publish_and_resolve(repo: Path) -> None:
    names = open_names(repo)
    info = names.keys.gen("site")
    pub = names.publish("site", "/ipfs/bafkqaaa")
    assert (pub.name, pub.sequence, pub.value) == (info.id, 0, "/ipfs/bafkqaaa")
    assert pub.validity == rfc3339.format_rfc3339(T0 + 48 * HOUR)
    for text in ("site", str(info.id), info.id.to_base58(), f"/ipns/{info.id}"):
        assert names.path_of(text) == "/ipfs/bafkqaaa"
    assert names.path_of(f"/ipns/{info.id}/a/b") == "/ipfs/bafkqaaa/a/b"
    assert names.get_record("site") == pub.record
    assert names.dnslink("site") == f"dnslink=/ipns/{info.id}"
    assert names.names() == [info.id]
    assert names.publish(str(info.id), "bafkqaaa").value == "/ipfs/bafkqaaa"  # key by ID; bare CID
    with pytest.raises(InvalidInput):
        names.publish("site", "/http/example.com")
    with pytest.raises(NotFound, match="no key named 'self'"):
        names.publish("self", "/ipfs/bafkqaaa")


def test_sequence_increases_across_restarts(repo: Path) -> None:
    clock = Clock()
    names = open_names(repo, clock)
    names.keys.gen("k")
    seen = [names.publish("k", "/ipfs/bafkqaaa").sequence]
    for _ in range(3):
        names = open_names(repo, clock)  # a "restart": new objects over the same directory
        seen.append(names.publish("k", "/ipfs/bafkqaaa", lifetime_ns=HOUR).sequence)
    assert seen == [0, 1, 2, 3]
    assert json.loads((repo / "names" / "sequence.json").read_text())["version"] == 1


def test_concurrent_publishers_get_distinct_sequences(repo: Path) -> None:
    open_names(repo).keys.gen("k")
    got: list[int] = []

    def publish() -> None:
        got.append(open_names(repo).publish("k", "/ipfs/bafkqaaa").sequence)

    threads = [threading.Thread(target=publish) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(6))
    assert ipns.decode(open_names(repo).get_record("k")).sequence == 5


def test_sequence_survives_a_crash_before_the_record_is_stored(repo: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    names = open_names(repo)
    names.keys.gen("k")
    assert names.publish("k", "/ipfs/bafkqaaa").sequence == 0

    def crash(self: Names, name: PeerID, raw: bytes) -> None:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(Names, "_write_record", crash)
    with pytest.raises(KeyboardInterrupt):
        names.publish("k", "/ipfs/bafkqaaa")  # sequence 1 was persisted, the record never stored
    monkeypatch.undo()
    names = open_names(repo)
    assert ipns.decode(names.get_record("k")).sequence == 0
    assert names.publish("k", "/ipfs/bafkqaaa").sequence == 2  # 1 is never reused


def test_sequence_follows_a_newer_stored_record_and_never_resets(repo: Path) -> None:
    clock = Clock()
    names = open_names(repo, clock)
    info = names.keys.gen("k")
    names.publish("k", "/ipfs/bafkqaaa")
    # A record made elsewhere with the same key (e.g. on another machine) and a higher sequence.
    raw = ipns.create(names.keys.get("k"), "/ipfs/bafkqaaa", sequence=41, eol_ns=T0 + HOUR, ttl_ns=0)
    names.put_record(raw, str(info.id))
    assert names.publish("k", "/ipfs/bafkqaaa").sequence == 42
    (repo / "names" / "sequence.json").write_text("{not json")
    with pytest.raises(StoreError, match="sequence numbers could go backwards"):
        names.publish("k", "/ipfs/bafkqaaa")


def test_put_record_only_newer(repo: Path) -> None:
    clock = Clock()
    names = open_names(repo, clock)
    k = key(7)
    name = name_of(k)

    def make(seq: int, eol: int, value: str = "/ipfs/bafkqaaa") -> bytes:
        return ipns.create(k, value, sequence=seq, eol_ns=eol, ttl_ns=0)

    with pytest.raises(InvalidInput, match="does not carry its public key"):
        names.put_record(make(5, T0 + HOUR))
    assert names.put_record(make(5, T0 + HOUR), name).sequence == 5
    for seq, eol in ((4, T0 + 2 * HOUR), (5, T0 + HOUR), (5, T0 + 1)):
        with pytest.raises(Conflict, match="not newer"):
            names.put_record(make(seq, eol), name)
    assert names.put_record(make(5, T0 + 2 * HOUR, "/ipfs/bafkqaaa/x"), name).sequence == 5
    assert names.path_of(str(name)) == "/ipfs/bafkqaaa/x"
    assert names.put_record(make(6, T0 + 1), name).sequence == 6
    with pytest.raises(InvalidRecord, match="signature"):  # invalid records never get stored
        names.put_record(ipns.create(key(8), "/ipfs/bafkqaaa", sequence=9, eol_ns=T0 + HOUR, ttl_ns=0), name)
    with pytest.raises(InvalidRecord, match="expired"):
        names.put_record(make(10, T0 - 1), name)
    assert ipns.decode(names.get_record(name)).sequence == 6


def test_resolve_expired_record_is_an_error(repo: Path) -> None:
    clock = Clock()
    names = open_names(repo, clock)
    names.keys.gen("k")
    names.publish("k", "/ipfs/bafkqaaa", lifetime_ns=HOUR)
    clock.now += HOUR
    with pytest.raises(InvalidRecord, match=r"expired at .*publish it again") as exc:
        names.path_of("k")
    assert exc.value.reason == "expired"


def test_resolving_again_verifies_only_changed_records(repo: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """One ``Names`` resolving per request (as ``serve`` does): a record is verified once per
    version of its file, a record stored by another process is seen at once, a remembered record
    still expires, and a key replaced under the same name is read again."""
    clock = Clock()
    names = open_names(repo, clock)
    first = names.keys.gen("k")
    names.publish("k", "/ipfs/bafkqaaa", lifetime_ns=HOUR)
    assert names.path_of("k") == "/ipfs/bafkqaaa"
    checked: list[object] = []
    real = ipns.validate

    def counting(raw: bytes, name: PeerID, now: int) -> ipns.Record:
        checked.append(name)
        return real(raw, name, now)

    monkeypatch.setattr(ipns, "validate", counting)
    for _ in range(3):
        assert names.path_of("k") == "/ipfs/bafkqaaa"
    assert checked == []
    open_names(repo, clock).publish("k", "/ipfs/bafkqaaa/next", lifetime_ns=HOUR)  # another process
    assert names.path_of("k") == "/ipfs/bafkqaaa/next" and len(checked) == 1
    clock.now += HOUR
    with pytest.raises(InvalidRecord, match="expired"):
        names.path_of("k")
    names.keys.rm("k")
    second = names.keys.gen("k")
    assert names.keys.info("k").id == second.id != first.id


def test_resolve_recursion_and_lookup(repo: Path) -> None:
    names = open_names(repo)
    a, b = names.keys.gen("a"), names.keys.gen("b")
    names.publish("a", f"/ipns/{b.id}/sub")
    names.publish("b", "/ipfs/bafkqaaa")
    assert names.path_of("a") == "/ipfs/bafkqaaa/sub"
    assert names.path_of("a", recursive=False) == f"/ipns/{b.id}/sub"
    assert names.path_of("pypi", lookup={"pypi": f"/ipns/{a.id}"}.get) == "/ipfs/bafkqaaa/sub"
    with pytest.raises(NotFound, match="cannot resolve /ipns/pypi"):
        names.path_of("pypi")
    c = names.keys.gen("c")
    with pytest.raises(NotFound, match=f"no record for {c.id}"):
        names.path_of("c")
    names.publish("c", f"/ipns/{c.id}")  # a cycle
    with pytest.raises(InvalidInput, match="32 steps"):
        names.path_of("c")
    names.publish("b", "/ipns/example.com")
    with pytest.raises(NotFound, match="DNSLink"):
        names.path_of("b")
    assert names.path_of("b", recursive=False) == "/ipns/example.com"


def test_content_path() -> None:
    cp = names_mod.content_path
    assert cp("bafkqaaa") == "/ipfs/bafkqaaa"
    assert cp("/ipfs/bafkqaaa/a/b") == "/ipfs/bafkqaaa/a/b"
    assert cp("/ipns/example.com") == "/ipns/example.com"
    assert cp("/ipns/12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d").startswith("/ipns/12D3")
    for bad in ("/ipfs/", "/ipfs/notacid", "/foo/bar", "/ipns/exa mple", "notacid"):
        with pytest.raises(InvalidInput):
            cp(bad)
